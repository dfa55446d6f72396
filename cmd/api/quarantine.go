package api

import (
	"context"
	"net/http"
)

// Quarantine puts a host in quarantine, or ends its quarantine, through c
// (a function, not a method: Client has as many methods as a type may).
func Quarantine(ctx context.Context, c *Client, nameOrID string, r QuarantineRequest) (QuarantineResult, error) {
	var q QuarantineResult
	return q, c.do(ctx, http.MethodPost, "/v1/hosts/"+esc(nameOrID)+"/quarantine", r, &q)
}
