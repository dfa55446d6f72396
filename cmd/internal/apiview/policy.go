package apiview

import (
	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/vm/plan"
)

// Policy is p as the API shows it.
func Policy(p plan.Policy) api.Policy {
	return api.Policy{Priority: p.Priority.String(), Restart: string(p.Restart), RestartMax: p.RestartLimit.Max,
		RestartWindow: p.RestartLimit.Window, AntiAffinity: p.AntiAffinity, PreferredHosts: p.PreferredHosts,
		StartOrder: p.StartOrder, StartDelay: p.StartDelay, WaitGuestAgent: p.WaitGuestAgent, Isolation: string(p.Isolation)}
}

// ApplyPolicy sets the fields of a that are given on p and validates the
// result (an api.ErrInvalid error that names the field).
func ApplyPolicy(p plan.Policy, a api.Policy) (plan.Policy, error) {
	if a.Priority != "" {
		pr, err := plan.ParsePriority(a.Priority)
		if err != nil {
			return p, api.Fail(api.ErrInvalid, "use high, medium, low or 0..1000", "priority: %v", err)
		}
		p.Priority = pr
	}
	if a.Restart != "" {
		p.Restart = plan.RestartPolicy(a.Restart)
	}
	if a.RestartMax != 0 {
		p.RestartLimit.Max = a.RestartMax
	}
	if a.RestartWindow != 0 {
		p.RestartLimit.Window = a.RestartWindow
	}
	if a.AntiAffinity != "" {
		p.AntiAffinity = a.AntiAffinity
	}
	if a.PreferredHosts != nil {
		p.PreferredHosts = a.PreferredHosts
	}
	if a.StartOrder != 0 {
		p.StartOrder = a.StartOrder
	}
	if a.StartDelay != 0 {
		p.StartDelay = a.StartDelay
	}
	if a.WaitGuestAgent {
		p.WaitGuestAgent = true
	}
	if a.Isolation != "" {
		p.Isolation = plan.IsolationResponse(a.Isolation)
	}
	if err := p.Validate(); err != nil {
		return p, api.Fail(api.ErrInvalid, "see 'wingman help protect'", "%v", err)
	}
	return p, nil
}
