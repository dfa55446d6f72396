// Package golden runs golden-file tests for the pure decision packages: each
// file under testdata holds an input, a line "----", and the expected
// output; `go test -update` rewrites the output part. It is imported by
// tests only and never by production code.
package golden

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the expected output of the golden files (after \"----\")")

// Run runs produce on the input of every file matching pattern, as a
// subtest named after the file, and compares its output with the file's.
func Run(t *testing.T, pattern string, produce func(t *testing.T, input string) string) {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files match %s: %v", pattern, err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), filepath.Ext(file)), func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			src, want, _ := strings.Cut(string(raw), "----\n")
			got := produce(t, src)
			if *update {
				if err := os.WriteFile(file, []byte(src+"----\n"+got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if got != want {
				t.Errorf("%s differs (rerun with -update if intended)\n--- got\n%s--- want\n%s", file, got, want)
			}
		})
	}
}
