// Package api is the contract between wingmand and its clients: the JSON
// types of every endpoint and a small client. wingmand serves it over HTTP
// on a unix socket (root and group wingman only); the wingman CLI is just
// another client. It links nothing but the standard library, so the CLI
// stays free of cgo and libvirt.
//
// Endpoints (docs/openapi.json describes each, and a test of cmd/wingmand
// keeps it equal to the routes it serves; all JSON; errors are {"error": "...", "hint": "...", "class":
// "..."} with a 4xx/5xx status; errors.Is(err, ErrNotFound) and the other
// classes work on the client's errors, whichever host acted):
//
//	GET  /v1/status                      Status
//	GET  /v1/hosts                       []Host
//	GET  /v1/hosts/{name-or-id}          Host
//	GET  /v1/vms                         []VM
//	GET  /v1/vms/{name-or-uuid}          VM
//	GET  /v1/vms/{name-or-uuid}?qmp=1    VM with QMP: QEMU's view, from the host that runs it (taints the domain)
//	POST /v1/vms/{name-or-uuid}/protect  ProtectRequest -> VM
//	POST /v1/vms/{name-or-uuid}/unprotect
//	POST /v1/vms/{name-or-uuid}/policy   ProtectRequest -> VM
//	POST /v1/vms/{name-or-uuid}/start
//	POST /v1/vms/{name-or-uuid}/stop
//	POST /v1/vms/{name-or-uuid}/migrate  MigrateRequest -> MigrateResult
//	POST /v1/hosts/{name-or-id}/maintenance  MaintenanceRequest -> Host
//	POST /v1/hosts/{name-or-id}/fence    FenceRequest -> FenceResult
//	POST /v1/hosts/{name-or-id}/exec     ExecRequest -> ExecResult (host in maintenance, empty)
//	POST /v1/hosts/{name-or-id}/reboot   RebootRequest -> RebootResult (host in maintenance, no guest running)
//	GET  /v1/hosts/{name-or-id}/evacuation  Evacuation (progress of maintenance enter)
//	GET  /v1/hosts/{name-or-id}/evacuation-plan  EvacuationPlan (what maintenance would move where)
//	GET  /v1/events?since=RFC3339&limit=N []Event
//	GET  /v1/incidents                   []Incident (each failover's timeline)
//
// The mutual-TLS listener also serves the web dashboard under /ui/ (see
// cmd/internal/dashboard); `wingman ui` serves it on 127.0.0.1.
//
// Router serves them: bodies and query parameters are strict, a body has a
// read deadline, and an unknown path or method answers the one error shape.
//
// A request about a VM or host that another host must carry out (the VM's
// owner, the host whose libvirt has a domain to protect, the host entering
// maintenance) is forwarded by the daemon to that host alone.
package api
