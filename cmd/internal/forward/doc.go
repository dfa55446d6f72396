// Package forward carries wingmand's API operations to the one host that
// must act (a VM's owner, the named host), over serf: a table of typed
// operations that the daemon registers and calls. A call about this host
// runs here; any other is sent to that host alone (serf's node filter),
// which runs the same function and sends its answer back.
//
// It owns:
//   - the table (Table, Register, Op.Call): one answer type whether the
//     operation ran here or on another host, decoded from the wire into the
//     operation's own result type;
//   - the size budget of serf's messages (RequestBudget, AnswerBudget),
//     enforced here and nowhere else: a request or an answer too large to
//     travel is refused with an error that says so, never dropped by serf;
//   - the error classes on the wire: an error keeps its api class and hint
//     through a forward, so errors.Is(err, api.ErrNotFound) holds on the
//     asking host and, through the HTTP API, on the client;
//   - the wire format (Query and its JSON envelope), which is wingmand's
//     from before the table, so that hosts of both versions forward to each
//     other during a rolling update.
//
// It must never decide where an operation goes (the daemon names the
// host) or what it does (the library packages do); it only carries it.
package forward
