package config

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// build resolves every key into Config, one part per collaborator; the
// first invalid key is the error.
func (r *resolver) build() (*Config, error) {
	c := &Config{}
	r.buildIdP(c)
	r.buildCookies(c)
	r.buildAuthz(c)
	r.buildLogin(c)
	r.buildAccess(c)
	r.buildBearer(c)
	r.buildIdPExtras(c)
	r.buildServer(c)
	r.buildTelemetry(c)
	if r.app == nil {
		r.buildApps(c)
	}
	if r.err != nil {
		return nil, r.err
	}
	return c, nil
}

// buildIdP: the OpenID Provider and our client at it (oidcflow.Config).
func (r *resolver) buildIdP(c *Config) {
	if p := r.str("provider"); p != "oidc" {
		r.fail("provider", "unknown provider %q; use oidc (ZITADEL or any OpenID Provider)", p)
	}
	issuer := r.str("oidc_issuer_url")
	// With an apps list and no top-level client_id there is no default
	// app: the top level only lends its keys to the entries, each of
	// which must then have an issuer, client id and secret of its own.
	noDefault := r.hasApps() && r.str("client_id") == ""
	if issuer == "" && noDefault {
		// nothing to check
	} else if issuer == "" {
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
	if path := r.str("client_secret_file"); c.OIDC.ClientSecret == "" && path != "" {
		if data, ok := r.readFile(c, "client_secret_file", path); ok {
			c.OIDC.ClientSecret = strings.TrimSpace(string(data))
			if c.OIDC.ClientSecret == "" {
				r.fail("client_secret_file", "%s is empty", path)
			}
		}
	}
	r.clientAuth(c, noDefault)
	if c.OIDC.ClientID == "" && !r.hasApps() {
		r.fail("client_id", "required: the client id of your ZITADEL web application")
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

}

// buildCookies: cookie secrets and attributes (session.Options), refresh.
func (r *resolver) buildCookies(c *Config) {
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
		raw := r.str("cookie_secret")
		if path := r.str("cookie_secret_file"); raw == "" && path != "" {
			if data, ok := r.readFile(c, "cookie_secret_file", path); ok {
				raw = strings.TrimSpace(string(data))
			}
		}
		secret, err := session.DecodeSecret(raw)
		if raw == "" {
			r.fail("cookie_secret", "required (or cookie_secret_file); generate one with: openssl rand -base64 32 | tr -- '+/' '-_'")
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
		if r.boolean("offline_access_scope") && !slices.Contains(c.OIDC.Scopes, "offline_access") {
			c.OIDC.Scopes = append(c.OIDC.Scopes, "offline_access")
		}
	} else if r.duration("cookie_refresh") > 0 {
		r.fail("cookie_refresh", "needs refresh_tokens = true")
	}

}

// buildAuthz: what Check decides with (authz.Config).
func (r *resolver) buildAuthz(c *Config) {
	redirectURL := r.str("redirect_url")
	if u, err := url.Parse(redirectURL); err != nil || (u.IsAbs() && u.Host == "") || u.Path == "" || u.Path[0] != '/' {
		r.fail("redirect_url", "%q is neither an absolute URL nor a path such as /oauth2/callback", redirectURL)
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
		OrganizationID:          r.str("zitadel_organization_id"),
		OrganizationDomain:      r.str("zitadel_organization_domain"),
		StepUpACRValues:         r.str("step_up_acr_values"),
	}
	switch {
	case c.Authz.OrganizationID != "" && c.Authz.OrganizationDomain != "":
		r.fail("zitadel_organization_domain", "set zitadel_organization_id or zitadel_organization_domain, not both")
	case c.Authz.OrganizationID != "":
		// ZITADEL shows that organization's login and lets only its users
		// in; the resourceowner scope puts the user's organization in the
		// tokens, where every Check looks for it.
		c.OIDC.Scopes = appendScopes(c.OIDC.Scopes, "urn:zitadel:iam:org:id:"+c.Authz.OrganizationID, resourceOwnerScope)
	case c.Authz.OrganizationDomain != "":
		c.OIDC.Scopes = appendScopes(c.OIDC.Scopes, "urn:zitadel:iam:org:domain:primary:"+c.Authz.OrganizationDomain, resourceOwnerScope)
	}
	if strings.ContainsAny(c.Authz.OrganizationID+c.Authz.OrganizationDomain, " \t\"") {
		r.fail("zitadel_organization_id", "no spaces or quotes: one id (or domain)")
	}
	if strings.ContainsAny(c.Authz.StepUpACRValues, "\"\\") {
		r.fail("step_up_acr_values", "no quotes or backslashes")
	}
	if c.Authz.IDPTimeout == 0 {
		r.fail("idp_timeout", "must be greater than 0")
	}
	// oauth2-proxy's forms: "regex", "METHOD=regex", "METHOD!=regex",
	// "!=regex"; its deprecated skip_auth_regex adds path-only entries.
	routes := r.list("skip_auth_routes")
	if v, ok := r.o2pRaw("skip_auth_regex"); ok && r.isSetOwn("skip_auth_routes") {
		extra, _ := toStrings(v)
		routes = append(routes, extra...)
	}
	for _, e := range routes {
		rt, err := parseSkipAuthRoute(e)
		if err != nil {
			r.fail("skip_auth_routes", "entry %q: %v", e, err)
			continue
		}
		c.Authz.SkipAuthRoutes = append(c.Authz.SkipAuthRoutes, rt)
	}
	for _, e := range r.list("api_routes") {
		re, err := regexp.Compile(e)
		if err != nil {
			r.fail("api_routes", "entry %q: %v", e, err)
			continue
		}
		c.Authz.APIRoutes = append(c.Authz.APIRoutes, re)
	}
	if len(c.Authz.EmailDomains) == 0 && r.str("authenticated_emails_file") == "" && (!r.hasApps() || r.str("client_id") != "") {
		r.warnings = append(r.warnings, `email_domains is empty: nobody can log in; set email_domains = ["*"] or your domains`)
	}
}

// resourceOwnerScope asks ZITADEL for the user's organization
// (urn:zitadel:iam:user:resourceowner:id, :name, :primary_domain) in ID
// tokens, userinfo, introspection and JWT access tokens.
const resourceOwnerScope = "urn:zitadel:iam:user:resourceowner"

func appendScopes(scopes []string, add ...string) []string {
	for _, s := range add {
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	return scopes
}

// buildBearer: API callers' access tokens (oidcflow.BearerConfig).
func (r *resolver) buildBearer(c *Config) {
	c.BearerEnabled = r.boolean("skip_jwt_bearer_tokens")
	c.Bearer = oidcflow.BearerConfig{
		ExtraAudiences:            r.list("extra_jwt_audiences"),
		ProjectID:                 r.str("zitadel_project_id"),
		ForceIntrospection:        r.boolean("introspect_jwt_bearer_tokens"),
		IntrospectionClientID:     r.str("introspection_client_id"),
		IntrospectionClientSecret: r.str("introspection_client_secret"),
		IntrospectionURL:          r.str("introspection_url"),
		PositiveTTL:               r.duration("introspection_cache_ttl"),
		NegativeTTL:               r.duration("introspection_negative_ttl"),
		IntrospectionBudget:       int(r.integer("introspection_budget")),
	}
	c.OIDC.CallTimeout = c.Authz.IDPTimeout
	if c.Bearer.IntrospectionClientID != "" && c.Bearer.IntrospectionClientSecret == "" {
		r.fail("introspection_client_secret", "required with introspection_client_id (or use introspection_key_file)")
	}
	if path := r.str("introspection_key_file"); path != "" {
		if data, ok := r.readFile(c, "introspection_key_file", path); ok {
			if k, err := oidcflow.ParseKeyFile(data); err != nil {
				r.fail("introspection_key_file", "%s: %v", path, err)
			} else {
				c.Bearer.IntrospectionKey = k
			}
		}
	}
	if u := c.Bearer.IntrospectionURL; u != "" {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" {
			r.fail("introspection_url", "%q is not an http(s) URL", u)
		}
	}
	c.TokenCacheSize = r.integer("token_cache_max_bytes")

}

// buildServer: listeners, logs, caches and the session store.
func (r *resolver) buildServer(c *Config) {
	c.GRPCAddress = r.address("grpc_address")
	c.HTTPAddress = r.address("http_address")
	if m := r.str("metrics_address"); m != "" {
		c.MetricsAddress = r.address("metrics_address")
	}
	c.PingPath, c.ReadyPath = r.str("ping_path"), r.str("ready_path")
	for key, p := range map[string]string{"ping_path": c.PingPath, "ready_path": c.ReadyPath} {
		if p != "" && (p[0] != '/' || strings.HasPrefix(p, "/oauth2/") || strings.HasPrefix(p, "/debug/")) {
			r.fail(key, "%q: want a path such as /ping, outside /oauth2/ and /debug/", p)
		}
	}
	c.IdPTLS = r.idpTLS(c)
	c.HTTPReadTimeout = r.duration("http_read_timeout")
	c.HTTPIdleTimeout = r.duration("http_idle_timeout")
	if c.HTTPReadTimeout <= 0 {
		r.fail("http_read_timeout", "must be positive (e.g. 10s): without it a slow client holds a connection forever")
	}
	if c.HTTPIdleTimeout <= 0 {
		r.fail("http_idle_timeout", "must be positive (e.g. 30s): without it idle connections are held forever")
	}
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
	c.RedisMinReplicas = int(r.integer("redis_min_replicas"))
	if c.RedisMinReplicas < 0 {
		r.fail("redis_min_replicas", "must be 0 or more")
	}
	switch {
	case c.SessionStore != "cookie" && c.SessionStore != "redis":
		r.fail("session_store_type", "want cookie or redis, got %q", c.SessionStore)
	case c.SessionStore == "redis" && c.Redis == nil:
		r.fail("session_store_type", "redis needs redis_url, redis_sentinel_addresses or redis_cluster_addresses")
	}
}

// buildTelemetry: tracing.
func (r *resolver) buildTelemetry(c *Config) {
	c.OTLPEndpoint = r.str("otlp_endpoint")
	if c.OTLPEndpoint != "" {
		if _, _, err := net.SplitHostPort(c.OTLPEndpoint); err != nil {
			r.fail("otlp_endpoint", "%q is not host:port (e.g. otel-collector:4317)", c.OTLPEndpoint)
		}
	}
	c.OTLPInsecure = r.boolean("otlp_insecure")
	c.TraceSampleRatio = r.float("trace_sample_ratio", 0, 1)
}

// redactUserinfo masks what stands between "//" and "@" in a URL (its
// user and password), for error messages; it needs no valid URL.
func redactUserinfo(u string) string {
	i := strings.Index(u, "//")
	if i < 0 {
		return u
	}
	rest := u[i+2:]
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return u
	}
	return u[:i+2] + "***" + rest[at:]
}

func (r *resolver) redisOptions() *redis.UniversalOptions {
	u, sentinels, cluster := r.str("redis_url"), r.list("redis_sentinel_addresses"), r.list("redis_cluster_addresses")
	// oauth2-proxy's *_connection_urls are URLs (redis://[user[:password]@]host:port):
	// their host:port, and their credentials when the keys don't set any.
	user, password := r.str("redis_username"), r.str("redis_password")
	for _, list := range []*[]string{&sentinels, &cluster} {
		for i, e := range *list {
			if !strings.Contains(e, "://") {
				continue
			}
			pu, err := url.Parse(e)
			if err != nil || pu.Host == "" {
				r.fail("redis_url", "%q is not a redis:// URL or host:port", redactUserinfo(e))
				continue
			}
			(*list)[i] = pu.Host
			if pu.User != nil {
				if user == "" {
					user = pu.User.Username()
				}
				if p, ok := pu.User.Password(); ok && password == "" {
					password = p
				}
			}
		}
	}
	if v, ok := r.o2pRaw("redis_use_sentinel"); ok && r.parseBool("redis_use_sentinel", v) && len(sentinels) == 0 {
		r.fail("redis_use_sentinel", "needs redis_sentinel_connection_urls (or redis_sentinel_addresses) and redis_sentinel_master_name")
	}
	if v, ok := r.o2pRaw("redis_use_cluster"); ok && r.parseBool("redis_use_cluster", v) && len(cluster) == 0 {
		r.fail("redis_use_cluster", "needs redis_cluster_connection_urls (or redis_cluster_addresses)")
	}
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
	insecure := r.boolean("redis_insecure_skip_tls_verify")
	if insecure {
		r.warnings = append(r.warnings, "redis_insecure_skip_tls_verify: Redis' TLS certificate is NOT verified; anyone on the path can read and change sessions. Use redis_ca_file for a private CA instead")
	}
	if r.boolean("redis_use_tls") || strings.HasPrefix(sentinelOrClusterScheme(r), "rediss") {
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, InsecureSkipVerify: insecure}
	}
	switch {
	case u != "":
		o, err := redis.ParseURL(u)
		if err != nil {
			// url.Parse's errors quote the URL or a part of it, and the part
			// can be the password (redis://:pa/ss@h parses "pa" as a host
			// and complains of its port): say what to check instead.
			var ue *url.Error
			cause := err.Error()
			if errors.As(err, &ue) {
				cause = "it doesn't parse as a URL (percent-encode /, #, ? and @ in the user and password, and check the port)"
			}
			r.fail("redis_url", "%q is not a redis:// or rediss:// URL: %s", redactUserinfo(u), cause)
			return nil
		}
		if o.TLSConfig != nil {
			o.TLSConfig.RootCAs = roots
			o.TLSConfig.MinVersion = tls.VersionTLS12
			o.TLSConfig.InsecureSkipVerify = insecure
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
		return &redis.UniversalOptions{Addrs: sentinels, MasterName: master, Username: user, Password: password,
			SentinelPassword: r.str("redis_sentinel_password"), TLSConfig: tlsConfig}
	default:
		return &redis.UniversalOptions{Addrs: cluster, Username: user, Password: password, TLSConfig: tlsConfig, IsClusterMode: true}
	}
}

// clientAuth reads client_auth_method and what it needs: a secret for
// basic and post, none for none, client_key_file for private_key_jwt
// (whose clientId is the client id when client_id is unset).
func (r *resolver) clientAuth(c *Config, noDefault bool) {
	method := r.str("client_auth_method")
	c.OIDC.AuthMethod = method
	keyPath := r.str("client_key_file")
	switch method {
	case oidcflow.AuthBasic, oidcflow.AuthPost:
		if c.OIDC.ClientSecret == "" && !noDefault {
			r.fail("client_secret", "required: the client secret of your ZITADEL web application (authentication method %s), or client_secret_file; a PKCE app needs client_auth_method = \"none\", a JWT app \"private_key_jwt\"", oidcflow.ConsoleName(method))
		}
	case oidcflow.AuthNone:
		if c.OIDC.ClientSecret != "" {
			r.warnings = append(r.warnings, r.where+"client_secret: set, but client_auth_method is none (a public PKCE client): the secret is not sent")
			c.OIDC.ClientSecret = ""
		}
	case oidcflow.AuthPrivateKeyJWT:
		if keyPath == "" {
			if !noDefault {
				r.fail("client_key_file", "required with client_auth_method = \"private_key_jwt\": the key file ZITADEL's console downloads for a JWT app (app → Keys → New)")
			}
			return
		}
	default:
		r.fail("client_auth_method", "want basic (ZITADEL: Code), post (Post), none (PKCE) or private_key_jwt (JWT), got %q", method)
		return
	}
	if keyPath == "" {
		return
	}
	if method != oidcflow.AuthPrivateKeyJWT {
		r.fail("client_key_file", "set, but client_auth_method is %q: set client_auth_method = \"private_key_jwt\" to use the key", method)
		return
	}
	data, ok := r.readFile(c, "client_key_file", keyPath)
	if !ok {
		return
	}
	k, err := oidcflow.ParseKeyFile(data)
	if err != nil {
		r.fail("client_key_file", "%s: %v", keyPath, err)
		return
	}
	switch {
	case c.OIDC.ClientID == "":
		c.OIDC.ClientID = k.ClientID
	case c.OIDC.ClientID != k.ClientID:
		r.fail("client_key_file", "%s is the key of client %q, but client_id is %q", keyPath, k.ClientID, c.OIDC.ClientID)
		return
	}
	c.OIDC.ClientKey = k
}

// readFile reads the file a key names, recording a digest of its content
// (a reload compares them: a rotated secret applies without a restart).
func (r *resolver) readFile(c *Config, key, path string) ([]byte, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		r.fail(key, "%v", err)
		return nil, false
	}
	sum := sha256.Sum256(data)
	if c.FileDigests == nil {
		c.FileDigests = map[string]string{}
	}
	c.FileDigests[key] += "sha256:" + hex.EncodeToString(sum[:8])
	c.Files = append(c.Files, path)
	return data, true
}

// parseSkipAuthRoute reads one skip_auth_routes entry as oauth2-proxy
// does: "regex", "METHOD=regex", "METHOD!=regex" or "!=regex".
func parseSkipAuthRoute(e string) (authz.Route, error) {
	var rt authz.Route
	expr := e
	if rest, ok := strings.CutPrefix(e, "!="); ok {
		rt.Negate, expr = true, rest
	} else if m, rest, ok := strings.Cut(e, "="); ok {
		if m, neg := strings.CutSuffix(m, "!"); isMethod(m) {
			rt.Method, rt.Negate, expr = strings.ToUpper(m), neg, rest
		}
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return rt, err
	}
	rt.Path = re
	return rt, nil
}

// sentinelOrClusterScheme is the scheme of the first URL-form entry of
// redis_sentinel_addresses or redis_cluster_addresses ("rediss" turns TLS
// on, as in oauth2-proxy's connection URLs); "" when none is a URL.
func sentinelOrClusterScheme(r *resolver) string {
	for _, key := range []string{"redis_sentinel_addresses", "redis_cluster_addresses"} {
		for _, e := range r.list(key) {
			if scheme, _, ok := strings.Cut(e, "://"); ok {
				return scheme
			}
		}
	}
	return ""
}
