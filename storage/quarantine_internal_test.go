package storage

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func quarantineSettings() ClusterSettings {
	return ClusterSettings{Writer: 1, Wall: time.Unix(0, 1700000000000000000),
		Values: []ClusterValue{{Key: "quarantine.threshold", Value: "3", Host: 1, Wall: time.Unix(0, 1)}},
		Flaps: []HostFlaps{{Host: 2, DeadGen: 7, PillNonces: []uint64{98, 99}, At: []time.Time{time.Unix(0, 10), time.Unix(0, 20)}},
			{Host: 3, DeadGen: 1}},
		Quarantined: []HostQuarantine{{Host: 2, Since: time.Unix(0, 30), Until: time.Unix(0, 40), By: "wingman", Why: "3 flaps within 1h"}}}
}

// The quarantine's sections come back as written, and a build from before
// them keeps them, as sections it does not know, through its own write.
func TestSettingsQuarantineRoundTrip(t *testing.T) {
	s := quarantineSettings()
	b, err := encodeSettings(&s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeSettings(b)
	if err != nil || !reflect.DeepEqual(got.Flaps, s.Flaps) || !reflect.DeepEqual(got.Quarantined, s.Quarantined) {
		t.Fatalf("got %+v %+v, %v; want %+v %+v", got.Flaps, got.Quarantined, err, s.Flaps, s.Quarantined)
	}

	readsQuarantine = false
	old, err := decodeSettings(b)
	readsQuarantine = true
	if err != nil || len(old.Flaps) != 0 || len(old.unknown) != 2 {
		t.Fatalf("old build: flaps %v, unknown %v, %v; want both sections kept unknown", old.Flaps, old.unknown, err)
	}
	old.Targets = append(old.Targets, NotifyTarget{Name: "ops", Kind: "exec", Address: "/bin/true"})
	if b, err = encodeSettings(&old); err != nil {
		t.Fatal(err)
	}
	got, err = decodeSettings(b)
	if err != nil || !reflect.DeepEqual(got.Flaps, s.Flaps) || !reflect.DeepEqual(got.Quarantined, s.Quarantined) || len(got.Targets) != 1 {
		t.Fatalf("after the old build's write: %+v %+v %d targets, %v", got.Flaps, got.Quarantined, len(got.Targets), err)
	}
}

func TestSettingsQuarantineRefusesBadEntries(t *testing.T) {
	s := ClusterSettings{Flaps: []HostFlaps{{Host: 0}}}
	if _, err := encodeSettings(&s); !errors.Is(err, ErrInvalid) {
		t.Errorf("flaps of host 0: %v, want ErrInvalid", err)
	}
	s = ClusterSettings{Flaps: []HostFlaps{{Host: 1, At: make([]time.Time, MaxFlapTimes+1)}}}
	if _, err := encodeSettings(&s); !errors.Is(err, ErrInvalid) {
		t.Errorf("too many flap times: %v, want ErrInvalid", err)
	}
	s = ClusterSettings{Flaps: []HostFlaps{{Host: 1, PillNonces: make([]uint64, MaxFlapTimes+1)}}}
	if _, err := encodeSettings(&s); !errors.Is(err, ErrInvalid) {
		t.Errorf("too many pills: %v, want ErrInvalid", err)
	}
	s = ClusterSettings{Quarantined: []HostQuarantine{{Host: 70000}}}
	if _, err := encodeSettings(&s); !errors.Is(err, ErrInvalid) {
		t.Errorf("quarantine of host 70000: %v, want ErrInvalid", err)
	}
}
