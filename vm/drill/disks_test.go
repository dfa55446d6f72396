package drill

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestFitAnswer(t *testing.T) {
	vms := []string{"a", "b", "c", "d", "e", "f"}
	long := strings.Repeat("disk vda: /very/long/path/ü/", 20)
	problems := map[string]string{"a": long, "c": "short", "f": long + long}
	ans := FitAnswer(vms, problems, AnswerBudget)
	b, _ := json.Marshal(ans)
	if len(b) > AnswerBudget {
		t.Errorf("answer is %d bytes, over the budget of %d", len(b), AnswerBudget)
	}
	if len(ans.Failed) != 3 || ans.Failed["2"] != "short" || !strings.HasSuffix(ans.Failed["0"], "...") ||
		!strings.HasPrefix(ans.Failed["5"], "disk vda: /very/long") {
		t.Errorf("answer = %q, want a, c and f listed, the long ones trimmed", ans.Failed)
	}
	for k, p := range ans.Failed {
		if !utf8.ValidString(p) {
			t.Errorf("problem %s cut inside a character: %q", k, p)
		}
	}
	if ans := FitAnswer(vms, map[string]string{"b": "x"}, AnswerBudget); ans.Failed["1"] != "x" || len(ans.Failed) != 1 {
		t.Errorf("small answer = %q, want it untouched", ans.Failed)
	}
}
