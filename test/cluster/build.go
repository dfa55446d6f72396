package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// modulePath is the Go module whose binaries BuildBinary builds.
const modulePath = "github.com/wingmanha/wingman"

// builds caches one build per package per process: a test binary builds wingmand once.
var builds struct {
	mu   sync.Mutex
	done map[string]buildResult
}

type buildResult struct {
	path string
	err  error
}

// BuildBinary builds a main package of this module (e.g. "./cmd/wingmand") with `go build` once
// per process and returns the path of the binary. The binaries go to <TempDir>/wingman-test-bin,
// written under a temporary name and renamed, so that test binaries of several packages running
// at once never see a half-written file. The environment variable WINGMAN_BIN_DIR, when set,
// names a directory that already holds the binaries (wingmand, wingman, fenceagent): nothing is
// built then. cgoOff builds without cgo (the CLI must not link libvirt). tags are build tags
// (go build -tags); a tagged binary is named after the package and its tags (wingmand-wingman_faults),
// so that it never replaces the untagged one; in WINGMAN_BIN_DIR the tagged name is looked for
// first, then the plain one.
func BuildBinary(ctx context.Context, pkg string, cgoOff bool, tags ...string) (string, error) {
	name := filepath.Base(pkg)
	if len(tags) > 0 {
		name += "-" + strings.Join(tags, "-")
	}
	if dir := os.Getenv("WINGMAN_BIN_DIR"); dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil && len(tags) > 0 {
			p = filepath.Join(dir, filepath.Base(pkg))
		}
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("WINGMAN_BIN_DIR: %w", err)
		}
		return p, nil
	}
	return cached(pkg+" "+strings.Join(tags, ","), func() (string, error) { return build(ctx, pkg, name, cgoOff, tags) })
}

// cached runs a build once per process for each key and returns its result every time.
func cached(key string, build func() (string, error)) (string, error) {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if r, ok := builds.done[key]; ok {
		return r.path, r.err
	}
	if builds.done == nil {
		builds.done = map[string]buildResult{}
	}
	p, err := build()
	builds.done[key] = buildResult{p, err}
	return p, err
}

func build(ctx context.Context, pkg, name string, cgoOff bool, tags []string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build %s: %w: the go tool is needed to build it", pkg, ErrPrerequisite)
	}
	dir := filepath.Join(os.TempDir(), "wingman-test-bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	out := filepath.Join(dir, name)
	tmp := fmt.Sprintf("%s.%d.tmp", out, os.Getpid())
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	args := []string{"build", "-o", tmp}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	cmd := exec.CommandContext(ctx, goBin, append(args, pkg)...)
	cmd.Dir = root
	cmd.Env = os.Environ()
	if cgoOff {
		cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("go build %s: %w:\n%s", pkg, err, strings.TrimSpace(string(b)))
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	return out, nil
}

// ModuleRoot finds the directory of this module's go.mod, from the working directory upwards
// (a test runs in its package's directory, `go run ./test/demo` in the module root).
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		b, err := os.ReadFile(filepath.Join(d, "go.mod"))
		if err == nil && strings.Contains(string(b), "module "+modulePath+"\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod of %s above %s: run from inside the repository (or set WINGMAN_BIN_DIR)", modulePath, dir)
		}
	}
}

// BuildCommit builds a main package of this module as it was at commit (e.g. "./cmd/wingmand" of
// the previous release, for a test of a rolling upgrade), once per process, and returns the path
// of the binary. The commit's tree is taken with `git archive` into a temporary directory (the
// repository's worktrees and index are left alone) and built there with the same module cache.
// It fails with ErrPrerequisite when the clone lacks the commit (a shallow clone).
func BuildCommit(ctx context.Context, commit, pkg string, tags ...string) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	if out, err := exec.CommandContext(ctx, "git", "-C", root, "cat-file", "-e", commit+"^{commit}").CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s at %s: %w: the clone does not hold that commit (a shallow clone? fetch with --unshallow): %v %s",
			pkg, commit, ErrPrerequisite, err, strings.TrimSpace(string(out)))
	}
	return cached(commit+" "+pkg+" "+strings.Join(tags, ","), func() (string, error) { return buildCommit(ctx, root, commit, pkg, tags) })
}

func buildCommit(ctx context.Context, root, commit, pkg string, tags []string) (string, error) {
	src, err := os.MkdirTemp("", "wingman-"+commit+"-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(src)
	archive := exec.CommandContext(ctx, "sh", "-c", `git -C "$1" archive --format=tar "$2" | tar -x -C "$3"`, "sh", root, commit, src)
	if out, err := archive.CombinedOutput(); err != nil {
		return "", fmt.Errorf("extract %s: %w: %s", commit, err, strings.TrimSpace(string(out)))
	}
	dir := filepath.Join(os.TempDir(), "wingman-test-bin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	out := filepath.Join(dir, strings.Join(append([]string{filepath.Base(pkg), commit}, tags...), "-"))
	args := []string{"build", "-o", out}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = src
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s at %s: %w:\n%s", pkg, commit, err, strings.TrimSpace(string(b)))
	}
	return out, nil
}
