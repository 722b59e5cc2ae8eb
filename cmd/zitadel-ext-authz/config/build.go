package config

import (
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

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
	r.buildIdentityJWT(c)
	r.buildHeaders(c)
	r.buildRules(c)
	r.buildLogin(c)
	r.buildAccess(c)
	r.buildBearer(c)
	r.buildIdPExtras(c)
	r.buildResource(c) // after the scopes and issuers it defaults to
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
	c.Authz = authz.Config{
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
		IDPTimeout:              r.positiveDuration("idp_timeout"),
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
		PositiveTTL:               r.positiveDuration("introspection_cache_ttl"),
		NegativeTTL:               r.positiveDuration("introspection_negative_ttl"),
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
