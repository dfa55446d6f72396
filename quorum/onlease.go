package quorum

// OnLease reports whether the decision counts host h alive only through a
// network lease seen for it: its heartbeat has not changed for R +
// io_timeout, but a lease granted to it was seen within D. Status says so
// ("alive by network lease"); no rule reads it.
func (h Host) OnLease() bool { return h.leased }
