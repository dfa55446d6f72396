package e2e

import (
	"os"
	"strings"
	"testing"
)

// TestAPIContractInStep fails when cmd/internal/api/types.go changed and apitypes.go, its copy
// (test/ may not import an internal package of cmd/), did not follow.
func TestAPIContractInStep(t *testing.T) {
	body := func(path string) string {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		_, rest, ok := strings.Cut(string(b), "\nimport ")
		if !ok {
			t.Fatalf("%s: no import", path)
		}
		return rest
	}
	if body("../../cmd/internal/api/types.go") != body("apitypes.go") {
		t.Fatal("apitypes.go differs from cmd/internal/api/types.go: copy it again (sed 's/^package api$/package e2e/')")
	}
}
