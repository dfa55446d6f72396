package guard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/wingmanha/wingman"

// pkg is the part of `go list -json` these tests read.
type pkg struct {
	ImportPath string
	Dir        string
	Name       string
	GoFiles    []string
	CgoFiles   []string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T, patterns ...string) []pkg {
	t.Helper()
	root := repoRoot(t)
	cmd := exec.Command("go", append([]string{"list", "-json", "-deps=false"}, patterns...)...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", patterns, err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// TestEveryPackageHasDocComment: the package doc says what the package owns
// and what it must never do (STYLE.md, practice 13).
func TestEveryPackageHasDocComment(t *testing.T) {
	for _, p := range listPackages(t, "./...") {
		documented := false
		for _, f := range p.GoFiles {
			af, err := parser.ParseFile(token.NewFileSet(), filepath.Join(p.Dir, f), nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatalf("parse %s: %v", f, err)
			}
			if af.Doc != nil && strings.TrimSpace(af.Doc.Text()) != "" {
				documented = true
				break
			}
		}
		if !documented && len(p.GoFiles) > 0 {
			t.Errorf("package %s has no doc comment: add one (in doc.go) saying what it owns and must never do", p.ImportPath)
		}
	}
}

// purePackages decide; they must not do I/O, read clocks through adapters or
// link libvirt/serf (DESIGN.md, "Decisions are pure, actions are separate").
// Add each decision package here when it is created.
var purePackages = []string{module + "/quorum", module + "/vm/plan", module + "/vm/reconcile"}

var forbiddenInPure = []string{
	"os", "os/exec", "os/signal", "net", "net/http", "syscall", "unsafe", "C",
	"libvirt.org/go/libvirt", "github.com/hashicorp/serf", "github.com/hashicorp/memberlist",
	"github.com/digitalocean/go-qemu", "github.com/coreos/go-systemd",
	module + "/storage", module + "/hypervisor",
}

func TestPurePackagesImportNoAdapters(t *testing.T) {
	if len(purePackages) == 0 {
		t.Skip("no pure decision package exists yet")
	}
	for _, p := range listPackages(t, purePackages...) {
		if len(p.CgoFiles) > 0 {
			t.Errorf("pure package %s uses cgo", p.ImportPath)
		}
		for _, imp := range p.Imports {
			for _, bad := range forbiddenInPure {
				if imp == bad || strings.HasPrefix(imp, bad+"/") {
					t.Errorf("pure package %s imports %s: decisions must take their inputs as values and return actions", p.ImportPath, imp)
				}
			}
		}
	}
}

// TestCLIDoesNotLinkLibvirt: the CLI is a plain API client, built without cgo,
// so it runs on any machine and never touches libvirt itself.
func TestCLIDoesNotLinkLibvirt(t *testing.T) {
	root := repoRoot(t)
	cmd := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{len .CgoFiles}}", "./cmd/wingman")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/wingman: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if strings.HasPrefix(f[0], "libvirt.org/") || f[0] == module+"/hypervisor" || strings.Contains(f[0], "go-qemu") {
			t.Errorf("cmd/wingman depends on %s: the CLI must only talk to the daemon's API", f[0])
		}
		isStd := !strings.Contains(strings.SplitN(f[0], "/", 2)[0], ".")
		if len(f) == 2 && f[1] != "0" && !isStd {
			t.Errorf("cmd/wingman depends on cgo package %s: the CLI must build with CGO_ENABLED=0", f[0])
		}
	}
}

// TestStorageLinksNoAdapters: the LUN layer is used by everything and must
// stay free of libvirt and serf.
func TestStorageLinksNoAdapters(t *testing.T) {
	for _, p := range listPackages(t, "./storage/...") {
		for _, imp := range p.Imports {
			if strings.HasPrefix(imp, "libvirt.org/") || strings.Contains(imp, "hashicorp/serf") || imp == module+"/hypervisor" || imp == "C" {
				t.Errorf("%s imports %s", p.ImportPath, imp)
			}
		}
	}
}

// wiringFiles are the files of cmd/wingmand that construct and connect the
// parts: only they may import the LUN, libvirt or the serf adapter. The
// rest of the daemon serves the API over what the library packages return
// (STYLE.md, practice 15).
var wiringFiles = map[string]bool{"daemon.go": true, "faults_on.go": true, "faults_off.go": true}

var adaptersOnlyForWiring = []string{module + "/storage", module + "/hypervisor", module + "/quorum/gossip"}

// daemonFiles parses cmd/wingmand's non-test files, build tags ignored.
func daemonFiles(t *testing.T) map[string]*ast.File {
	t.Helper()
	dir := filepath.Join(repoRoot(t), "cmd", "wingmand")
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no Go files in %s: %v", dir, err)
	}
	out := map[string]*ast.File{}
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), n, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(n)] = f
	}
	return out
}

// TestOnlyWiringFilesOfTheDaemonImportAdapters: a feature that needs the
// LUN, libvirt or serf lives in a library package with its own small
// interfaces; the daemon hands it the adapters in its wiring files.
func TestOnlyWiringFilesOfTheDaemonImportAdapters(t *testing.T) {
	for name, f := range daemonFiles(t) {
		if wiringFiles[name] {
			continue
		}
		for _, imp := range f.Imports {
			path := strings.Trim(imp.Path.Value, `"`)
			for _, bad := range adaptersOnlyForWiring {
				if path == bad || strings.HasPrefix(path, bad+"/") {
					t.Errorf("cmd/wingmand/%s imports %s: only the wiring files (%s) may; move the code that needs it into a library package under vm/ or quorum/",
						name, path, strings.Join(slices.Sorted(maps.Keys(wiringFiles)), ", "))
				}
			}
		}
	}
}

// maxDaemonLines bounds cmd/wingmand's non-test code: the daemon wires, the
// features live in library packages.
const maxDaemonLines = 2000

func TestDaemonOnlyWires(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "cmd", "wingmand")
	total := 0
	var sizes []string
	for name := range daemonFiles(t) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		n := bytes.Count(b, []byte("\n"))
		total += n
		sizes = append(sizes, fmt.Sprintf("%s %d", name, n))
	}
	if total > maxDaemonLines {
		slices.Sort(sizes)
		t.Errorf("cmd/wingmand has %d lines of non-test code, more than %d (%s): move features into library packages",
			total, maxDaemonLines, strings.Join(sizes, ", "))
	}
}

// maxMethods bounds the methods of any one type: past it, a type has become
// the place where unrelated features live.
const maxMethods = 35

// TestNoTypeHasTooManyMethods counts the methods declared on each type of
// every package of the module, test files included.
func TestNoTypeHasTooManyMethods(t *testing.T) {
	root := repoRoot(t)
	counts := map[string]int{} // "dir package.Type" -> methods
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (n == "testdata" || n == "vendor" || strings.HasPrefix(n, ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv == nil || len(fn.Recv.List) == 0 {
				continue
			}
			if name := receiverType(fn.Recv.List[0].Type); name != "" {
				counts[rel+" "+f.Name.Name+"."+name]++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for typ, n := range counts {
		if n > maxMethods {
			t.Errorf("%s has %d methods, more than %d: split it by what its methods are about", typ, n, maxMethods)
		}
	}
}

// receiverType is the name of a method receiver's type: T, *T, T[P], *T[P].
func receiverType(e ast.Expr) string {
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.ParenExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}

// layers of the module's packages, lowest first (docs/ARCHITECTURE.md):
// imports go down, or sideways between cores and between features; an
// adapter imports no other adapter, and nothing below cmd/ imports cmd/.
var layers = map[string]int{
	"quorum": 0, "vm/plan": 0, "vm/reconcile": 0, "cmd/api": 0,
	"storage": 1, "hypervisor": 1, "quorum/gossip": 1, "quorum/fence": 1, "quorum/watchdog": 1, "quorum/isolation": 1, "cmd/internal/systemd": 1,
	"vm": 2, "quorum/heartbeat": 2, "vm/maintenance": 2, "vm/drill": 2, "vm/notify": 2, "vm/settings": 2, "vm/quarantine": 2,
	"cmd/wingmand": 3, "cmd/wingman": 3, "cmd/internal/apiview": 3, "cmd/internal/forward": 3, "cmd/internal/metrics": 3,
	"cmd/internal/dashboard": 3, "cmd/internal/configfile": 3, "cmd/internal/manpage": 3, "cmd/internal/journallog": 3,
	"cmd/internal/fenceconfig": 3, "cmd/internal/luns": 3,
}

const adapterLayer = 1

// TestImportsGoOneWay: every package of the product has a place in layers,
// and its imports of the module respect them.
func TestImportsGoOneWay(t *testing.T) {
	for _, p := range listPackages(t, "./...") {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		if strings.HasPrefix(rel, "test/") || strings.HasSuffix(rel, "test") {
			continue // the harness and the xxxtest fakes
		}
		own, ok := layers[rel]
		if !ok {
			t.Errorf("package %s has no layer: add it to layers and to docs/ARCHITECTURE.md", rel)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			dep := strings.TrimPrefix(imp, module+"/")
			l, ok := layers[dep]
			switch {
			case !ok:
			case l > own:
				t.Errorf("%s (layer %d) imports %s (layer %d): imports go down (docs/ARCHITECTURE.md)", rel, own, dep, l)
			case l == own && own == adapterLayer:
				t.Errorf("adapter %s imports adapter %s: adapters stay independent; let a feature package connect them", rel, dep)
			case rel == "cmd/api" || (strings.HasPrefix(dep, "cmd/") && !strings.HasPrefix(rel, "cmd/")):
				t.Errorf("%s imports %s: cmd/api imports nothing of the module, and only cmd/ imports cmd/", rel, dep)
			}
		}
	}
}

// TestOneBootClock: the product reads the boot-time clock in one place
// (heartbeat.BootTime); everything else reads Go's time, which
// testing/synctest fakes in tests. A second reading of its own was once
// how two clocks of one daemon disagreed.
func TestOneBootClock(t *testing.T) {
	root := repoRoot(t)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() && (rel == "test" || strings.HasPrefix(d.Name(), ".")) && rel != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || rel == filepath.Join("quorum", "heartbeat", "clock.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(src, []byte("ClockGettime(")) {
			t.Errorf("%s reads a clock of its own: use heartbeat.BootTime (quorum/heartbeat/clock.go)", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
