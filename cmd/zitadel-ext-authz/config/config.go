package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/idjwt"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// EnvPrefix prefixes every environment variable.
const EnvPrefix = "ZITADEL_EXT_AUTHZ_"

// Config is the loaded, validated configuration.
type Config struct {
	GRPCAddress      string
	HTTPAddress      string
	MetricsAddress   string        // metrics_address: another listener for /metrics ("": none)
	PingPath         string        // ping_path: /healthz on http_address under another path
	ReadyPath        string        // ready_path: /readyz on http_address under another path
	IdPTLS           *tls.Config   // provider_ca_files, ssl_insecure_skip_verify (nil: the system's)
	HTTPReadTimeout  time.Duration // the ops listener: whole request
	HTTPIdleTimeout  time.Duration // the ops listener: idle keep-alive
	LogLevel         slog.Level
	LogFormat        string
	SessionCacheSize int64
	EnablePprof      bool
	RefreshGrace     time.Duration

	// Path is the configuration file (--config), "" when there is none.
	Path string
	// Values is every key's effective value as text (secrets included; see
	// Masked), for reload diffs and check-config.
	Values map[string]string

	// SessionStore is "cookie" or "redis"; Redis is nil when no Redis is
	// configured.
	SessionStore string
	Redis        *redis.UniversalOptions
	RedisL1TTL   time.Duration
	// RedisMinReplicas: with Sentinel, writes wait for this many replicas.
	RedisMinReplicas int

	OTLPEndpoint     string
	OTLPInsecure     bool
	TraceSampleRatio float64

	// IssuerDial maps the issuer's host:port to the address actually
	// dialled (oidc_issuer_dial_address); nil when unset.
	IssuerDial map[string]string
	// FileDigests fingerprints the content of the files keys name
	// (client_secret_file, client_key_file, introspection_key_file), so a
	// reload sees a rotated secret or key in an unchanged path.
	FileDigests map[string]string
	// Files are the files keys named and the configuration read (watched
	// for changes, so a rotated secret applies without a restart).
	Files []string

	// OAuth2Proxy is how each oauth2-proxy option the configuration sets
	// was understood ("email_domains (file): used", "upstreams (file):
	// Envoy's job: ignored", …), for check-config.
	OAuth2Proxy []string

	// BearerEnabled accepts Authorization: Bearer tokens (skip_jwt_bearer_tokens).
	BearerEnabled  bool
	Bearer         oidcflow.BearerConfig
	TokenCacheSize int64

	OIDC          oidcflow.Config
	Authz         authz.Config
	Cookie        session.Options
	CookieSecrets [][]byte
	// IdentityJWTKeys sign the identity assertion (identity_jwt_key_file);
	// nil: derived from CookieSecrets.
	IdentityJWTKeys idjwt.Keys

	// Apps are the entries of the apps list (one server for many ZITADEL
	// applications); the top-level keys above are the default app, which
	// exists when client_id is set (HasDefaultApp).
	Apps []*App
}

// Load reads the configuration from args (--config PATH and --<key> flags),
// the environment (getenv) and the file. Warnings are returned for the
// caller to log; the error is one line naming the offending key.
func Load(args []string, getenv func(string) string) (*Config, []string, error) {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", "", "configuration file (.toml, .yaml, .yml or .json)")
	for _, k := range keys {
		addFlag(fs, strings.ReplaceAll(k.name, "_", "-"), k.kind, k.def, k.help)
	}
	// oauth2-proxy's flags too, its singular repeatable ones (--email-domain,
	// --whitelist-domain, …) and those we ignore included: its command
	// lines start here as they are.
	for _, o := range oauth2ProxyOptions {
		if fs.Lookup(o.flagName()) == nil {
			addFlag(fs, o.flagName(), o.kind, nil, "oauth2-proxy's "+o.name+": "+o.understood())
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil, nil, ErrHelp
		}
		return nil, nil, fmt.Errorf("flags: %w (see zitadel-ext-authz serve --help)", err)
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("flags: unexpected argument %q", fs.Arg(0))
	}

	v := viper.New()
	var warnings []string
	if *path != "" {
		if err := readFile(v, *path); err != nil {
			return nil, nil, err
		}
		for _, k := range v.AllKeys() {
			if k == "apps" || strings.HasPrefix(k, "apps.") {
				continue // read by buildApps, which refuses unknown keys
			}
			if strings.HasPrefix(k, "claim_headers.") || strings.HasPrefix(k, "rules.") {
				continue // a table: its keys are header or rule names
			}
			_, o2p := o2pLookup(k)
			if !o2p && !slices.ContainsFunc(keys, func(x key) bool { return x.name == k }) {
				warnings = append(warnings, fmt.Sprintf("config file %s: unknown key %q ignored", *path, k))
			}
		}
	}
	r := resolver{fs: fs, v: v, getenv: getenv, seenBoth: map[string]bool{}}
	report := r.oauth2ProxyReport()
	c, err := r.build()
	if err != nil {
		// Every warning first: an unknown or ignored key is often why.
		return nil, append(warnings, r.warnings...), err
	}
	c.OAuth2Proxy = report
	c.Path = *path
	c.Values = r.values(keyNames(func(key) bool { return true }))
	warnings = append(warnings, r.warnings...)
	return c, warnings, nil
}

// resolver picks each key's value: flag, then environment, then file, then
// the default.
type resolver struct {
	fs       *pflag.FlagSet
	v        *viper.Viper
	getenv   func(string) string
	warnings []string
	err      error
	seenBoth map[string]bool // keys set in both environments, warned once

	// An apps entry is read by a resolver of its own: its table first,
	// then the top level (parent). where prefixes its error messages.
	app    map[string]any
	parent *resolver
	where  string
}

// hasApps reports whether the file has an apps list (read by the top level).
func (r *resolver) hasApps() bool { return r.app == nil && r.v.IsSet("apps") }

func (r *resolver) raw(name string) (any, bool) {
	if r.parent != nil {
		if v, ok := r.app[name]; ok {
			return v, true
		}
		return r.parent.raw(name)
	}
	// Flags, then the environment, then the file; at each, our name first,
	// then oauth2-proxy's (its flag spelling, its aliases).
	aliases := o2pNamesFor(name)
	if v, ok := flagValue(r.fs, strings.ReplaceAll(name, "_", "-")); ok {
		return v, true
	}
	for _, o := range aliases {
		if v, ok := flagValue(r.fs, o.flagName()); ok {
			return v, true
		}
	}
	ours, theirs := EnvPrefix+strings.ToUpper(name), OAuth2ProxyEnvPrefix+strings.ToUpper(name)
	if e := r.getenv(ours); e != "" {
		if r.getenv(theirs) != "" && !r.seenBoth[name] {
			r.seenBoth[name] = true
			r.warnings = append(r.warnings, fmt.Sprintf("%s and %s are both set: %s wins", ours, theirs, ours))
		}
		return e, true
	}
	if e := r.getenv(theirs); e != "" {
		return e, true
	}
	for _, o := range aliases {
		if e := r.getenv(OAuth2ProxyEnvPrefix + strings.ToUpper(o.name)); e != "" {
			return e, true
		}
	}
	if r.v.IsSet(name) {
		return r.v.Get(name), true
	}
	for _, o := range aliases {
		if r.v.IsSet(o.name) {
			return r.v.Get(o.name), true
		}
	}
	return nil, false
}

// isSetOwn reports whether key name itself (not an alias) is set.
func (r *resolver) isSetOwn(name string) bool {
	if r.parent != nil {
		if _, ok := r.app[name]; ok {
			return true
		}
		return r.parent.isSetOwn(name)
	}
	_, flag := flagValue(r.fs, strings.ReplaceAll(name, "_", "-"))
	if o, ok := o2pLookup(name); ok && o.class == o2pSame {
		_, theirs := flagValue(r.fs, o.flagName())
		flag = flag || theirs
	}
	return flag || r.getenv(EnvPrefix+strings.ToUpper(name)) != "" || r.getenv(OAuth2ProxyEnvPrefix+strings.ToUpper(name)) != "" || r.v.IsSet(name)
}

// o2pRaw is the value of oauth2-proxy option name (flag, environment,
// file), for aliases that add to a key of ours rather than stand for it.
func (r *resolver) o2pRaw(name string) (any, bool) {
	if r.parent != nil {
		return r.parent.o2pRaw(name)
	}
	o, _ := o2pLookup(name)
	if v, ok := flagValue(r.fs, o.flagName()); ok {
		return v, true
	}
	if e := r.getenv(OAuth2ProxyEnvPrefix + strings.ToUpper(name)); e != "" {
		return e, true
	}
	if r.v.IsSet(name) {
		return r.v.Get(name), true
	}
	return nil, false
}

func flagValue(fs *pflag.FlagSet, name string) (any, bool) {
	f := fs.Lookup(name)
	if f == nil || !f.Changed {
		return nil, false
	}
	if sv, ok := f.Value.(pflag.SliceValue); ok {
		return sv.GetSlice(), true
	}
	return f.Value.String(), true
}

// addFlag registers a key's flag by its kind (def: its default, for bools).
func addFlag(fs *pflag.FlagSet, name string, k kind, def any, help string) {
	switch k {
	case kBool:
		b, _ := def.(bool)
		fs.Bool(name, b, help)
	case kList:
		fs.StringSlice(name, nil, help)
	default:
		fs.String(name, "", help)
	}
}

func (r *resolver) fail(name, format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("config: %s%s: %s", r.where, name, fmt.Sprintf(format, a...))
	}
}

// ErrHelp is returned for --help.
var ErrHelp = errors.New("help requested")
