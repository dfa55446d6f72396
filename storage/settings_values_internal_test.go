package storage

import (
	"reflect"
	"testing"
	"time"
)

// A build from before the values section reads a record that has it,
// changes the targets and writes it back: the values come through intact,
// as a section it does not know.
func TestSettingsOldReaderKeepsValues(t *testing.T) {
	newer := ClusterSettings{Writer: 1, Wall: time.Unix(0, 1700000000000000000),
		Targets: []NotifyTarget{{Name: "ops", Kind: "exec", Address: "/usr/local/bin/page"}},
		Values: []ClusterValue{{Key: "failover.guest_agent_wait", Value: "1m", Host: 3, Wall: time.Unix(0, 1700000000000000001)},
			{Key: "maintenance.parallel_migrations", Value: "4", Host: 1, Wall: time.Unix(0, 1700000000000000002)}}}
	b, err := encodeSettings(&newer)
	if err != nil {
		t.Fatal(err)
	}

	readsValues = false
	old, err := decodeSettings(b)
	readsValues = true
	if err != nil {
		t.Fatalf("old build: %v", err)
	}
	if len(old.Values) != 0 || len(old.unknown) != 1 || old.unknown[0].tag != secValues {
		t.Fatalf("old build read values %v and unknown sections %v, want the values kept as one unknown section", old.Values, old.unknown)
	}
	old.Targets = append(old.Targets, NotifyTarget{Name: "mail", Kind: "mail", Address: "smtp.example.com:587"})
	b, err = encodeSettings(&old)
	if err != nil {
		t.Fatal(err)
	}

	got, err := decodeSettings(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Values, newer.Values) || len(got.Targets) != 2 || len(got.unknown) != 0 {
		t.Fatalf("after the old build's write: values %+v, targets %d, unknown %v; want %+v, 2, none", got.Values, len(got.Targets), got.unknown, newer.Values)
	}
}

// A value field this build does not know (added by a newer one) is kept.
func TestSettingsValueKeepsUnknownFields(t *testing.T) {
	s := ClusterSettings{Values: []ClusterValue{{Key: "k", Value: "v", Host: 2, Wall: time.Unix(0, 5),
		unknown: []settingsField{{tag: 77, data: []byte("newer")}}}}}
	b, err := encodeSettings(&s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeSettings(b)
	if err != nil || !reflect.DeepEqual(got.Values, s.Values) {
		t.Fatalf("got %+v, %v; want %+v", got.Values, err, s.Values)
	}
}
