package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// EnvPrefix prefixes every environment variable.
const EnvPrefix = "ZITADEL_EXT_AUTHZ_"

// Config is the loaded, validated configuration.
type Config struct {
	GRPCAddress      string
	HTTPAddress      string
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

	OTLPEndpoint     string
	OTLPInsecure     bool
	TraceSampleRatio float64

	// IssuerDial maps the issuer's host:port to the address actually
	// dialled (oidc_issuer_dial_address); nil when unset.
	IssuerDial map[string]string

	// BearerEnabled accepts Authorization: Bearer tokens (skip_jwt_bearer_tokens).
	BearerEnabled  bool
	Bearer         oidcflow.BearerConfig
	TokenCacheSize int64

	OIDC          oidcflow.Config
	Authz         authz.Config
	Cookie        session.Options
	CookieSecrets [][]byte
}

// Load reads the configuration from args (--config PATH and --<key> flags),
// the environment (getenv) and the file. Warnings are returned for the
// caller to log; the error is one line naming the offending key.
func Load(args []string, getenv func(string) string) (*Config, []string, error) {
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	path := fs.String("config", "", "configuration file (.toml, .yaml, .yml or .json)")
	for _, k := range keys {
		flag := strings.ReplaceAll(k.name, "_", "-")
		switch k.kind {
		case kBool:
			fs.Bool(flag, k.def.(bool), k.help)
		case kList:
			fs.StringSlice(flag, nil, k.help)
		default:
			fs.String(flag, "", k.help)
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
			if !slices.ContainsFunc(keys, func(x key) bool { return x.name == k }) {
				warnings = append(warnings, fmt.Sprintf("config file %s: unknown key %q ignored", *path, k))
			}
		}
	}
	r := resolver{fs: fs, v: v, getenv: getenv}
	c, err := r.build()
	if err != nil {
		return nil, nil, err
	}
	c.Path = *path
	c.Values = make(map[string]string, len(keys))
	for _, k := range keys {
		v, ok := r.raw(k.name)
		if !ok {
			v = k.def
		}
		c.Values[k.name] = fmt.Sprint(v)
	}
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
}

func (r *resolver) raw(name string) (any, bool) {
	if f := r.fs.Lookup(strings.ReplaceAll(name, "_", "-")); f != nil && f.Changed {
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			return sv.GetSlice(), true
		}
		return f.Value.String(), true
	}
	if e := r.getenv(EnvPrefix + strings.ToUpper(name)); e != "" {
		return e, true
	}
	if r.v.IsSet(name) {
		return r.v.Get(name), true
	}
	return nil, false
}

func (r *resolver) fail(name, format string, a ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("config: %s: %s", name, fmt.Sprintf(format, a...))
	}
}

func def(name string) key {
	for _, k := range keys {
		if k.name == name {
			return k
		}
	}
	panic("config: no key " + name)
}

func (r *resolver) str(name string) string {
	v, ok := r.raw(name)
	if !ok {
		return def(name).def.(string)
	}
	switch t := v.(type) {
	case string:
		return strings.TrimSpace(t)
	case []any, map[string]any:
		r.fail(name, "want a string")
		return ""
	}
	return fmt.Sprint(v)
}

func (r *resolver) boolean(name string) bool {
	v, ok := r.raw(name)
	if !ok {
		return def(name).def.(bool)
	}
	switch t := v.(type) {
	case bool:
		return t
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(t))
		if err != nil {
			r.fail(name, "want true or false, got %q", t)
		}
		return b
	}
	r.fail(name, "want true or false")
	return false
}

func (r *resolver) list(name string) []string {
	v, ok := r.raw(name)
	if !ok {
		return nil
	}
	var out []string
	switch t := v.(type) {
	case string:
		for _, s := range strings.Split(t, ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
	case []string:
		out = t
	case []any:
		for _, e := range t {
			s, ok := e.(string)
			if !ok {
				r.fail(name, "want a list of strings")
				return nil
			}
			out = append(out, s)
		}
	default:
		r.fail(name, "want a list of strings")
	}
	return out
}

func (r *resolver) duration(name string) time.Duration {
	v, ok := r.raw(name)
	s := def(name).def.(string)
	if ok {
		s = strings.TrimSpace(fmt.Sprint(v))
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		r.fail(name, "want a duration such as 168h, 5m or 30s, got %q", s)
	}
	return d
}

func (r *resolver) integer(name string) int64 {
	v, ok := r.raw(name)
	if !ok {
		return def(name).def.(int64)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(fmt.Sprint(v)), 10, 64)
	if err != nil || n < 0 {
		r.fail(name, "want a non-negative whole number, got %v", v)
	}
	return n
}

func (r *resolver) build() (*Config, error) {
	c := &Config{}
	if p := r.str("provider"); p != "oidc" {
		r.fail("provider", "unknown provider %q; use oidc (ZITADEL or any OpenID Provider)", p)
	}
	issuer := r.str("oidc_issuer_url")
	if issuer == "" {
		r.fail("oidc_issuer_url", "required, e.g. https://my-instance.zitadel.cloud")
	} else if u, err := url.Parse(issuer); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		r.fail("oidc_issuer_url", "%q is not an http(s) URL", issuer)
	}
	c.OIDC = oidcflow.Config{
		Issuer:       issuer,
		ClientID:     r.str("client_id"),
		ClientSecret: r.str("client_secret"),
		Scopes:       strings.Fields(r.str("scope")),
		UserIDClaim:  r.str("user_id_claim"),
		EmailClaim:   r.str("oidc_email_claim"),
		GroupsClaim:  r.str("oidc_groups_claim"),
	}
	if c.OIDC.ClientID == "" {
		r.fail("client_id", "required: the client id of your ZITADEL web application")
	}
	if path := r.str("client_secret_file"); c.OIDC.ClientSecret == "" && path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			r.fail("client_secret_file", "%v", err)
		}
		c.OIDC.ClientSecret = strings.TrimSpace(string(data))
		if err == nil && c.OIDC.ClientSecret == "" {
			r.fail("client_secret_file", "%s is empty", path)
		}
	}
	if c.OIDC.ClientSecret == "" {
		r.fail("client_secret", "required: the client secret of your ZITADEL web application (auth method Basic), or client_secret_file")
	}
	if dial := r.str("oidc_issuer_dial_address"); dial != "" {
		if _, _, err := net.SplitHostPort(dial); err != nil {
			r.fail("oidc_issuer_dial_address", "%q is not host:port (e.g. zitadel:8080)", dial)
		} else if u, err := url.Parse(issuer); err == nil && u.Host != "" {
			c.IssuerDial = oidcflow.DialFor(u, dial)
		}
	}
	if m := r.str("code_challenge_method"); m != "S256" {
		r.fail("code_challenge_method", "only S256 is supported, got %q", m)
	}

	redirectURL := r.str("redirect_url")
	if u, err := url.Parse(redirectURL); err != nil || (u.IsAbs() && u.Host == "") || u.Path == "" || u.Path[0] != '/' {
		r.fail("redirect_url", "%q is neither an absolute URL nor a path such as /oauth2/callback", redirectURL)
	}

	if list := r.list("cookie_secrets"); len(list) > 0 {
		if r.str("cookie_secret") != "" {
			r.warnings = append(r.warnings, "cookie_secret: ignored because cookie_secrets is set (the first of cookie_secrets encrypts)")
		}
		for i, v := range list {
			secret, err := session.DecodeSecret(v)
			if err != nil {
				r.fail("cookie_secrets", "entry %d: %v", i+1, err)
			}
			c.CookieSecrets = append(c.CookieSecrets, secret)
		}
	} else {
		secret, err := session.DecodeSecret(r.str("cookie_secret"))
		if r.str("cookie_secret") == "" {
			r.fail("cookie_secret", "required; generate one with: openssl rand -base64 32 | tr -- '+/' '-_'")
		} else if err != nil {
			r.fail("cookie_secret", "%v", err)
		}
		c.CookieSecrets = [][]byte{secret}
	}

	sameSite := map[string]http.SameSite{"lax": http.SameSiteLaxMode, "strict": http.SameSiteStrictMode, "none": http.SameSiteNoneMode, "": http.SameSiteLaxMode}
	ss, ok := sameSite[strings.ToLower(r.str("cookie_samesite"))]
	if !ok {
		r.fail("cookie_samesite", "want lax, strict or none, got %q", r.str("cookie_samesite"))
	}
	c.Cookie = session.Options{
		Name:     r.str("cookie_name"),
		Domains:  r.list("cookie_domains"),
		Path:     r.str("cookie_path"),
		Secure:   r.boolean("cookie_secure"),
		HTTPOnly: r.boolean("cookie_httponly"),
		SameSite: ss,
		Expire:   r.duration("cookie_expire"),
	}
	if c.Cookie.Expire == 0 {
		r.fail("cookie_expire", "must be greater than 0")
	}
	if !validCookieName(c.Cookie.Name) {
		r.fail("cookie_name", "%q is not a valid cookie name", c.Cookie.Name)
	}
	if strings.HasPrefix(c.Cookie.Name, "__Host-") && (!c.Cookie.Secure || len(c.Cookie.Domains) > 0 || c.Cookie.Path != "/") {
		r.warnings = append(r.warnings, "cookie_name: the __Host- prefix forces cookie_secure = true, cookie_path = \"/\" and no cookie_domains; those settings are overridden")
	} else if strings.HasPrefix(c.Cookie.Name, "__Secure-") && !c.Cookie.Secure {
		r.warnings = append(r.warnings, "cookie_name: the __Secure- prefix forces cookie_secure = true")
	}
	c.RefreshGrace = r.duration("refresh_grace_period")
	if r.boolean("refresh_tokens") {
		if !slices.Contains(c.OIDC.Scopes, "offline_access") {
			c.OIDC.Scopes = append(c.OIDC.Scopes, "offline_access")
		}
	} else if r.duration("cookie_refresh") > 0 {
		r.fail("cookie_refresh", "needs refresh_tokens = true")
	}

	c.Authz = authz.Config{
		RedirectURL:             redirectURL,
		ProviderDisplayName:     r.str("provider_display_name"),
		SkipProviderButton:      r.boolean("skip_provider_button"),
		EmailDomains:            r.list("email_domains"),
		AllowedGroups:           r.list("allowed_groups"),
		AllowUnverifiedEmail:    r.boolean("insecure_oidc_allow_unverified_email"),
		WhitelistDomains:        r.list("whitelist_domains"),
		PassAccessToken:         r.boolean("pass_access_token"),
		PassAuthorizationHeader: r.boolean("pass_authorization_header"),
		SetXAuthRequest:         r.boolean("set_xauthrequest"),
		PassUserHeaders:         r.boolean("pass_user_headers"),
		IDPTimeout:              r.duration("idp_timeout"),
		RefreshBeforeExpiry:     r.duration("refresh_before_expiry"),
		CookieRefresh:           r.duration("cookie_refresh"),
		IdleTimeout:             r.duration("session_idle_timeout"),
	}
	if c.Authz.IDPTimeout == 0 {
		r.fail("idp_timeout", "must be greater than 0")
	}
	for _, e := range r.list("skip_auth_routes") {
		method, expr := "", e
		if m, rest, ok := strings.Cut(e, "="); ok && isMethod(m) {
			method, expr = strings.ToUpper(m), rest
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			r.fail("skip_auth_routes", "entry %q: %v", e, err)
			continue
		}
		c.Authz.SkipAuthRoutes = append(c.Authz.SkipAuthRoutes, authz.Route{Method: method, Path: re})
	}
	for _, e := range r.list("api_routes") {
		re, err := regexp.Compile(e)
		if err != nil {
			r.fail("api_routes", "entry %q: %v", e, err)
			continue
		}
		c.Authz.APIRoutes = append(c.Authz.APIRoutes, re)
	}
	if len(c.Authz.EmailDomains) == 0 {
		r.warnings = append(r.warnings, `email_domains is empty: nobody can log in; set email_domains = ["*"] or your domains`)
	}
	if len(r.list("upstreams")) > 0 {
		r.warnings = append(r.warnings, "upstreams: ignored; Envoy routes requests to your upstreams")
	}
	c.BearerEnabled = r.boolean("skip_jwt_bearer_tokens")
	c.Bearer = oidcflow.BearerConfig{
		ExtraAudiences:            r.list("extra_jwt_audiences"),
		ProjectID:                 r.str("zitadel_project_id"),
		ForceIntrospection:        r.boolean("introspect_jwt_bearer_tokens"),
		IntrospectionClientID:     r.str("introspection_client_id"),
		IntrospectionClientSecret: r.str("introspection_client_secret"),
		PositiveTTL:               r.duration("introspection_cache_ttl"),
		NegativeTTL:               r.duration("introspection_negative_ttl"),
	}
	c.OIDC.CallTimeout = c.Authz.IDPTimeout
	if c.Bearer.IntrospectionClientID != "" && c.Bearer.IntrospectionClientSecret == "" {
		r.fail("introspection_client_secret", "required with introspection_client_id (or use introspection_key_file)")
	}
	if path := r.str("introspection_key_file"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			r.fail("introspection_key_file", "%v", err)
		} else if k, err := oidcflow.ParseKeyFile(data); err != nil {
			r.fail("introspection_key_file", "%s: %v", path, err)
		} else {
			c.Bearer.IntrospectionKey = k
		}
	}
	c.TokenCacheSize = r.integer("token_cache_max_bytes")

	c.GRPCAddress = r.address("grpc_address")
	c.HTTPAddress = r.address("http_address")
	c.SessionCacheSize = r.integer("session_cache_max_bytes")
	c.EnablePprof = r.boolean("enable_pprof")
	if err := c.LogLevel.UnmarshalText([]byte(r.str("log_level"))); err != nil {
		r.fail("log_level", "want debug, info, warn or error, got %q", r.str("log_level"))
	}
	c.LogFormat = r.str("log_format")
	if c.LogFormat != "text" && c.LogFormat != "json" {
		r.fail("log_format", "want text or json, got %q", c.LogFormat)
	}
	c.SessionStore = r.str("session_store_type")
	c.Redis = r.redisOptions()
	c.RedisL1TTL = r.duration("redis_l1_ttl")
	switch {
	case c.SessionStore != "cookie" && c.SessionStore != "redis":
		r.fail("session_store_type", "want cookie or redis, got %q", c.SessionStore)
	case c.SessionStore == "redis" && c.Redis == nil:
		r.fail("session_store_type", "redis needs redis_url, redis_sentinel_addresses or redis_cluster_addresses")
	}
	c.OTLPEndpoint = r.str("otlp_endpoint")
	if c.OTLPEndpoint != "" {
		if _, _, err := net.SplitHostPort(c.OTLPEndpoint); err != nil {
			r.fail("otlp_endpoint", "%q is not host:port (e.g. otel-collector:4317)", c.OTLPEndpoint)
		}
	}
	c.OTLPInsecure = r.boolean("otlp_insecure")
	ratio, err := strconv.ParseFloat(r.str("trace_sample_ratio"), 64)
	if err != nil || ratio < 0 || ratio > 1 {
		r.fail("trace_sample_ratio", "want a number from 0 to 1, got %q", r.str("trace_sample_ratio"))
	}
	c.TraceSampleRatio = ratio
	if r.err != nil {
		return nil, r.err
	}
	return c, nil
}

// Masked is the effective configuration in key order, one "key = value"
// line each, with secrets replaced: what check-config prints.
func (c *Config) Masked() []string {
	lines := make([]string, 0, len(keys))
	for _, k := range keys {
		v := c.Values[k.name]
		if secretKeys[k.name] && v != "" && v != "[]" {
			v = "****** (set)"
		}
		lines = append(lines, k.name+" = "+v)
	}
	return lines
}

// Changed lists the keys whose effective values differ between c and next.
func (c *Config) Changed(next *Config) []string {
	var changed []string
	for _, k := range keys {
		if c.Values[k.name] != next.Values[k.name] {
			changed = append(changed, k.name)
		}
	}
	return changed
}

// redisOptions reads the redis_* keys; nil when none is set.
func (r *resolver) redisOptions() *redis.UniversalOptions {
	u, sentinels, cluster := r.str("redis_url"), r.list("redis_sentinel_addresses"), r.list("redis_cluster_addresses")
	set := 0
	for _, ok := range []bool{u != "", len(sentinels) > 0, len(cluster) > 0} {
		if ok {
			set++
		}
	}
	if set == 0 {
		return nil
	}
	if set > 1 {
		r.fail("redis_url", "set one of redis_url, redis_sentinel_addresses and redis_cluster_addresses")
		return nil
	}
	var roots *x509.CertPool
	if path := r.str("redis_ca_file"); path != "" {
		pem, err := os.ReadFile(path)
		if err != nil {
			r.fail("redis_ca_file", "%v", err)
			return nil
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			r.fail("redis_ca_file", "%s holds no PEM certificate", path)
			return nil
		}
	}
	var tlsConfig *tls.Config
	if r.boolean("redis_use_tls") {
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	}
	switch {
	case u != "":
		o, err := redis.ParseURL(u)
		if err != nil {
			r.fail("redis_url", "not a redis:// or rediss:// URL: %v", err)
			return nil
		}
		if o.TLSConfig != nil {
			o.TLSConfig.RootCAs = roots
			o.TLSConfig.MinVersion = tls.VersionTLS12
		} else if roots != nil {
			r.fail("redis_ca_file", "set, but redis_url is not rediss://")
			return nil
		}
		return &redis.UniversalOptions{Addrs: []string{o.Addr}, DB: o.DB, Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig}
	case len(sentinels) > 0:
		master := r.str("redis_sentinel_master_name")
		if master == "" {
			r.fail("redis_sentinel_master_name", "required with redis_sentinel_addresses")
		}
		return &redis.UniversalOptions{Addrs: sentinels, MasterName: master, Password: r.str("redis_password"), TLSConfig: tlsConfig}
	default:
		return &redis.UniversalOptions{Addrs: cluster, Password: r.str("redis_password"), TLSConfig: tlsConfig, IsClusterMode: true}
	}
}

func (r *resolver) address(name string) string {
	a := r.str(name)
	if _, _, err := net.SplitHostPort(a); err != nil {
		r.fail(name, "%q is not host:port (e.g. 0.0.0.0:9001)", a)
	}
	return a
}

func isMethod(s string) bool {
	switch strings.ToUpper(s) {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE":
		return true
	}
	return false
}

func validCookieName(n string) bool {
	if n == "" {
		return false
	}
	c := http.Cookie{Name: n, Value: "x"}
	return c.Valid() == nil
}

// ErrHelp is returned for --help.
var ErrHelp = errors.New("help requested")

// Usage describes every key, for serve --help.
func Usage(w io.Writer) {
	fmt.Fprintln(w, "usage: zitadel-ext-authz serve --config FILE [--key value ...]")
	fmt.Fprintln(w, "\nEvery key can be set in the file, as ZITADEL_EXT_AUTHZ_<KEY> or as --<key-with-dashes>:")
	for _, k := range keys {
		fmt.Fprintf(w, "  %-38s %s (default %v)\n", k.name, k.help, k.def)
	}
}
