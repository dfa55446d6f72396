package settings

import (
	"fmt"
	"slices"
	"time"

	"github.com/wingmanha/wingman/storage"
)

// Where a value comes from.
const (
	SourceCluster = "cluster" // set for the whole cluster (`wingman config set`)
	SourceFile    = "file"    // this host's wingman.toml, the cluster setting none
	SourceDefault = "default"
)

// File is what this host's wingman.toml says of the cluster-wide keys.
type File struct {
	Path   string   // for messages
	Values Values   // the file's values over the defaults
	Keys   []string // the keys the file itself sets (of every section)
}

// Entry is one key as a host applies it.
type Entry struct {
	Key   string
	Value string // what this host applies
	// Source is SourceCluster, SourceFile or SourceDefault.
	Source string
	// Host and Wall are who set the cluster's value and when (Source
	// cluster); HostName is Host's name, where the Service knows it.
	Host     int
	HostName string
	Wall     time.Time
	// File is the value this host's wingman.toml sets ("": it sets none).
	File string
	// Default is the key's default.
	Default string
	// Ignored says why a value stored on the LUN is not applied: a key or
	// a value this build does not know (set by a newer wingman).
	Ignored string
}

// View is the cluster-wide keys as a host applies them, at one generation
// of the settings record.
type View struct {
	Generation uint64
	Entries    []Entry // every key of this build, then stored keys it does not know
	Values     Values  // what the host applies
	// Host and Warnings, filled in by the Service: the host whose view it
	// is, and the conflicts of its wingman.toml with the cluster.
	Host     string
	Warnings []string
}

// Merge is the view of a host whose file says file when the settings
// record is stored: for each key the cluster's value if it set one that
// this build accepts, else the file's if it sets the key, else the
// default. It is pure.
func Merge(file File, stored storage.ClusterSettings) View {
	v := View{Generation: stored.Generation, Values: Defaults()}
	byKey := map[string]storage.ClusterValue{}
	for _, cv := range stored.Values {
		byKey[cv.Key] = cv
	}
	for _, k := range keys {
		e := Entry{Key: k.Name, Source: SourceDefault, Default: k.Default()}
		if slices.Contains(file.Keys, k.Name) {
			e.File = k.get(file.Values)
			e.Source = SourceFile
			_ = k.parse(&v.Values, e.File) // the file passed --check-config
		}
		if cv, ok := byKey[k.Name]; ok {
			delete(byKey, k.Name)
			next := v.Values
			err := k.parse(&next, cv.Value)
			if err == nil {
				err = k.check(next)
			}
			if err != nil {
				e.Ignored = fmt.Sprintf("the cluster's value %q is not valid for this build (%v): upgrade this host", cv.Value, err)
			} else {
				v.Values, e.Source, e.Host, e.Wall = next, SourceCluster, cv.Host, cv.Wall
			}
		}
		e.Value = k.get(v.Values)
		v.Entries = append(v.Entries, e)
	}
	for _, cv := range stored.Values {
		if _, ok := byKey[cv.Key]; ok {
			v.Entries = append(v.Entries, Entry{Key: cv.Key, Value: cv.Value, Source: SourceCluster, Host: cv.Host, Wall: cv.Wall,
				Ignored: "a key this build does not know (set by a newer wingman): upgrade this host"})
		}
	}
	return v
}

// Entry returns the view's entry of key (false: no such entry).
func (v View) Entry(key string) (Entry, bool) {
	for _, e := range v.Entries {
		if e.Key == key {
			return e, true
		}
	}
	return Entry{}, false
}

// Conflicts say where this host's wingman.toml sets a cluster-wide key to
// another value than the cluster's, and what to do, naming the host.
func (v View) Conflicts(host, path string) []string {
	var out []string
	for _, e := range v.Entries {
		switch {
		case e.File == "" || e.Ignored != "":
		case e.Source == SourceCluster && e.File != e.Value:
			out = append(out, fmt.Sprintf("%s: %s sets %s = %s, the cluster uses %s; remove it from %s",
				host, path, e.Key, e.File, e.Value, path))
		case e.Source == SourceFile && e.File != e.Default:
			out = append(out, fmt.Sprintf("%s: %s sets %s = %s where the cluster uses the default %s, so this host alone uses %s; "+
				"set it for every host with 'wingman config set %s %s', or remove it from %s", host, path, e.Key, e.File, e.Default, e.File, e.Key, e.File, path))
		}
	}
	return out
}
