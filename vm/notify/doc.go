// Package notify tells the administrator what happened: one message per
// incident (a lost host, how it was declared dead, where each of its VMs
// came back and how long it took), and a "resolved" message when the host
// is back, through mail (SMTP with STARTTLS), a signed JSON webhook, or an
// exec hook.
//
// It owns:
//   - Summarize, a pure function from the cluster's events (every host's
//     ring on the LUN) to incidents with stable ids, so every host computes
//     the same ones;
//   - Due, Claim and Round, the ledger rule: the coordinator claims an
//     incident in the LUN's incident ledger (storage.ClusterRecords) before
//     sending it, so neither a restart nor a new coordinator sends it again;
//   - Validate and Wants, the targets' checks and rules (targets are stored
//     in the LUN's cluster settings record; secrets stay in files on each
//     host);
//   - Sender, which delivers in the background with a bounded queue, retries
//     with exponential backoff and a rate limit per target, and reports
//     every attempt through a callback;
//   - DueWarnings, the pure rule of the proactive warnings (new, repeated,
//     cleared), claimed in the same ledger;
//   - Service, which runs all of it on one host from small interfaces (the
//     LUN's records and events, the cluster's decision, an event writer):
//     the incident rounds as coordinator, the warnings this host owns,
//     test messages, targets, and a count per target.
//
// What it must never do: block its caller (the heartbeat, the VM manager,
// a failover) on a target, send from a host that is not the coordinator,
// or put a secret on the LUN. The webhook body is documented in
// docs/NOTIFICATIONS.md; its fields are only ever added to.
package notify
