package config

// kind is how a key's value is read.
type kind int

const (
	kString kind = iota
	kBool
	kList
	kDuration
	kInt
)

// key is one configuration key with its default and help text.
type key struct {
	name string
	kind kind
	def  any
	help string
}

// keys is every key we understand. Defaults follow CONTRACT.md §2.
var keys = []key{
	{"provider", kString, "oidc", "identity provider type; only oidc (ZITADEL or any OpenID Provider)"},
	{"provider_display_name", kString, "ZITADEL", "name on the sign-in button"},
	{"oidc_issuer_url", kString, "", "issuer URL, exactly as the IdP's discovery document prints it"},
	{"client_id", kString, "", "OIDC client id"},
	{"client_secret", kString, "", "OIDC client secret (client_secret_basic)"},
	{"client_secret_file", kString, "", "file holding the client secret, read when client_secret is empty"},
	{"oidc_issuer_dial_address", kString, "", "host:port to connect to for the issuer's host (issuer URL and Host header unchanged), e.g. zitadel:8080 in docker compose"},
	{"redirect_url", kString, "/oauth2/callback", "callback URL, absolute or a path"},
	{"scope", kString, "openid email profile", "space-separated scopes"},
	{"code_challenge_method", kString, "S256", "PKCE method; only S256"},
	{"user_id_claim", kString, "sub", "claim for x-forwarded-user"},
	{"oidc_email_claim", kString, "email", "claim for the e-mail"},
	{"oidc_groups_claim", kString, "groups", "claim for groups (ZITADEL roles are added)"},
	{"cookie_name", kString, "_oauth2_proxy", "session cookie name"},
	{"cookie_secret", kString, "", "16, 24 or 32 bytes, raw or base64"},
	{"cookie_secure", kBool, true, "Secure cookie attribute"},
	{"cookie_httponly", kBool, true, "HttpOnly cookie attribute"},
	{"cookie_samesite", kString, "lax", "lax, strict or none"},
	{"cookie_domains", kList, []string{}, "cookie domains; the first matching the request host is used"},
	{"cookie_path", kString, "/", "cookie path"},
	{"cookie_expire", kDuration, "168h", "absolute session lifetime"},
	{"cookie_refresh", kDuration, "0s", "refresh tokens once the session is older than this"},
	{"cookie_secrets", kList, []string{}, "cookie secrets for rotation: the first encrypts, all decrypt (replaces cookie_secret)"},
	{"refresh_tokens", kBool, true, "renew sessions with refresh tokens (adds offline_access to scope)"},
	{"refresh_before_expiry", kDuration, "1m", "refresh this long before the access token expires"},
	{"refresh_grace_period", kDuration, "1m", "requests still carrying the pre-refresh cookie get the refreshed tokens for this long"},
	{"session_idle_timeout", kDuration, "0s", "end sessions unused for this long (0 = never)"},
	{"email_domains", kList, []string{}, "allowed e-mail domains: *, example.com, .example.com"},
	{"allowed_groups", kList, []string{}, "allowed groups or ZITADEL roles; empty allows all"},
	{"insecure_oidc_allow_unverified_email", kBool, false, "accept unverified e-mail addresses for email_domains"},
	{"pass_access_token", kBool, false, "send x-forwarded-access-token upstream"},
	{"pass_authorization_header", kBool, false, "send authorization: Bearer <id_token> upstream"},
	{"set_xauthrequest", kBool, false, "send x-auth-request-* headers upstream"},
	{"pass_user_headers", kBool, true, "send x-forwarded-user/-email/-groups/-preferred-username upstream"},
	{"skip_provider_button", kBool, false, "redirect straight to the IdP instead of the sign-in page"},
	{"skip_auth_routes", kList, []string{}, "METHOD=regex or regex: allowed without login"},
	{"api_routes", kList, []string{}, "regex: unauthenticated requests get 401"},
	{"skip_jwt_bearer_tokens", kBool, false, "accept Authorization: Bearer tokens from API callers (JWTs locally, opaque tokens by introspection)"},
	{"extra_jwt_audiences", kList, []string{}, "audiences accepted in JWT bearer tokens besides client_id and zitadel_project_id"},
	{"zitadel_project_id", kString, "", "ZITADEL project id, accepted as a JWT audience"},
	{"introspect_jwt_bearer_tokens", kBool, false, "introspect JWT bearer tokens too (sees revocation, costs an IdP call per new token)"},
	{"introspection_client_id", kString, "", "client for the introspection endpoint (default: client_id)"},
	{"introspection_client_secret", kString, "", "its secret, client_secret_basic (default: client_secret)"},
	{"introspection_key_file", kString, "", "ZITADEL key file (JSON) for private_key_jwt introspection instead of a secret"},
	{"introspection_cache_ttl", kDuration, "5m", "longest time a valid token is cached (never past its exp)"},
	{"introspection_negative_ttl", kDuration, "10s", "how long a rejected token is remembered"},
	{"token_cache_max_bytes", kInt, int64(32 << 20), "bound of the bearer token cache"},
	{"whitelist_domains", kList, []string{}, "extra hosts allowed as return targets"},
	{"idp_timeout", kDuration, "5s", "bound on each IdP call inside a Check"},
	{"upstreams", kList, []string{}, "accepted and ignored: Envoy routes to upstreams"},
	{"http_address", kString, "127.0.0.1:4180", "operations HTTP listener: /healthz, /readyz, /metrics"},
	{"grpc_address", kString, "127.0.0.1:9001", "ext_authz gRPC listener"},
	{"session_cache_max_bytes", kInt, int64(64 << 20), "bound of the decoded-session cache (0 disables it)"},
	{"enable_pprof", kBool, false, "serve Go's /debug/pprof/ on http_address (for profiling; keep http_address private)"},
	{"log_level", kString, "info", "debug, info, warn or error"},
	{"log_format", kString, "text", "text or json"},
	{"session_store_type", kString, "cookie", "cookie (sessions in encrypted cookies) or redis (cookies carry a ticket; sessions in Redis, shared by replicas)"},
	{"redis_url", kString, "", "redis://[:password@]host:port[/db] or rediss:// (TLS); also enables cross-replica back-channel logout in cookie mode"},
	{"redis_sentinel_master_name", kString, "", "Redis Sentinel: the master's name (with redis_sentinel_addresses)"},
	{"redis_sentinel_addresses", kList, []string{}, "Redis Sentinel: host:port of each sentinel"},
	{"redis_cluster_addresses", kList, []string{}, "Redis Cluster: host:port of some nodes"},
	{"redis_password", kString, "", "password for redis_sentinel_* or redis_cluster_addresses (redis_url carries its own)"},
	{"redis_use_tls", kBool, false, "TLS to redis_sentinel_* or redis_cluster_addresses (redis_url: use rediss://)"},
	{"redis_ca_file", kString, "", "PEM CA certificates to trust for TLS to Redis (default: the system's)"},
	{"redis_l1_ttl", kDuration, "10s", "how long a replica keeps a stored session in memory (changes on other replicas reach it within a second through pub/sub)"},
	{"otlp_endpoint", kString, "", "OpenTelemetry: OTLP/gRPC collector host:port for traces; empty disables tracing"},
	{"otlp_insecure", kBool, false, "OpenTelemetry: plain-text gRPC to the collector"},
	{"trace_sample_ratio", kString, "0.1", "OpenTelemetry: share of Checks without a sampled parent that are traced (0 to 1)"},
}

// secretKeys are masked wherever the effective configuration is shown.
var secretKeys = map[string]bool{
	"client_secret": true, "cookie_secret": true, "cookie_secrets": true, "introspection_client_secret": true,
	"redis_url": true, "redis_password": true,
}

// reloadableKeys apply on a configuration reload without a restart; a
// change to any other key is logged as needing one.
var reloadableKeys = map[string]bool{
	"allowed_groups": true, "email_domains": true, "insecure_oidc_allow_unverified_email": true,
	"skip_auth_routes": true, "api_routes": true, "whitelist_domains": true,
	"cookie_secret": true, "cookie_secrets": true, "log_level": true,
}

// Reloadable reports whether a change to key applies without a restart.
func Reloadable(key string) bool { return reloadableKeys[key] }
