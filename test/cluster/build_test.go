package cluster

import (
	"context"
	"errors"
	"testing"
)

// A clone without the commit (a shallow one) is a missing prerequisite, which a test may skip
// on, not a build failure.
func TestBuildCommitNamesAMissingCommit(t *testing.T) {
	_, err := BuildCommit(context.Background(), "0000000000000000000000000000000000000001", "./cmd/wingmand")
	if !errors.Is(err, ErrPrerequisite) {
		t.Fatalf("BuildCommit of a commit the clone lacks: %v, want ErrPrerequisite", err)
	}
}
