package guard

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// Raw QMP or guest-agent commands passed through libvirt mark the domain
// tainted (custom-monitor, custom-ga-command). Wingman's normal operation
// must never send them: the one passthrough is the QMP diagnostic an
// operator asks for ('wingman dominfo --qmp').
var (
	// taintingCalls are the calls that pass raw commands through libvirt:
	// libvirt.org/go/libvirt's, and the pure-Go libvirt client's that
	// go-qemu's LibvirtRPCMonitor uses.
	taintingCalls = map[string]string{
		"QemuMonitorCommand":          "custom-monitor",
		"QemuMonitorCommandWithFiles": "custom-monitor",
		"QEMUDomainMonitorCommand":    "custom-monitor",
		"NewLibvirtRPCMonitor":        "custom-monitor",
		"QemuAgentCommand":            "custom-ga-command",
		"QEMUDomainAgentCommand":      "custom-ga-command",
	}
	// taintingWords are the same through virsh.
	taintingWords = []string{"qemu-monitor-command", "qemu-agent-command"}

	// allowedUse says, for an identifier, the only functions that may use
	// it, as "dir/file.go:Func": the passthrough itself, the diagnostic
	// that calls it, and the daemon's handler of the operator's request.
	// QMPDiagnostics, also the name of two types, counts only as a method
	// call.
	allowedUse = map[string][]string{
		"QemuMonitorCommand": {"hypervisor/qmp.go:qmpPassthrough"},
		"qmpPassthrough":     {"hypervisor/qmp.go:qmpPassthrough", "hypervisor/qmp.go:QMPDiagnostics"},
		"QMPDiagnostics":     {"cmd/wingmand/qmp.go:qmpDiagnostics"},
	}
	callOnly = map[string]bool{"QMPDiagnostics": true}
)

// use is one place an identifier is used: the file (relative to the
// repository, with slashes) and the enclosing top-level function.
type use struct {
	file, fn string
	pos      token.Position
}

func (u use) String() string { return u.file + ":" + u.fn }

// productionFiles lists the module's non-test Go files, without the test
// harness (test/), whose tools may do what the daemon must not.
func productionFiles(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			name := d.Name()
			if rel == "test" || name == "testdata" || name == "vendor" || (strings.HasPrefix(name, ".") && rel != ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no Go files found")
	}
	return files
}

// uses finds, in every production file, each use of the names asked for
// (as a selector x.Name or a plain identifier; for callOnly names, as the
// method of a call) and each string literal containing one of words.
func uses(t *testing.T, root string, names map[string]bool, words []string) (map[string][]use, map[string][]use) {
	t.Helper()
	byName, byWord := map[string][]use{}, map[string][]use{}
	for _, p := range productionFiles(t, root) {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parse %s: %v", p, err)
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		for _, decl := range f.Decls {
			fn := "(package level)"
			if fd, ok := decl.(*ast.FuncDecl); ok {
				fn = fd.Name.Name
			}
			ast.Inspect(decl, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					if sel, ok := n.Fun.(*ast.SelectorExpr); ok && names[sel.Sel.Name] && callOnly[sel.Sel.Name] {
						byName[sel.Sel.Name] = append(byName[sel.Sel.Name], use{rel, fn, fset.Position(sel.Sel.Pos())})
					}
				case *ast.Ident:
					if names[n.Name] && !callOnly[n.Name] {
						byName[n.Name] = append(byName[n.Name], use{rel, fn, fset.Position(n.Pos())})
					}
				case *ast.BasicLit:
					if n.Kind == token.STRING {
						s, _ := strconv.Unquote(n.Value)
						for _, w := range words {
							if strings.Contains(s, w) {
								byWord[w] = append(byWord[w], use{rel, fn, fset.Position(n.Pos())})
							}
						}
					}
				}
				return true
			})
		}
	}
	return byName, byWord
}

// taintViolations lists the tainting uses in the production code under root.
func taintViolations(t *testing.T, root string) []string {
	t.Helper()
	names := map[string]bool{}
	for n := range taintingCalls {
		names[n] = true
	}
	for n := range allowedUse {
		names[n] = true
	}
	byName, byWord := uses(t, root, names, taintingWords)
	var out []string
	for name, list := range byName {
		allowed := allowedUse[name]
		for _, u := range list {
			ok := false
			for _, a := range allowed {
				ok = ok || u.String() == a
			}
			switch taint, bad := taintingCalls[name]; {
			case ok:
			case bad:
				out = append(out, fmt.Sprintf("%s: %s uses %s, which libvirt marks tainted (%s): use libvirt's own API, or the opt-in diagnostic in hypervisor/qmp.go",
					u.pos, u.fn, name, taint))
			default:
				out = append(out, fmt.Sprintf("%s: %s uses %s; only %v may: the QMP diagnostic taints the domain and runs only on an operator's request",
					u.pos, u.fn, name, allowed))
			}
		}
	}
	for w, list := range byWord {
		for _, u := range list {
			out = append(out, fmt.Sprintf("%s: %s mentions virsh %s, which libvirt marks tainted", u.pos, u.fn, w))
		}
	}
	if n := len(byName["QemuMonitorCommand"]); n > 1 {
		out = append(out, fmt.Sprintf("QemuMonitorCommand is used %d times, want once (hypervisor/qmp.go:qmpPassthrough)", n))
	}
	sort.Strings(out)
	return out
}

// TestNoTaintingPassthroughInNormalOperation: outside the opt-in QMP
// diagnostic, no production code passes raw QMP or agent commands through
// libvirt, and that diagnostic is reached only from the daemon's handler of
// an operator's request.
func TestNoTaintingPassthroughInNormalOperation(t *testing.T) {
	for _, v := range taintViolations(t, repoRoot(t)) {
		t.Error(v)
	}
}

// The guard sees what it guards: a module where the agent ping, a health
// check and a loop pass raw commands through is caught at each place.
func TestTaintGuardCatchesPassthroughs(t *testing.T) {
	root := t.TempDir()
	write := func(rel, src string) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("hypervisor/health.go", `package hypervisor

func ping(d *libvirt.Domain) error {
	_, err := d.QemuAgentCommand("{\"execute\":\"guest-ping\"}", 5, 0)
	return err
}

func status(d *libvirt.Domain) (string, error) { return qmpPassthrough(d)("{}") }

var send = (*libvirt.Domain).QemuMonitorCommand
`)
	write("hypervisor/qmp.go", `package hypervisor

func qmpPassthrough(d *libvirt.Domain) func(string) (string, error) {
	return func(cmd string) (string, error) { return d.QemuMonitorCommand(cmd, 0) }
}
`)
	write("vm/watch.go", `package vm

func (m *Manager) watch(ctx context.Context) {
	m.hv.QMPDiagnostics(ctx, "web1")
	exec.Command("virsh", "qemu-monitor-command", "web1", "{}")
}
`)
	write("test/cluster/tool.go", `package cluster

func agent(d *libvirt.Domain) { d.QemuAgentCommand("{}", 5, 0) }
`)
	found := taintViolations(t, root)
	got := strings.Join(found, "\n")
	for _, want := range []string{
		"ping uses QemuAgentCommand, which libvirt marks tainted (custom-ga-command)",
		"status uses qmpPassthrough",
		"(package level) uses QemuMonitorCommand, which libvirt marks tainted (custom-monitor)",
		"watch uses QMPDiagnostics",
		"watch mentions virsh qemu-monitor-command",
		"QemuMonitorCommand is used 2 times",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the guard missed %q; it found:\n%s", want, got)
		}
	}
	for _, v := range found {
		if where, _, _ := strings.Cut(v, " "); strings.Contains(where, "/qmp.go:") || strings.Contains(where, "tool.go") {
			t.Errorf("the guard flags the allowed passthrough or the test harness: %s", v)
		}
	}
}
