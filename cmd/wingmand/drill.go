package main

// The drill's questions to one host, forwarded there.

import (
	"context"

	"github.com/wingmanha/wingman/vm/drill"
)

// drillPeers sends a drill's questions to a host through the forwarding.
type drillPeers struct{ d apiServer }

func (p drillPeers) Check(ctx context.Context, host int, req drill.CheckRequest) (drill.Answer, error) {
	return p.d.ops.drillCheck.Call(ctx, host, "", req)
}

func (p drillPeers) Live(ctx context.Context, host int, req drill.LiveRequest) (drill.Hop, error) {
	return p.d.ops.drillLive.Call(ctx, host, "", req)
}

func (p drillPeers) Cleanup(ctx context.Context, host int) error {
	_, err := p.d.ops.drillCleanup.Call(ctx, host, "", none{})
	return err
}

func (p drillPeers) CheckDisks(ctx context.Context, host int, req drill.DiskCheckRequest) (drill.Answer, error) {
	return p.d.ops.diskCheck.Call(ctx, host, "", req)
}
