package config

import (
	"maps"
	"slices"
)

// Reloadable reports whether a change to key applies in place, without a
// restart and without rebuilding an app (the table's reload column:
// applied, or a per-app policy key).
func Reloadable(name string) bool {
	k, ok := lookup(name)
	return ok && k.reloadable()
}

// Reload applies next to run, the running configuration, as the table's
// reload column says: each global key in changed that a reload applies
// through its function, and every per-app key (the default app's, at the
// top level) and the apps list, which wiring.SetApps then serves. It
// reports the keys in changed that need a restart; they keep their
// running values, so the next diff still reports them. run.Values is
// written: pass a copy of the running configuration's.
func Reload(run, next *Config, changed []string) (needRestart []string) {
	for _, name := range changed {
		k, ok := lookup(name)
		switch {
		case !ok || k.reload.mode == needsRestart:
			needRestart = append(needRestart, name)
		case k.reload.mode == appliedLive:
			k.reload.apply(run, next)
			run.Values[name] = next.Values[name]
		}
		// Per-app keys: adoptApps, below, whether or not they changed.
	}
	adoptApps(run, next)
	return needRestart
}

// adoptApps gives run next's apps: the default app's settings (built
// from the top-level per-app keys) and the apps list. It is the one path
// by which a reload applies a per-app key.
func adoptApps(run, next *Config) {
	run.OIDC, run.Authz, run.Cookie = next.OIDC, next.Authz, next.Cookie
	run.Bearer, run.BearerEnabled, run.IssuerDial = next.Bearer, next.BearerEnabled, next.IssuerDial
	run.Apps, run.FileDigests = next.Apps, next.FileDigests
	for _, k := range appKeys {
		run.Values[k] = next.Values[k]
	}
}

// Changed lists the keys whose effective values differ between c and next.
func (c *Config) Changed(next *Config) []string {
	var changed []string
	for _, k := range keys {
		if c.Values[k.name] != next.Values[k.name] || c.FileDigests[k.name] != next.FileDigests[k.name] {
			changed = append(changed, k.name)
		}
	}
	return changed
}

// AppsDiffer reports whether c and next serve different apps or apps with
// different settings.
func (c *Config) AppsDiffer(next *Config) bool {
	x, y := c.AllApps(), next.AllApps()
	return len(x) != len(y) || slices.ContainsFunc(x, func(a *App) bool {
		i := slices.IndexFunc(y, func(b *App) bool { return b.Name == a.Name })
		return i < 0 || !maps.Equal(a.AppValues(), y[i].AppValues())
	})
}
