package hypervisor

import (
	"context"
	"fmt"

	"libvirt.org/go/libvirt"
)

// Capacity reports the host's CPUs and memory and what its running guests
// use, for placement and admission control.
func (c *Conn) Capacity(ctx context.Context) (Capacity, error) {
	op := fmt.Sprintf("read capacity of %s", c.host)
	if err := ctx.Err(); err != nil {
		return Capacity{}, &opError{op: op, cause: err}
	}
	lc, gen, err := c.acquire(op)
	if err != nil {
		return Capacity{}, err
	}
	defer lc.Close()
	ni, err := lc.GetNodeInfo()
	if err != nil {
		return Capacity{}, c.fail(lc, gen, op, err)
	}
	capa := Capacity{CPUs: int(ni.Cpus), MemoryBytes: ni.Memory * 1024}
	// Free memory is a nice-to-have: placement works from guest totals, and
	// test:/// with a custom host file cannot report it.
	if free, err := lc.GetFreeMemory(); err == nil {
		capa.FreeMemoryBytes, capa.FreeMemoryKnown = free, true
	}
	doms, err := lc.ListAllDomains(libvirt.CONNECT_LIST_DOMAINS_ACTIVE)
	if err != nil {
		return Capacity{}, c.fail(lc, gen, op, err)
	}
	for i := range doms {
		info, err := doms[i].GetInfo()
		doms[i].Free()
		if err != nil {
			continue // stopped between the listing and the query
		}
		capa.RunningGuests++
		capa.GuestMemoryBytes += info.Memory * 1024
		capa.GuestVCPUs += int(info.NrVirtCpu)
	}
	return capa, nil
}
