// Package apiview is the API's view of the library packages: it converts
// their status types (quorum's decision, vm's list and policies,
// vm/maintenance's evacuation, vm/drill's report, hypervisor's QMP
// diagnostics, the LUN's events and the incidents vm/notify finds in them,
// serf's members and vm/notify's targets and test results) to the types of
// cmd/api, and an API policy back to a plan.Policy.
//
// Its functions are pure: they read what they are given, do no I/O and
// read no clock, so one answer is the same whichever host computes it.
// It must never decide anything; wingmand reads the inputs and serves the
// results.
package apiview
