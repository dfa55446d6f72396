package vm

// Isolating reports whether ApplyIsolation waits for the step lock (tests
// wait for it instead of sleeping).
func (m *Manager) Isolating() bool { return m.isolating.Load() > 0 }

// DomainState is domainState, for its table test.
var DomainState = domainState
