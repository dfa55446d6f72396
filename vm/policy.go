package vm

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/wingmanha/wingman/vm/plan"
)

// RecordPolicy is what a VM record's policy bytes hold: the failover policy
// and the desired state. Encoded as {"policy":{...plan encoding...}} plus
// "stopped":true when the operator stopped the VM.
type RecordPolicy struct {
	Policy plan.Policy
	// Stopped: stopped through Wingman; no host starts it until Start.
	Stopped bool
	// DiskLost, when set, is the mark of the disk-loss response: the
	// hosts that could not reach the VM's disks when its owner released it
	// (reconcile.Avoided keeps them out of its placement for a while).
	DiskLost *DiskLostMark
}

// DiskLostMark names the hosts that could not reach a VM's disks when its
// owner, at lease epoch Epoch, destroyed its paused copy and released it.
type DiskLostMark struct {
	Hosts []int  `json:"h"`
	Epoch uint64 `json:"e"`
}

type wireRecordPolicy struct {
	Policy   json.RawMessage `json:"policy"`
	Stopped  bool            `json:"stopped,omitempty"`
	DiskLost *DiskLostMark   `json:"disk_lost,omitempty"`
}

// Marshal encodes rp for the LUN.
func (rp RecordPolicy) Marshal() ([]byte, error) {
	p, err := rp.Policy.Marshal()
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(wireRecordPolicy{Policy: p, Stopped: rp.Stopped, DiskLost: rp.DiskLost})
	if err != nil {
		return nil, fmt.Errorf("encode record policy: %w", err)
	}
	if len(b) > plan.MaxEncodedPolicy {
		return nil, fmt.Errorf("%w: encoded record policy is %d bytes, at most %d", plan.ErrInvalidPolicy, len(b), plan.MaxEncodedPolicy)
	}
	return b, nil
}

// UnmarshalRecordPolicy decodes the policy bytes of a VM record. A bare
// vm/plan policy (with "v" at the top) is read as a running VM's.
func UnmarshalRecordPolicy(b []byte) (RecordPolicy, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(b, &probe); err != nil {
		return RecordPolicy{}, fmt.Errorf("%w: decode record policy: %v", plan.ErrInvalidPolicy, err)
	}
	if _, bare := probe["v"]; bare {
		p, err := plan.UnmarshalPolicy(b)
		return RecordPolicy{Policy: p}, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w wireRecordPolicy
	if err := dec.Decode(&w); err != nil {
		return RecordPolicy{}, fmt.Errorf("%w: decode record policy: %v", plan.ErrInvalidPolicy, err)
	}
	p, err := plan.UnmarshalPolicy(w.Policy)
	if err != nil {
		return RecordPolicy{}, err
	}
	return RecordPolicy{Policy: p, Stopped: w.Stopped, DiskLost: w.DiskLost}, nil
}
