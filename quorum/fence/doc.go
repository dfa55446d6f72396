// Package fence powers hosts off through standard ClusterLabs fence agents
// (fence_ipmilan, fence_redfish, fence_apc_snmp, ...): the executables that
// Pacemaker and the old fenced run, which read key=value lines on stdin until
// EOF and answer with their exit code (0 success; 1 failure; for
// action=status, 0 when the target is on and 2 when it is off).
//
// It owns:
//   - the per-host fence Config (which agent, its parameters, timeout,
//     retries, delay) and its validation, which refuses what could inject
//     extra keys into the agent's input or run the wrong program;
//   - running an agent: one process group per run, its input on stdin (never
//     on the command line, where ps would show the password), its output
//     bounded, the whole group killed when the run outlives its deadline;
//   - PowerOff: action=off, then action=status until the agent reports the
//     host off or the timeout ends. Only a status that says "off" confirms a
//     fence; a timeout is a failure, never an assumed success;
//   - Status, Monitor and On, for the operator's `fence --test` and for
//     powering a repaired host back on;
//   - keeping secrets (password, passwd, community, secret, token, key
//     parameters) out of every error, result and log line.
//
// It must never decide whether or when to fence (package quorum does, from
// the LUN and serf views; a confirmed power-off is one of its inputs), never
// talk to a management controller itself (the agents do; we never
// re-implement them), never treat an unconfirmed off as a dead host, and
// never block without a bound: every call ends by its timeout or its context.
package fence
