package apiview

import (
	"context"
	"net/http"

	"github.com/wingmanha/wingman/cmd/api"
	"github.com/wingmanha/wingman/vm/settings"
)

// ClusterSettings are the cluster-wide keys of a view (and err, as it is).
func ClusterSettings(v settings.View, err error) (api.ClusterSettings, error) {
	out := api.ClusterSettings{Host: v.Host, Generation: v.Generation, Settings: []api.ClusterSetting{}, Warnings: v.Warnings}
	if out.Warnings == nil {
		out.Warnings = []string{}
	}
	for _, e := range v.Entries {
		s := api.ClusterSetting{Key: e.Key, Value: e.Value, Source: e.Source, SetBy: e.HostName, SetAt: e.Wall, File: e.File,
			Default: e.Default, Ignored: e.Ignored}
		if k, err := settings.Lookup(e.Key); err == nil {
			s.Summary = k.Summary
		}
		out.Settings = append(out.Settings, s)
	}
	return out, err
}

// ClusterSetting is the view with only e, the key asked for.
func ClusterSetting(e settings.Entry, v settings.View, err error) (api.ClusterSettings, error) {
	v.Entries = []settings.Entry{e}
	if err != nil {
		v.Entries = nil
	}
	return ClusterSettings(v, err)
}

// OnSettingKey serves a route of one key ({key}) with op: settings'
// Service Get or Unset.
func OnSettingKey(op func(context.Context, string) (settings.Entry, settings.View, error)) func(*http.Request) (any, error) {
	return func(r *http.Request) (any, error) { return ClusterSetting(op(r.Context(), r.PathValue("key"))) }
}
