package fence

import (
	"context"
	"fmt"
	"time"

	"github.com/wingmanha/wingman/quorum"
)

// ManualResult is how an operator's fence went (api.FenceResult).
type ManualResult struct {
	Host     string        `json:"host"`
	Test     bool          `json:"test"`
	Mailbox  string        `json:"mailbox"` // acknowledged, not acknowledged
	Agent    string        `json:"agent,omitempty"`
	Duration time.Duration `json:"duration_ns"`
}

// Manual is an operator's fence of host h ('wingman fence'): a power-off
// through its agent; or, with test ('wingman fence --test'), a test
// message through its LUN mailbox (mailbox sends it and says whether h
// acknowledged it) and its agent's power status, which changes nothing.
// f may be nil (no agents); event records what was done, as a warning for
// a power-off.
func Manual(ctx context.Context, f *ByName, h quorum.Host, test bool, mailbox func(context.Context) (bool, error),
	event func(warning bool, msg string)) (ManualResult, error) {
	start := time.Now()
	res := ManualResult{Host: h.Name, Test: test}
	if !test {
		if f == nil {
			return res, fmt.Errorf("power off %s: no fence agent is configured for it: %w", h.Name, ErrUnknownHost)
		}
		confirmed, err := f.PowerOff(ctx, h.ID)
		event(true, fmt.Sprintf("operator power-fenced %s: confirmed=%v", h.Name, confirmed))
		res.Agent, res.Duration = fmt.Sprintf("off confirmed=%v", confirmed), time.Since(start)
		return res, err
	}
	acked, err := mailbox(ctx)
	if err != nil {
		return res, err
	}
	res.Mailbox = "not acknowledged"
	if acked {
		res.Mailbox = "acknowledged"
	}
	if f != nil {
		if l, ok := f.Levels(h.ID); ok {
			res.Agent = l.Status(ctx)
		}
	}
	res.Duration = time.Since(start)
	event(false, fmt.Sprintf("fence test of %s: mailbox %s %s", h.Name, res.Mailbox, res.Agent))
	return res, nil
}
