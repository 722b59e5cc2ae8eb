package config

import (
	"strings"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// durationText is a default duration as the table shows it: "5m", not
// "5m0s".
func durationText(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// kind is how a key's value is read.
type kind int

const (
	kString   kind = iota // default: string
	kBool                 // default: bool
	kList                 // default: []string
	kDuration             // default: string, such as "5m"
	kInt                  // default: int64
	kFloat                // default: float64
)

// key is one configuration key: its name (also its flag and environment
// variable), how it is read, its default, whether its value is secret
// (masked in check-config), where it may be set and what a hot reload
// does with it, and its help text. The table below is the only list of
// keys and of these facts: the per-app set (appKeys), the reloadable set
// (Reloadable, Reload), check-config's lines (Masked, MaskedApp), serve
// --help (Usage) and README's tables (readme.go) are derived from it, and
// keys_test.go fails when one of them disagrees.
type key struct {
	name   string
	kind   kind
	def    any
	secret bool
	reload reload
	help   string
}

// Values of the secret column.
const (
	plain  = false
	secret = true
)

// reload is the table's reload column: whether an apps entry may set the
// key, and what a hot reload does when it changes. A per-app key always
// applies on reload, through its app (wiring.SetApps), so the column says
// both.
type reload struct {
	mode  reloadMode
	apply func(run, next *Config) // appliedLive: copies the key's effect from next into run
}

// reloadMode is where a key may be set and how a reload applies it.
type reloadMode int

const (
	needsRestart  reloadMode = iota // global; the running value stays until a restart
	appliedLive                     // global; its apply function takes the new value
	appPolicyKey                    // per-app; the running app takes it in place (authz.Server.SetConfig)
	appRebuildKey                   // per-app; the app is built anew (client, cookies, …; sessions kept)
)

// Values of the reload column.
var (
	restart    = reload{mode: needsRestart}
	appPolicy  = reload{mode: appPolicyKey}
	appRebuild = reload{mode: appRebuildKey}
)

// applied marks a global key a reload applies with apply.
func applied(apply func(run, next *Config)) reload { return reload{mode: appliedLive, apply: apply} }

// perApp reports whether an apps entry may set the key.
func (k key) perApp() bool { return k.reload.mode == appPolicyKey || k.reload.mode == appRebuildKey }

// reloadable reports whether a change applies without a restart and
// without rebuilding an app: the keys wiring.SetApps changes in place.
func (k key) reloadable() bool { return k.reload.mode == appliedLive || k.reload.mode == appPolicyKey }

// defaultProxyPrefix is proxy_prefix's default, as in oauth2-proxy.
const defaultProxyPrefix = authz.DefaultProxyPrefix

// underPrefix is a default that is a path under proxy_prefix: redirect_url's
// is "/callback" under it, so setting proxy_prefix moves the callback too
// (oauth2-proxy's rule). The resolver joins it with the effective
// proxy_prefix (defaultOf); README and --help show it under the default.
type underPrefix string

// String is the default under proxy_prefix's default, as README and --help
// show it.
func (p underPrefix) String() string { return defaultProxyPrefix + string(p) }

// reloadCookieSecrets applies cookie_secret, cookie_secret_file and
// cookie_secrets: every app is re-keyed (wiring.SetApps).
func reloadCookieSecrets(run, next *Config) { run.CookieSecrets = next.CookieSecrets }

// reloadLogLevel applies log_level (the reloader sets the handler's level).
func reloadLogLevel(run, next *Config) { run.LogLevel = next.LogLevel }

// keys is every key we understand. Defaults follow CONTRACT.md §2.
var keys = []key{
	{"provider", kString, "oidc", plain, restart, "identity provider type; only oidc (ZITADEL or any OpenID Provider)"},
	{"provider_display_name", kString, authz.DefaultProviderDisplayName, plain, appPolicy, "name on the sign-in button"},
	{"oidc_issuer_url", kString, "", plain, appRebuild, "issuer URL, exactly as the IdP's discovery document prints it"},
	{"client_id", kString, "", plain, appRebuild, "OIDC client id"},
	{"client_secret", kString, "", secret, appRebuild, "OIDC client secret (client_auth_method basic or post)"},
	{"client_secret_file", kString, "", plain, appRebuild, "file holding the client secret, read when client_secret is empty; re-read on reload and when it changes"},
	{"client_auth_method", kString, "basic", plain, appRebuild, "how the client authenticates to the IdP, as the app's authentication method in ZITADEL's console: basic (Code), post (Post), none (PKCE: no secret), private_key_jwt (JWT: client_key_file)"},
	{"client_key_file", kString, "", plain, appRebuild, "ZITADEL application key file (JSON: keyId, key, clientId) for client_auth_method private_key_jwt; re-read on reload and when it changes"},
	{"oidc_issuer_dial_address", kString, "", plain, appRebuild, "host:port to connect to for the issuer's host (issuer URL and Host header unchanged), e.g. zitadel:8080 in docker compose"},
	{"skip_oidc_discovery", kBool, false, plain, appRebuild, "no discovery: the endpoints come from login_url, redeem_url, oidc_jwks_url (and profile_url)"},
	{"login_url", kString, "", plain, appRebuild, "the authorization endpoint, with skip_oidc_discovery"},
	{"redeem_url", kString, "", plain, appRebuild, "the token endpoint, with skip_oidc_discovery"},
	{"oidc_jwks_url", kString, "", plain, appRebuild, "the JWKS URL, with skip_oidc_discovery"},
	{"profile_url", kString, "", plain, appRebuild, "the userinfo endpoint, with skip_oidc_discovery (optional)"},
	{"provider_ca_files", kList, []string{}, plain, restart, "PEM CA certificates to trust for the IdP besides the system's (a self-hosted ZITADEL behind a private CA)"},
	{"ssl_insecure_skip_verify", kBool, false, plain, restart, "DANGER: don't verify the IdP's TLS certificate (anyone on the path can impersonate it); for tests only"},
	{"redirect_url", kString, underPrefix("/callback"), plain, appRebuild, "callback URL, absolute or a path"},
	{"scope", kString, "openid email profile", plain, appRebuild, "space-separated scopes"},
	{"code_challenge_method", kString, "S256", plain, restart, "PKCE method; only S256"},
	{"prompt", kString, "", plain, appRebuild, "OIDC prompt on the authorization request (none, login, consent, select_account, create)"},
	{"approval_prompt", kString, "", plain, appRebuild, "oauth2-proxy's: force sends prompt=consent (when prompt is unset), auto nothing; unlike oauth2-proxy, nothing by default"},
	{"acr_values", kString, "", plain, appRebuild, "acr_values on every authorization request (route step-ups use step_up_acr_values)"},
	{"proxy_prefix", kString, defaultProxyPrefix, plain, appRebuild, "path prefix of our endpoints: PREFIX/start, /sign_in, /sign_out, /userinfo, /callback (redirect_url's default)"},
	{"backend_logout_url", kString, "", plain, appRebuild, "called (GET) at sign-out before the IdP's logout, {id_token} replaced by the session's ID token"},
	{"session_cookie_minimal", kBool, false, plain, appRebuild, "keep no tokens in cookie sessions, only the identity: smaller cookies, no refresh, no token headers upstream"},
	{"cookie_csrf_expire", kDuration, "15m", plain, appRebuild, "how long a login may take: the lifetime of its state cookie"},
	{"user_id_claim", kString, oidcflow.DefaultUserIDClaim, plain, appRebuild, "claim for x-forwarded-user"},
	{"oidc_email_claim", kString, oidcflow.DefaultEmailClaim, plain, appRebuild, "claim for the e-mail"},
	{"oidc_groups_claim", kString, oidcflow.DefaultGroupsClaim, plain, appRebuild, "claim for groups (ZITADEL roles are added)"},
	{"cookie_name", kString, "_oauth2_proxy", plain, appRebuild, "session cookie name"},
	{"cookie_secret", kString, "", secret, applied(reloadCookieSecrets), "16, 24 or 32 bytes, raw or base64"},
	{"cookie_secret_file", kString, "", plain, applied(reloadCookieSecrets), "file holding the cookie secret, read when cookie_secret is empty; re-read when it changes"},
	{"cookie_secure", kBool, true, plain, appRebuild, "Secure cookie attribute"},
	{"cookie_httponly", kBool, true, plain, appRebuild, "HttpOnly cookie attribute"},
	{"cookie_samesite", kString, "lax", plain, appRebuild, "lax, strict or none"},
	{"cookie_domains", kList, []string{}, plain, appRebuild, "cookie domains; the first matching the request host is used"},
	{"cookie_path", kString, "/", plain, appRebuild, "cookie path"},
	{"cookie_expire", kDuration, "168h", plain, appRebuild, "absolute session lifetime"},
	{"cookie_refresh", kDuration, "0s", plain, appRebuild, "refresh tokens once the session is older than this"},
	{"cookie_secrets", kList, []string{}, secret, applied(reloadCookieSecrets), "cookie secrets for rotation: the first encrypts, all decrypt (replaces cookie_secret)"},
	{"refresh_tokens", kBool, true, plain, appRebuild, "renew sessions with refresh tokens (adds offline_access to scope)"},
	{"offline_access_scope", kBool, true, plain, appRebuild, "with refresh_tokens, ask for the offline_access scope (ZITADEL needs it for refresh tokens; Keycloak issues them without it, and with it keeps an offline session that outlives sign-out and back-channel logout)"},
	{"refresh_before_expiry", kDuration, "1m", plain, restart, "refresh this long before the access token expires"},
	{"refresh_grace_period", kDuration, "1m", plain, restart, "requests still carrying the pre-refresh cookie get the refreshed tokens for this long"},
	{"session_idle_timeout", kDuration, "0s", plain, appRebuild, "end sessions unused for this long (0 = never)"},
	{"email_domains", kList, []string{}, plain, appPolicy, "allowed e-mail domains: *, example.com, .example.com"},
	{"allowed_groups", kList, []string{}, plain, appPolicy, "allowed groups or ZITADEL roles; empty allows all"},
	{"insecure_oidc_allow_unverified_email", kBool, false, plain, appPolicy, "accept unverified e-mail addresses for email_domains"},
	{"pass_access_token", kBool, false, plain, appRebuild, "send x-forwarded-access-token upstream"},
	{"pass_authorization_header", kBool, false, plain, appRebuild, "send authorization: Bearer <id_token> upstream"},
	{"set_xauthrequest", kBool, false, plain, appRebuild, "send x-auth-request-* headers upstream"},
	{"pass_user_headers", kBool, true, plain, appRebuild, "send x-forwarded-user/-email/-groups/-preferred-username upstream"},
	{"pass_basic_auth", kBool, false, plain, appRebuild, "send authorization: Basic user:basic_auth_password upstream (with the x-forwarded-user/-email headers)"},
	{"basic_auth_password", kString, "", secret, appRebuild, "the password in pass_basic_auth's header"},
	{"prefer_email_to_user", kBool, false, plain, appRebuild, "send the e-mail as the user (x-forwarded-user, the basic auth user)"},
	{"claim_headers", kList, []string{}, plain, appRebuild, "claims sent upstream as headers: a table header = \"claim\" (a claim name such as urn:zitadel:iam:user:resourceowner:id, or a dotted path into objects); lists are joined with commas, ZITADEL role claims give their role keys, objects their JSON; a missing claim sends no header, and a client-sent copy never passes"},
	{"id_token_header", kString, "", plain, appPolicy, "send a session's ID token upstream in this header (a client-sent copy never passes); pass_authorization_header is unchanged"},
	{"skip_provider_button", kBool, false, plain, appRebuild, "redirect straight to the IdP instead of the sign-in page"},
	{"banner", kString, "", plain, appRebuild, "HTML above the sign-in button (\"-\": none)"},
	{"footer", kString, "", plain, appRebuild, "HTML at the bottom of the sign-in page (\"-\": none)"},
	{"custom_sign_in_logo", kString, "", plain, appRebuild, "image file (embedded) or https URL shown on the sign-in page (\"-\": none)"},
	{"custom_templates_dir", kString, "", plain, appRebuild, "directory with sign_in.html and/or error.html (Go html/template) replacing our pages"},
	{"skip_auth_routes", kList, []string{}, plain, appPolicy, "METHOD=regex or regex: allowed without login"},
	{"skip_auth_preflight", kBool, false, plain, appPolicy, "let CORS preflight requests (OPTIONS) through without login"},
	{"trusted_ips", kList, []string{}, plain, appPolicy, "IPs or CIDR ranges whose requests pass without login (the CheckRequest's source address; with reverse_proxy, real_client_ip_header's)"},
	{"reverse_proxy", kBool, false, plain, appRebuild, "trust real_client_ip_header for the client's address (a proxy before Envoy sets it)"},
	{"real_client_ip_header", kString, "X-Real-IP", plain, appRebuild, "with reverse_proxy: the header holding the client's address (a list such as X-Forwarded-For: the entry trusted_proxy_hops from the right)"},
	{"trusted_proxy_hops", kInt, int64(1), plain, appRebuild, "with reverse_proxy: how many trusted proxies append to real_client_ip_header; the client's address is that many entries from the right (1: the last, the one the nearest proxy appended)"},
	{"csrf_allowed_origins", kList, []string{}, plain, appPolicy, "origins besides the app's own that may send state-changing requests (POST, PUT, PATCH, DELETE) with the session cookie: https://admin.example.com or https://*.example.com; others get 403 (route key csrf: off turns the check off)"},
	{"rules", kList, []string{}, plain, appRebuild, "named CEL rules: a table name = 'expression' over user, request, route and now (README \"Rules\"); routes name them in context_extensions allow_if and deny_if; an apps entry's rules add to the top level's (a name it repeats is its own); a syntax or type error is refused at load and on reload, naming the rule, line and column"},
	{"ignored_route_keys", kList, []string{}, plain, appPolicy, "context_extensions keys another service or filter reads, which routes may set; any other key zitadel-ext-authz doesn't know denies the route (500 naming it)"},
	{"allow_if", kList, []string{}, plain, appPolicy, "rules every request must pass on routes that name no rules (context_extensions allow_if or deny_if replace both defaults)"},
	{"deny_if", kList, []string{}, plain, appPolicy, "rules that deny a request when one holds, on routes that name no rules; checked before allow_if"},
	{"authenticated_emails_file", kString, "", plain, appPolicy, "file of allowed e-mail addresses, one per line, besides email_domains; re-read when it changes"},
	{"api_routes", kList, []string{}, plain, appPolicy, "regex: unauthenticated requests get 401"},
	{"skip_jwt_bearer_tokens", kBool, false, plain, appRebuild, "accept Authorization: Bearer tokens from API callers (JWTs locally, opaque tokens by introspection)"},
	{"extra_jwt_audiences", kList, []string{}, plain, appRebuild, "audiences accepted in JWT bearer tokens besides client_id and zitadel_project_id"},
	{"extra_jwt_issuers", kList, []string{}, plain, appRebuild, "issuer=audience pairs: bearer JWTs of other issuers accepted (keys from each issuer's discovery)"},
	{"zitadel_project_id", kString, "", plain, appRebuild, "ZITADEL project id, accepted as a JWT audience"},
	{"introspect_jwt_bearer_tokens", kBool, false, plain, appRebuild, "introspect JWT bearer tokens too (sees revocation, costs an IdP call per new token)"},
	{"introspection_client_id", kString, "", plain, appRebuild, "client for the introspection endpoint (default: client_id)"},
	{"introspection_client_secret", kString, "", secret, appRebuild, "its secret, client_secret_basic (default: client_secret)"},
	{"introspection_key_file", kString, "", plain, appRebuild, "ZITADEL key file (JSON) for private_key_jwt introspection instead of a secret"},
	{"introspection_url", kString, "", plain, appRebuild, "the IdP's introspection endpoint, when discovery lists none (Ory Hydra: the admin port's /admin/oauth2/introspect) or to override it"},
	{"introspection_cache_ttl", kDuration, durationText(oidcflow.DefaultTokenCacheTTL), plain, restart, "longest time a valid token is cached (never past its exp)"},
	{"introspection_negative_ttl", kDuration, durationText(oidcflow.DefaultNegativeCacheTTL), plain, restart, "how long a rejected token is remembered"},
	{"introspection_budget", kInt, int64(50), plain, appRebuild, "introspections of tokens not in the cache, per second and app (bursts of as many): past it a new opaque token gets 503 with retry-after (it may be good) without an IdP call, counted as zitadel_ext_authz_idp_calls_total{call=\"introspection\",outcome=\"over_budget\"}; 0: no bound"},
	{"token_cache_max_bytes", kInt, int64(32 << 20), plain, restart, "bound of the bearer token cache"},
	{"resource_url", kString, "", plain, appPolicy, "with skip_jwt_bearer_tokens: the resource identifier of the app's RFC 9728 protected-resource metadata, an http(s) URL without query or fragment (https://app.example.com/mcp); its document is served at its well-known location (/.well-known/oauth-protected-resource/mcp) and every 401 names that; default: each URL is a resource of its own, its document at the well-known path with the URL's path after it, which a 401 names"},
	{"resource_name", kString, "", plain, appPolicy, "the protected-resource metadata's resource_name (default: the app's name; the default app's: the resource's host)"},
	{"resource_scopes_supported", kList, []string{}, plain, appPolicy, "the protected-resource metadata's scopes_supported, the scopes a client asks for (default: scope, as the app's own login asks; set to [] to list none)"},
	{"resource_documentation", kString, "", plain, appPolicy, "the protected-resource metadata's resource_documentation: an http(s) URL of a page for developers of clients"},
	{"zitadel_organization_id", kString, "", plain, appRebuild, "ZITADEL organization id: logins ask for it (scope urn:zitadel:iam:org:id:{id}), sessions and tokens of users of other organizations are refused"},
	{"zitadel_organization_domain", kString, "", plain, appRebuild, "instead of zitadel_organization_id: the organization's primary domain (scope urn:zitadel:iam:org:domain:primary:{domain})"},
	{"step_up_acr_values", kString, "", plain, appRebuild, "acr_values sent when a route's required_amr sends the user back to the IdP"},
	{"whitelist_domains", kList, []string{}, plain, appPolicy, "extra hosts allowed as return targets"},
	{"idp_timeout", kDuration, durationText(authz.DefaultIDPTimeout), plain, restart, "bound on each IdP call inside a Check"},
	{"http_address", kString, "127.0.0.1:4180", plain, restart, "operations HTTP listener: /healthz, /readyz, /metrics"},
	{"metrics_address", kString, "", plain, restart, "another listener serving only /metrics (http_address serves it too)"},
	{"ping_path", kString, "/ping", plain, restart, "liveness path on http_address besides /healthz"},
	{"ready_path", kString, "/ready", plain, restart, "readiness path on http_address besides /readyz"},
	{"http_read_timeout", kDuration, "10s", plain, restart, "the operations listener closes a connection whose request (headers and body) hasn't arrived within this"},
	{"http_idle_timeout", kDuration, "30s", plain, restart, "the operations listener closes a keep-alive connection idle for this long"},
	{"grpc_address", kString, "127.0.0.1:9001", plain, restart, "ext_authz gRPC listener"},
	{"session_cache_max_bytes", kInt, int64(64 << 20), plain, restart, "bound of the decoded-session cache (0 disables it)"},
	{"enable_pprof", kBool, false, plain, restart, "serve Go's /debug/pprof/ on http_address (for profiling; keep http_address private)"},
	{"log_level", kString, "info", plain, applied(reloadLogLevel), "debug, info, warn or error"},
	{"identity_jwt_header", kString, authz.DefaultIdentityJWTHeader, plain, appPolicy, "header carrying our signed identity assertion (a JWT the upstream verifies against PREFIX/jwks); \"\" sends none"},
	{"identity_jwt_issuer", kString, "", plain, appPolicy, "the assertion's iss (default: redirect_url's origin when it is absolute, else the request's)"},
	{"identity_jwt_audience", kList, []string{}, plain, appPolicy, "the assertion's aud (default: the app's name and the request's host)"},
	{"identity_jwt_key_file", kString, "", plain, applied(reloadIdentityKeys), "PEM file of EC P-256 private keys for the assertion (the first signs, all are published); default: keys derived from the cookie secrets; re-read when it changes"},
	{"log_format", kString, "text", plain, restart, "text or json"},
	{"session_store_type", kString, "cookie", plain, restart, "cookie (sessions in encrypted cookies) or redis (cookies carry a ticket; sessions in Redis, shared by replicas)"},
	{"redis_url", kString, "", secret, restart, "redis://[:password@]host:port[/db] or rediss:// (TLS); also enables cross-replica back-channel logout in cookie mode"},
	{"redis_sentinel_master_name", kString, "", plain, restart, "Redis Sentinel: the master's name (with redis_sentinel_addresses)"},
	{"redis_sentinel_addresses", kList, []string{}, plain, restart, "Redis Sentinel: host:port of each sentinel"},
	{"redis_cluster_addresses", kList, []string{}, plain, restart, "Redis Cluster: host:port of some nodes"},
	{"redis_password", kString, "", secret, restart, "password for redis_sentinel_* or redis_cluster_addresses (redis_url carries its own)"},
	{"redis_sentinel_password", kString, "", secret, restart, "password of the sentinels themselves, when they have one (redis_password is the master's)"},
	{"redis_username", kString, "", plain, restart, "Redis ACL user for redis_sentinel_* or redis_cluster_addresses (redis_url carries its own)"},
	{"redis_insecure_skip_tls_verify", kBool, false, plain, restart, "DANGER: don't verify Redis' TLS certificate"},
	{"redis_use_tls", kBool, false, plain, restart, "TLS to redis_sentinel_* or redis_cluster_addresses (redis_url: use rediss://)"},
	{"redis_ca_file", kString, "", plain, restart, "PEM CA certificates to trust for TLS to Redis (default: the system's)"},
	{"redis_min_replicas", kInt, int64(1), plain, restart, "with redis_sentinel_*: each write waits (WAIT, at most 500 ms) until this many replicas have it, so a failover loses no acknowledged login or sign-out; 0: asynchronous replication"},
	{"redis_l1_ttl", kDuration, "10s", plain, restart, "how long a replica keeps a stored session in memory (changes on other replicas reach it within a second through pub/sub)"},
	{"otlp_endpoint", kString, "", plain, restart, "OpenTelemetry: OTLP/gRPC collector host:port for traces; empty disables tracing"},
	{"otlp_insecure", kBool, false, plain, restart, "OpenTelemetry: plain-text gRPC to the collector"},
	{"trace_sample_ratio", kFloat, 0.1, plain, restart, "OpenTelemetry: share of Checks without a sampled parent that are traced (0 to 1)"},
}

// lookup finds a key by name.
func lookup(name string) (key, bool) {
	for _, k := range keys {
		if k.name == name {
			return k, true
		}
	}
	return key{}, false
}

// keyNames are the names of the keys for which keep is true, in table
// order.
func keyNames(keep func(key) bool) []string {
	var out []string
	for _, k := range keys {
		if keep(k) {
			out = append(out, k.name)
		}
	}
	return out
}
