package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestGeneratedFilesUpToDate: the committed completion script and man page
// are what the command table generates (-update rewrites them).
func TestGeneratedFilesUpToDate(t *testing.T) {
	code, out, errOut := wingman(t, "completion", "bash")
	if code != exitOK {
		t.Fatalf("completion bash: exit %d, %s", code, errOut)
	}
	checkGolden(t, filepath.Join("..", "..", "contrib", "completion", "wingman.bash"), out)

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
		if !bytes.Contains(page, []byte(`.SS "wingman `+roff(c.name))) {
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

// TestBashCompletion sources the script in bash and completes a few lines,
// with a wingman function standing in for the binary.
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash is not installed")
	}
	script := string(bashCompletion())
	for _, tc := range []struct {
		line string // the words typed; the last one is being completed
		want string
	}{
		{"wingman ", "completion dominfo drill events fence host-list hostinfo keygen list lun maintenance man migrate notify protect rolling-update set-policy start status stop ui unprotect version help -c --connect --json -h --help -V --version"},
		{"wingman -", "-c --connect --json -h --help -V --version"},
		{"wingman mai", "maintenance"},
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
		{"wingman help ma", "maintenance man"},
	} {
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
		out, err := exec.CommandContext(context.Background(), bash, "--norc", "-c", prog).CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != tc.want {
			t.Errorf("complete %q: %q (%v), want %q", tc.line, got, err, tc.want)
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
