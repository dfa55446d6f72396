package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/wingmanha/wingman/cmd/internal/manpage"
)

// TestGeneratedFilesUpToDate: the committed completion script and man page
// are what the command table generates (-update rewrites them).
func TestGeneratedFilesUpToDate(t *testing.T) {
	code, out, errOut := wingman(t, "completion", "bash")
	if code != exitOK {
		t.Fatalf("completion bash: exit %d, %s", code, errOut)
	}
	checkGolden(t, filepath.Join("..", "..", "contrib", "completion", "wingman.bash"), out)
	for _, shell := range []string{"zsh", "fish"} {
		code, out, errOut := wingman(t, "completion", shell)
		if code != exitOK {
			t.Fatalf("completion %s: exit %d, %s", shell, code, errOut)
		}
		checkGolden(t, filepath.Join("..", "..", "contrib", "completion", "wingman."+shell), out)
	}

	dir := t.TempDir()
	if code, _, errOut := wingman(t, "man", dir); code != exitOK {
		t.Fatalf("man: exit %d, %s", code, errOut)
	}
	page, err := os.ReadFile(filepath.Join(dir, "wingman.1"))
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, filepath.Join("..", "..", "contrib", "man", "wingman.1"), string(page))
	for _, c := range commands {
		if !bytes.Contains(page, []byte(`.SS "wingman `+manpage.Escape(c.name))) {
			t.Errorf("man page has no section for %q", c.name)
		}
	}
}

// TestManPageRenders formats the page with groff, when it is installed,
// and fails on any warning.
func TestManPageRenders(t *testing.T) {
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("groff is not installed")
	}
	cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-P-cbou")
	cmd.Stdin = bytes.NewReader(manPage())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil || errOut.Len() > 0 {
		t.Errorf("groff: %v\n%s", err, errOut.String())
	}
	for _, want := range []string{"wingman maintenance enter [flags] HOST", "--connect SOCKET", "EXIT STATUS", "--prefer HOST,..."} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
}

// TestBashCompletion sources the script in bash and completes the lines of
// completionCases, with a wingman function standing in for the binary.
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	script := string(bashCompletion())
	for _, tc := range completionCases {
		words := strings.Split(tc.line, " ")
		prog := script + `
wingman() {
    case "$*" in
    *"list --all --name") echo web1; echo db1; echo scratch ;;
    *"host-list --name") echo kvm1; echo kvm2 ;;
    esac
}
COMP_WORDS=(` + quoteWords(words) + `)
COMP_CWORD=` + itoa(len(words)-1) + `
_wingman
echo "${COMPREPLY[*]}"
`
		want := tc.want
		if tc.line == "wingman " {
			want += " -c --connect --json -h --help -V --version"
		}
		out, err := exec.CommandContext(context.Background(), bash, "--norc", "-c", prog).CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || !sameWords(got, want) {
			t.Errorf("complete %q: %q (%v), want %q", tc.line, got, err, want)
		}
	}
}

func quoteWords(w []string) string {
	q := make([]string, len(w))
	for i, s := range w {
		q[i] = "'" + s + "'"
	}
	return strings.Join(q, " ")
}

func itoa(n int) string { return strconv.Itoa(n) }

// completionCases are lines typed (the last word is being completed) and the
// candidates bash, zsh and fish must offer, in any order (bash offers the
// global flags beside the commands). wingman is a function that stands in for the binary: it knows
// the VMs web1, db1 and scratch and the hosts kvm1 and kvm2.
var completionCases = []struct{ line, want string }{
	{"wingman ", "completion config dominfo drill events fence ha host host-list hostinfo keygen list lun maintenance man migrate notify protect rolling-update set-policy start status stop ui unprotect version help"},
	{"wingman -", "-c --connect --json -h --help -V --version"},
	{"wingman mai", "maintenance"},
	{"wingman config ", "get list set unset"},
	{"wingman maintenance e", "enter exit"},
	{"wingman maintenance enter --", "--help --all --no-wait --json --connect"},
	{"wingman protect --priority ", "high medium low"},
	{"wingman protect --isolation l", "leave-running"},
	{"wingman protect --priority high w", "web1"},
	{"wingman -c /tmp/s dominfo ", "web1 db1 scratch"},
	{"wingman migrate web1 ", "kvm1 kvm2"},
	{"wingman migrate web1 kvm1 ", ""},
	{"wingman drill ", "kvm1 kvm2"},
	{"wingman drill --", "--help --live --json --connect"},
	{"wingman rolling-update --d", "--dry-run"},
	{"wingman set-policy db1 --prefer k", "kvm1 kvm2"},
	{"wingman lun format --profile ", "default fast"},
	{"wingman completion ", "bash zsh fish"},
	{"wingman ha ", "arm disarm"},
	{"wingman ha disarm --f", "--for --force"},
	{"wingman help ma", "maintenance man"},
}

func sameWords(got, want string) bool {
	g, w := strings.Fields(got), strings.Fields(want)
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}

// TestZshCompletion sources the script in zsh and runs _wingman with the
// completion system's builtins (compadd, _describe, _files) replaced by
// functions that print the candidates matching the word being completed.
func TestZshCompletion(t *testing.T) {
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Skip("zsh is not installed (make deps installs it)")
	}
	script := filepath.Join(t.TempDir(), "_wingman")
	if err := os.WriteFile(script, zshCompletion(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range completionCases {
		words := strings.Split(tc.line, " ")
		prog := `
compdef() { :; }
compadd() {
    [[ $1 == -- ]] && shift
    local w; for w in "$@"; do [[ $w == ${PREFIX}* ]] && reply+=("$w"); done
}
_describe() {
    [[ $1 == -t ]] && shift 2
    local e n; for e in "${(@P)2}"; do n=${e%%:*}; [[ $n == ${PREFIX}* ]] && reply+=("$n"); done
}
_files() { reply+=(FILES) }
source ` + script + `
wingman() {
    case "$*" in
    *"list --all --name") print web1; print db1; print scratch ;;
    *"host-list --name") print kvm1; print kvm2 ;;
    esac
}
words=(` + quoteWords(words) + `)
CURRENT=` + itoa(len(words)) + `
PREFIX=${words[CURRENT]}
reply=()
_wingman
print -r -- "${reply[*]}"
`
		out, err := exec.CommandContext(context.Background(), zsh, "-f", "-c", prog).CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || !sameWords(got, tc.want) {
			t.Errorf("complete %q: %q (%v), want %q", tc.line, got, err, tc.want)
		}
	}
}

// TestFishCompletion loads the script in fish and asks fish itself for the
// candidates (complete -C).
func TestFishCompletion(t *testing.T) {
	fish, err := exec.LookPath("fish")
	if err != nil {
		t.Skip("fish is not installed (make deps installs it)")
	}
	script := filepath.Join(t.TempDir(), "wingman.fish")
	if err := os.WriteFile(script, fishCompletion(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range completionCases {
		prog := `
source ` + script + `
function wingman
    switch "$argv"
        case '*list --all --name'
            printf '%s\n' web1 db1 scratch
        case '*host-list --name'
            printf '%s\n' kvm1 kvm2
    end
end
complete -C '` + tc.line + `'
`
		out, err := exec.CommandContext(context.Background(), fish, "--no-config", "-c", prog).CombinedOutput()
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if w, _, _ := strings.Cut(l, "\t"); w != "" {
				got = append(got, w)
			}
		}
		if err != nil || !sameWords(strings.Join(got, " "), tc.want) {
			t.Errorf("complete %q: %q (%v), want %q", tc.line, got, err, tc.want)
		}
	}
}
