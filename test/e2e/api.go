package e2e

import "github.com/wingmanha/wingman/cmd/api"

// The API's types and client, under the names the scenarios use.
type (
	Status             = api.Status
	LUNHealth          = api.LUNHealth
	Timings            = api.Timings
	CapacityVerdict    = api.CapacityVerdict
	Host               = api.Host
	VM                 = api.VM
	Policy             = api.Policy
	ProtectRequest     = api.ProtectRequest
	MigrateRequest     = api.MigrateRequest
	MigrateResult      = api.MigrateResult
	MaintenanceRequest = api.MaintenanceRequest
	FenceRequest       = api.FenceRequest
	FenceResult        = api.FenceResult
	Event              = api.Event
	Error              = api.Error
	Client             = api.Client
	RemoteError        = api.RemoteError
	NotifyTarget       = api.NotifyTarget
)

// NewClient returns a client for a wingmand socket.
func NewClient(socket string) *Client { return api.NewClient(socket) }

// IsNotFound reports whether err is a 404 from wingmand.
func IsNotFound(err error) bool { return api.IsNotFound(err) }
