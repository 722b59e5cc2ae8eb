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
	// the entry's keys applied. Only the per-app keys (AppKeys) differ from
	// the top level; Values holds those, for reload diffs and check-config.
	*Config
}

// DefaultAppName names the app the top-level keys describe, in metrics and
// logs, and as a route's context_extensions app value (the shipped Envoy
// files name it on the catch-all virtual host). No entry of apps may take
// it.
const DefaultAppName = apps.DefaultName

// appKeys are the keys an apps entry may set besides name and hosts:
// everything that belongs to one ZITADEL application and its cookies and
// policy. Listeners, stores, caches, telemetry and cookie_secret stay
// global (each app's cookie keys are derived from cookie_secret and its
// name).
var appKeys = []string{
	"oidc_issuer_url", "oidc_issuer_dial_address", "client_id", "client_secret", "client_secret_file",
	"client_auth_method", "client_key_file",
	"redirect_url", "scope", "user_id_claim", "oidc_email_claim", "oidc_groups_claim",
	"cookie_name", "cookie_domains", "cookie_path", "cookie_secure", "cookie_httponly", "cookie_samesite", "cookie_expire",
	"cookie_refresh", "refresh_tokens", "offline_access_scope", "session_idle_timeout",
	"email_domains", "allowed_groups", "insecure_oidc_allow_unverified_email",
	"skip_auth_routes", "api_routes", "whitelist_domains",
	"pass_access_token", "pass_authorization_header", "set_xauthrequest", "pass_user_headers",
	"skip_provider_button", "provider_display_name",
	"skip_jwt_bearer_tokens", "extra_jwt_audiences", "zitadel_project_id", "introspect_jwt_bearer_tokens",
	"introspection_client_id", "introspection_client_secret", "introspection_key_file", "introspection_url", "introspection_budget",
	"zitadel_organization_id", "zitadel_organization_domain", "step_up_acr_values",
	"prompt", "approval_prompt", "acr_values", "proxy_prefix", "backend_logout_url", "session_cookie_minimal", "cookie_csrf_expire",
	"skip_auth_preflight", "trusted_ips", "reverse_proxy", "real_client_ip_header", "trusted_proxy_hops", "csrf_allowed_origins", "authenticated_emails_file",
	"prefer_email_to_user", "pass_basic_auth", "basic_auth_password", "extra_jwt_issuers",
	"skip_oidc_discovery", "login_url", "redeem_url", "oidc_jwks_url", "profile_url",
	"banner", "footer", "custom_sign_in_logo", "custom_templates_dir",
}

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

// MaskedApp is an app's effective per-app settings, one "key = value" line
// each with secrets masked, the entry's own keys marked: what check-config
// prints under the app's name.
func (a *App) MaskedApp() []string {
	lines := []string{"hosts = " + fmt.Sprint(a.Hosts)}
	for _, name := range appKeys {
		k, _ := lookup(name)
		v := a.Values[name]
		if k.secret && v != "" && v != "[]" {
			v = "****** (set)"
		}
		if slices.Contains(a.Own, name) {
			v += "   # this app's"
		}
		lines = append(lines, name+" = "+v)
	}
	return lines
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
		table, ok := toTable(e)
		if !ok {
			r.fail("apps", "entry %d: want a table with name, hosts and the app's keys", i+1)
			return
		}
		name, _ := table["name"].(string)
		where := fmt.Sprintf("apps[%d]", i+1)
		switch {
		case name == "":
			r.fail(where, "name is required (lower-case letters, digits, - and _), e.g. name = \"shop\"")
			return
		case !appName.MatchString(name):
			r.fail(where, "name %q: use lower-case letters, digits, - and _ (at most 63)", name)
			return
		case name == DefaultAppName:
			r.fail(where, "name %q is taken by the app of the top-level keys; choose another", name)
			return
		case slices.ContainsFunc(c.Apps, func(a *App) bool { return a.Name == name }):
			r.fail(where, "name %q is used twice", name)
			return
		}
		where = "apps[" + name + "]"
		app := &App{Name: name}
		for k, v := range table {
			switch {
			case k == "name":
			case k == "hosts":
				app.Hosts = r.hosts(where, v)
			case IsAppKey(k):
				app.Own = append(app.Own, k)
			default:
				if _, known := lookup(k); known {
					r.fail(where+"."+k, "not a per-app key; set it at the top level (per-app keys: hosts, %s)", strings.Join(appKeys, ", "))
				} else {
					r.fail(where+"."+k, "unknown key (per-app keys: hosts, %s)", strings.Join(appKeys, ", "))
				}
				return
			}
		}
		for _, h := range app.Hosts {
			if other, taken := owner[h]; taken {
				r.fail(where+".hosts", "host %q is also claimed by apps[%s]; a host belongs to one app", h, other)
				return
			}
			owner[h] = name
		}
		sub := &resolver{fs: r.fs, v: r.v, getenv: r.getenv, app: table, parent: r, where: where + "."}
		cfg, err := sub.build()
		if err != nil {
			r.err = err
			return
		}
		for _, w := range sub.warnings {
			if !slices.Contains(r.warnings, w) {
				r.warnings = append(r.warnings, where+": "+w)
			}
		}
		cfg.Values = make(map[string]string, len(appKeys))
		for _, k := range appKeys {
			v, ok := sub.raw(k)
			if !ok {
				known, _ := lookup(k) // appKeys are all in the table (TestAppKeysAreKeys)
				v = known.def
			}
			cfg.Values[k] = fmt.Sprint(v)
		}
		app.Config = cfg
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
// names and *.domain wildcards, without ports.
func (r *resolver) hosts(where string, v any) []string {
	list, ok := toStrings(v)
	if !ok {
		r.fail(where+".hosts", "want a list of host names")
		return nil
	}
	var out []string
	for _, h := range list {
		h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
		if !hostPattern.MatchString(h) {
			r.fail(where+".hosts", "%q is not a host name or *.domain wildcard (no scheme, port or path)", h)
			return nil
		}
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
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

// AppsDiffer reports whether c and next serve different apps or apps with
// different settings.
func (c *Config) AppsDiffer(next *Config) bool {
	x, y := c.AllApps(), next.AllApps()
	return len(x) != len(y) || slices.ContainsFunc(x, func(a *App) bool {
		i := slices.IndexFunc(y, func(b *App) bool { return b.Name == a.Name })
		return i < 0 || !maps.Equal(a.AppValues(), y[i].AppValues())
	})
}

// AdoptApps gives run next's apps: the default app's settings (the
// top-level per-app keys) and the apps list. The wiring applies them
// without a restart (see wiring.SetApps).
func AdoptApps(run, next *Config) {
	run.OIDC, run.Authz, run.Cookie = next.OIDC, next.Authz, next.Cookie
	run.Bearer, run.BearerEnabled, run.IssuerDial = next.Bearer, next.BearerEnabled, next.IssuerDial
	run.Apps, run.FileDigests = next.Apps, next.FileDigests
	for _, k := range appKeys {
		run.Values[k] = next.Values[k]
	}
}
