package fenceconfig

import (
	"strings"
	"testing"
	"time"

	"github.com/wingmanha/wingman/cmd/internal/configfile"
)

// agent is any executable: the checks here stop before running it.
const agent = "/bin/true"

func dur(d time.Duration) configfile.Duration { return configfile.Duration{Duration: d} }

func devices() map[string]Device {
	return map[string]Device{
		"kvm2-ipmi":  {Agent: agent, Params: map[string]string{"ip": "192.0.2.102"}, Timeout: dur(3 * time.Second)},
		"kvm2-pdu-a": {Agent: agent, Params: map[string]string{"plug": "2"}},
		"kvm2-pdu-b": {Agent: agent, Params: map[string]string{"plug": "2"}},
		"kvm3-ipmi":  {Agent: agent},
	}
}

func TestProblems(t *testing.T) {
	tests := []struct {
		name    string
		hosts   map[string]Host
		edit    func(map[string]Device)
		key     string // "" means valid
		message string
	}{
		{"single agent, as before", map[string]Host{"kvm2": {Agent: agent, Timeout: dur(20 * time.Second)}}, nil, "", ""},
		{"levels", map[string]Host{"kvm2": {Levels: []string{"kvm2-ipmi", "kvm2-pdu-a, kvm2-pdu-b"}}, "kvm3": {Levels: []string{"kvm3-ipmi"}}}, nil, "", ""},
		{"unknown device", map[string]Host{"kvm2": {Levels: []string{"kvm2-ipmi", "kvm2-pdu"}}}, nil,
			"fence.kvm2.levels", `level 2 names device "kvm2-pdu", which no [fence_device.kvm2-pdu] table defines: add that table`},
		{"level with no agent", map[string]Host{"kvm2": {Levels: []string{"kvm2-ipmi"}}}, func(d map[string]Device) { d["kvm2-ipmi"] = Device{} },
			"fence_device.kvm2-ipmi.agent", "is not set: name the fence agent"},
		{"empty level", map[string]Host{"kvm2": {Levels: []string{"kvm2-ipmi", " "}}}, nil, "fence.kvm2.levels", "level 2 is empty"},
		{"extra comma", map[string]Host{"kvm2": {Levels: []string{"kvm2-ipmi,"}}}, nil, "fence.kvm2.levels", "empty device name"},
		{"duplicate level", map[string]Host{"kvm2": {Levels: []string{"kvm2-ipmi", "kvm2-ipmi"}}}, nil,
			"fence.kvm2.levels", `device "kvm2-ipmi" is in level 1 and again in level 2: list each device once`},
		{"device twice in a level", map[string]Host{"kvm2": {Levels: []string{"kvm2-pdu-a,kvm2-pdu-a"}}}, nil,
			"fence.kvm2.levels", "in level 1 and again in level 1"},
		{"device of two hosts", map[string]Host{"kvm2": {Levels: []string{"kvm2-ipmi"}}, "kvm3": {Levels: []string{"kvm2-ipmi"}}}, nil,
			"fence.kvm3.levels", "also in the levels of kvm2"},
		{"timeout too short", map[string]Host{"kvm2": {Levels: []string{"kvm2-ipmi"}}}, func(d map[string]Device) { d["kvm2-ipmi"] = Device{Agent: agent, Timeout: dur(100 * time.Millisecond)} },
			"fence_device.kvm2-ipmi.timeout", "100ms is out of bounds: use 1s to 5m0s"},
		{"timeout too long", map[string]Host{"kvm2": {Agent: agent, Timeout: dur(time.Hour)}}, nil, "fence.kvm2.timeout", "1h0m0s is out of bounds"},
		{"agent and levels", map[string]Host{"kvm2": {Agent: agent, Levels: []string{"kvm2-ipmi"}}}, nil, "fence.kvm2", "sets both agent and levels"},
		{"params beside levels", map[string]Host{"kvm2": {Levels: []string{"kvm2-ipmi"}, Params: map[string]string{"ip": "x"}}}, nil, "fence.kvm2", "belong to each level's [fence_device]"},
		{"neither", map[string]Host{"kvm2": {}}, nil, "fence.kvm2", "has neither agent nor levels"},
		{"params without agent", map[string]Host{"kvm2": {Params: map[string]string{"ip": "x"}}}, nil, "fence.kvm2.agent", "is not set"},
		{"missing agent", map[string]Host{"kvm2": {Levels: []string{"kvm2-ipmi"}}}, func(d map[string]Device) { d["kvm2-ipmi"] = Device{Agent: "fence_wingman_nosuch"} },
			"fence_device.kvm2-ipmi", "agent /usr/sbin/fence_wingman_nosuch not found"},
		{"bad device name", map[string]Host{}, func(d map[string]Device) { d["a,b"] = Device{Agent: agent} }, "fence_device.a,b", "only letters, digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := devices()
			if tt.edit != nil {
				tt.edit(d)
			}
			ps := Problems(tt.hosts, d)
			if tt.key == "" {
				if len(ps) > 0 {
					t.Fatalf("Problems = %v, want none", ps)
				}
				if _, err := Topologies(tt.hosts, d, nil); err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, p := range ps {
				if p.Key == tt.key && strings.Contains(p.Msg, tt.message) {
					t.Logf("%s: %s", p.Key, p.Msg)
					if _, err := Topologies(tt.hosts, d, nil); err == nil {
						t.Error("Topologies accepted what Problems refused")
					}
					return
				}
			}
			t.Fatalf("Problems = %v, want %s: ...%s...", ps, tt.key, tt.message)
		})
	}
}

func TestTopologies(t *testing.T) {
	hosts := map[string]Host{"kvm2": {Levels: []string{"kvm2-ipmi", "kvm2-pdu-a,kvm2-pdu-b"}}, "kvm3": {Agent: agent, Timeout: dur(4 * time.Second)}}
	topo, err := Topologies(hosts, devices(), nil)
	if err != nil {
		t.Fatal(err)
	}
	k2 := topo["kvm2"]
	if len(k2) != 2 || len(k2[0]) != 1 || len(k2[1]) != 2 || k2[0][0].Device != "kvm2-ipmi" || k2[0][0].Timeout != 3*time.Second ||
		k2[1][0].Device != "kvm2-pdu-a" || k2[1][1].Device != "kvm2-pdu-b" || k2[1][1].Timeout != 20*time.Second {
		t.Errorf("kvm2's topology = %v", k2)
	}
	if k3 := topo["kvm3"]; len(k3) != 1 || len(k3[0]) != 1 || k3[0][0].Agent != agent || k3[0][0].Timeout != 4*time.Second {
		t.Errorf("kvm3's topology (the single-agent form) = %v", k3)
	}
}
