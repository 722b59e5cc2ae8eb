package config

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/apps"
)

// App is one entry of the apps list: a ZITADEL application (its own
// client, redirect URL and cookie) served on its hosts. Keys the entry
// doesn't set are the top level's.
type App struct {
	Name  string
	Hosts []string // exact names ("app1.example.com") and wildcards ("*.example.com"), lower case, no port
	Own   []string // the keys the entry sets itself (the others are the top level's)
	// Config is the effective configuration of the app: the top level with
	// the entry's keys applied. Only the per-app keys (IsAppKey) differ from
	// the top level; Values holds those, for reload diffs and check-config.
	*Config
}

// DefaultAppName names the app the top-level keys describe, in metrics and
// logs, and as a route's context_extensions app value (the shipped Envoy
// files name it on the catch-all virtual host). No entry of apps may take
// it.
const DefaultAppName = apps.DefaultName

// appKeys are the keys an apps entry may set besides name and hosts, in
// table order: the table's per-app keys (everything that belongs to one
// ZITADEL application and its cookies and policy). Listeners, stores,
// caches, telemetry and cookie_secret stay global (each app's cookie keys
// are derived from cookie_secret and its name).
var appKeys = keyNames(key.perApp)

// IsAppKey reports whether an apps entry may set key.
func IsAppKey(key string) bool { return slices.Contains(appKeys, key) }

// appName is what an app may be called: it labels metrics and derives keys.
var appName = regexp.MustCompile(`^[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?$`)

// hostPattern is an exact host name or a leading "*." wildcard.
var hostPattern = regexp.MustCompile(`^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$`)

// HasDefaultApp reports whether the top-level keys describe an app (its
// client_id is set): requests that match no entry of apps go to it.
func (c *Config) HasDefaultApp() bool { return c.OIDC.ClientID != "" }

// AllApps is every app served: the default app (named DefaultAppName,
// without hosts: it takes what no other app takes) when there is one, then
// the apps entries in file order.
func (c *Config) AllApps() []*App {
	var out []*App
	if c.HasDefaultApp() {
		out = append(out, &App{Name: DefaultAppName, Config: c})
	}
	return append(out, c.Apps...)
}

// AppValues are an app's per-app keys with their effective values (hosts
// included), for reload diffs.
func (a *App) AppValues() map[string]string {
	out := make(map[string]string, len(appKeys)+1)
	for _, k := range appKeys {
		out[k] = a.Values[k]
	}
	out["hosts"] = strings.Join(a.Hosts, ",")
	// A file whose content changed changes its key: a reload rebuilds the
	// app with the rotated secret or key.
	for k, digest := range a.FileDigests {
		out[k] += " (" + digest + ")"
	}
	return out
}

// buildApps reads the apps list: each entry's keys over the top level's.
func (r *resolver) buildApps(c *Config) {
	raw := r.v.Get("apps")
	if raw == nil {
		return
	}
	entries, ok := raw.([]any)
	if !ok {
		r.fail("apps", "want a list of tables ([[apps]] in TOML, a list in YAML)")
		return
	}
	owner := map[string]string{} // host → app
	for i, e := range entries {
		app, table := r.appEntry(c, i, e)
		if app == nil {
			return
		}
		where := "apps[" + app.Name + "]"
		for _, h := range app.Hosts {
			if other, taken := owner[h]; taken {
				r.fail(where+".hosts", "host %q is also claimed by apps[%s]; a host belongs to one app", h, other)
				return
			}
			owner[h] = app.Name
		}
		if app.Config = r.appConfig(where, table); app.Config == nil {
			return
		}
		c.Apps = append(c.Apps, app)
	}
	for _, a := range c.Apps {
		if len(a.Hosts) == 0 {
			r.warnings = append(r.warnings, fmt.Sprintf("apps[%s]: no hosts; only routes with context_extensions app = %q reach it", a.Name, a.Name))
		}
	}
	if len(c.Apps) == 0 && !c.HasDefaultApp() {
		r.fail("client_id", "required: the client id of your ZITADEL web application (or an apps list)")
	}
}

// appEntry reads entry i of the apps list: its name (unique, not the
// default app's), its hosts, and which of its keys it sets, each of which
// must be a per-app key. It returns the entry as a table, or nil after
// r.fail.
func (r *resolver) appEntry(c *Config, i int, e any) (*App, map[string]any) {
	table, ok := toTable(e)
	if !ok {
		r.fail("apps", "entry %d: want a table with name, hosts and the app's keys", i+1)
		return nil, nil
	}
	name, _ := table["name"].(string)
	where := fmt.Sprintf("apps[%d]", i+1)
	switch {
	case name == "":
		r.fail(where, "name is required (lower-case letters, digits, - and _), e.g. name = \"shop\"")
		return nil, nil
	case !appName.MatchString(name):
		r.fail(where, "name %q: use lower-case letters, digits, - and _ (at most 63)", name)
		return nil, nil
	case name == DefaultAppName:
		r.fail(where, "name %q is taken by the app of the top-level keys; choose another", name)
		return nil, nil
	case slices.ContainsFunc(c.Apps, func(a *App) bool { return a.Name == name }):
		r.fail(where, "name %q is used twice", name)
		return nil, nil
	}
	where = "apps[" + name + "]"
	app := &App{Name: name}
	for k, v := range table {
		switch {
		case k == "name":
		case k == "hosts":
			if app.Hosts, ok = r.hosts(where, v); !ok {
				return nil, nil
			}
		case IsAppKey(k):
			app.Own = append(app.Own, k)
		default:
			what := "unknown key"
			if _, known := lookup(k); known {
				what = "not a per-app key; set it at the top level"
			}
			r.fail(where+"."+k, "%s (per-app keys: hosts, %s)", what, strings.Join(appKeys, ", "))
			return nil, nil
		}
	}
	return app, table
}

// appConfig builds an app's effective configuration: the entry's table
// over the top level, read by a resolver of its own so errors name
// apps[name].key. Its warnings join r's, once each. Nil after an error.
func (r *resolver) appConfig(where string, table map[string]any) *Config {
	sub := &resolver{fs: r.fs, v: r.v, getenv: r.getenv, app: table, parent: r, where: where + "."}
	cfg, err := sub.build()
	if err != nil {
		r.err = err
		return nil
	}
	for _, w := range sub.warnings {
		if !slices.Contains(r.warnings, w) {
			r.warnings = append(r.warnings, where+": "+w)
		}
	}
	cfg.Values = sub.values(appKeys)
	return cfg
}

// toTable is an apps entry as a map with lower-case keys (TOML, YAML and
// JSON decode tables differently).
func toTable(e any) (map[string]any, bool) {
	var m map[string]any
	switch t := e.(type) {
	case map[string]any:
		m = t
	case map[any]any:
		m = make(map[string]any, len(t))
		for k, v := range t {
			ks, ok := k.(string)
			if !ok {
				return nil, false
			}
			m[ks] = v
		}
	default:
		return nil, false
	}
	out := make(map[string]any, len(m))
	for k, v := range maps.All(m) {
		out[strings.ToLower(k)] = v
	}
	return out, true
}

// hosts reads an app's hosts: a list (or comma-separated string) of exact
// names and *.domain wildcards, without ports; false after r.fail.
func (r *resolver) hosts(where string, v any) ([]string, bool) {
	list, ok := toStrings(v)
	if !ok {
		r.fail(where+".hosts", "want a list of host names")
		return nil, false
	}
	var out []string
	for _, h := range list {
		h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
		if !hostPattern.MatchString(h) {
			r.fail(where+".hosts", "%q is not a host name or *.domain wildcard (no scheme, port or path)", h)
			return nil, false
		}
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out, true
}

// IssuerDials joins every app's oidc_issuer_dial_address: the dial map of
// the one HTTP client all apps share.
func (c *Config) IssuerDials() map[string]string {
	m := map[string]string{}
	for _, a := range c.AllApps() {
		maps.Copy(m, a.IssuerDial)
	}
	return m
}
