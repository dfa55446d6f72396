package main

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/wingmanha/wingman/storage"
	"github.com/wingmanha/wingman/vm/settings"
)

// tomlKeys are the dotted keys of a configuration struct; a map (fence)
// counts as its section.
func tomlKeys(t reflect.Type, prefix string) []string {
	var out []string
	for f := range t.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		switch f.Type.Kind() {
		case reflect.Struct:
			if f.Type.NumField() > 0 && f.Type != reflect.TypeFor[duration]() {
				out = append(out, tomlKeys(f.Type, prefix+tag+".")...)
				continue
			}
		case reflect.Map:
			out = append(out, prefix+tag+".HOST")
			continue
		}
		out = append(out, prefix+tag)
	}
	return out
}

// Every key of wingman.toml is either cluster-wide (vm/settings' table,
// `wingman config set`) or per-host with a reason, never both, and every
// cluster-wide key exists in the file.
func TestEveryConfigKeyIsClusterWideOrPerHost(t *testing.T) {
	var cluster []string
	for _, k := range settings.Keys() {
		cluster = append(cluster, k.Name)
	}
	keys := tomlKeys(reflect.TypeFor[Config](), "")
	for _, k := range keys {
		_, perHost := settings.PerHost(k)
		if perHost == slices.Contains(cluster, k) {
			t.Errorf("%s: cluster-wide %v, per-host %v: it must be exactly one (vm/settings)", k, !perHost, perHost)
		}
	}
	for _, k := range cluster {
		if !slices.Contains(keys, k) {
			t.Errorf("cluster-wide key %s is not a key of wingman.toml", k)
		}
	}
}

// The file's cluster-wide keys reach vm/settings with the keys it sets,
// so status can tell a key the file sets from a default.
func TestClusterFileNamesTheKeysItSets(t *testing.T) {
	p := filepath.Join(t.TempDir(), "wingman.toml")
	if err := os.WriteFile(p, []byte("cluster = \"c\"\nlun = \"/x\"\n[serf]\ninsecure = true\n[failover]\nguest_agent_wait = \"1m\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(p, false)
	if err != nil {
		t.Fatal(err)
	}
	f := cfg.clusterFile()
	v := settings.Merge(f, storage.ClusterSettings{Values: []storage.ClusterValue{{Key: "failover.guest_agent_wait", Value: "5m"}}})
	if w := v.Conflicts("kvm2", f.Path); len(w) != 1 || !strings.Contains(w[0], "sets failover.guest_agent_wait = 1m, the cluster uses 5m") {
		t.Fatalf("conflicts %q", w)
	}
	if e, _ := v.Entry("maintenance.parallel_migrations"); e.File != "" || e.Source != settings.SourceDefault {
		t.Fatalf("a key the file leaves out: %+v", e)
	}
}
