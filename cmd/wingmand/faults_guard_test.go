package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const storagetestPkg = "github.com/wingmanha/wingman/storage/storagetest"

// deps lists the packages wingmand links when built with args (e.g. -tags).
func deps(t *testing.T, args ...string) []string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool to list wingmand's dependencies")
	}
	cmd := exec.Command(goBin, append(append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, args...), ".")...)
	cmd.Env = append(os.Environ(), "GOFLAGS=")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %v: %v", args, err)
	}
	return strings.Fields(string(out))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestReleaseBuildHasNoFaultInjection: the LUN fault injection of the test
// cluster (faults_on.go, -tags wingman_faults) is not in the wingmand that
// `go build ./cmd/wingmand`, make build and the .deb produce.
func TestReleaseBuildHasNoFaultInjection(t *testing.T) {
	if faultInjection {
		t.Skip("this test binary was built with -tags wingman_faults")
	}
	if contains(deps(t), storagetestPkg) {
		t.Errorf("wingmand built without tags links %s: fault injection must only be in the -tags wingman_faults build", storagetestPkg)
	}
	// The check above can see the fault injection when it is there.
	if !contains(deps(t, "-tags", "wingman_faults"), storagetestPkg) {
		t.Errorf("wingmand built with -tags wingman_faults does not link %s: this guard no longer tests anything", storagetestPkg)
	}
	// Every release build of wingmand goes without build tags.
	buildLine := regexp.MustCompile(`(go|\$\(GO\)) build .*\./cmd/wingmand`)
	for _, f := range []string{"Makefile", "contrib/debian/build.sh"} {
		b, err := os.ReadFile(filepath.Join("..", "..", f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "wingman_faults") {
			t.Errorf("%s mentions wingman_faults: only test/cluster builds wingmand with fault injection", f)
		}
		found := false
		for _, line := range strings.Split(string(b), "\n") {
			if !buildLine.MatchString(line) {
				continue
			}
			found = true
			if strings.Contains(line, "-tags") {
				t.Errorf("%s builds wingmand with build tags: %s", f, strings.TrimSpace(line))
			}
		}
		if !found {
			t.Errorf("%s no longer builds ./cmd/wingmand with go build: update this guard", f)
		}
	}
}
