package config

import (
	"fmt"
	"slices"
	"strings"
)

// oauth2-proxy's options (v7.15, its legacy configuration: the file keys,
// flags and OAUTH2_PROXY_* variables of ZITADEL's guide), each with how we
// understand it. The table is the only list; README's switching table and
// check-config's report are made from it, and a test keeps it complete
// against oauth2-proxy's own flag list (testdata/oauth2-proxy-flags.txt).
type o2pClass int

const (
	o2pSame          o2pClass = iota // a key of ours, same name and meaning
	o2pAlias                         // read as the key of ours that note names
	o2pNoop                          // accepted; no effect here (note: why)
	o2pEnvoy                         // Envoy's job: ignored (note: how, when not obvious)
	o2pOtherProvider                 // another provider's option: provider is oidc
	o2pUnsupported                   // not supported (note: why, and what to do)
)

type o2pOption struct {
	name  string // the file key and OAUTH2_PROXY_<NAME>
	flag  string // its flag, when not the name with dashes
	kind  kind
	class o2pClass
	note  string
}

// flagName is the option's command-line flag, without the dashes.
func (o o2pOption) flagName() string {
	if o.flag != "" {
		return o.flag
	}
	return strings.ReplaceAll(o.name, "_", "-")
}

var oauth2ProxyOptions = []o2pOption{
	{"acr_values", "", kString, o2pSame, ""},
	{"allow_query_semicolons", "", kBool, o2pEnvoy, ""},
	{"allowed_groups", "allowed-group", kList, o2pSame, ""},
	{"allowed_roles", "allowed-role", kList, o2pOtherProvider, ""},
	{"api_routes", "api-route", kList, o2pSame, ""},
	{"approval_prompt", "", kString, o2pSame, ""},
	{"auth_logging", "", kBool, o2pNoop, "one structured line per refused request and per login; log_level sets what you see"},
	{"auth_logging_format", "", kString, o2pNoop, "logs are structured (log_format text or json)"},
	{"auth_request_response_mode", "", kString, o2pUnsupported, "the authorization response is a query on the callback"},
	{"authenticated_emails_file", "", kString, o2pSame, ""},
	{"azure_graph_group_field", "", kString, o2pOtherProvider, ""},
	{"azure_tenant", "", kString, o2pOtherProvider, ""},
	{"backend_logout_url", "", kString, o2pSame, ""},
	{"banner", "", kString, o2pSame, ""},
	{"basic_auth_password", "", kString, o2pSame, ""},
	{"bearer_token_login_fallback", "", kBool, o2pUnsupported, "an invalid bearer token gets 401 with an RFC 6750 challenge"},
	{"bitbucket_repository", "", kString, o2pOtherProvider, ""},
	{"bitbucket_team", "", kString, o2pOtherProvider, ""},
	{"bitbucket_workspace", "", kString, o2pOtherProvider, ""},
	{"client_id", "", kString, o2pSame, ""},
	{"client_secret", "", kString, o2pSame, ""},
	{"client_secret_file", "", kString, o2pSame, ""},
	{"code_challenge_method", "", kString, o2pSame, ""},
	{"cookie_csrf_expire", "", kString, o2pSame, ""},
	{"cookie_csrf_per_request", "", kBool, o2pNoop, "every login has its own state cookie already"},
	{"cookie_csrf_per_request_limit", "", kString, o2pNoop, "at most 5 logins in flight per browser"},
	{"cookie_csrf_samesite", "", kString, o2pNoop, "the state cookie is SameSite=Lax, which the IdP's redirect back needs"},
	{"cookie_domains", "cookie-domain", kString, o2pSame, ""},
	{"cookie_expire", "", kString, o2pSame, ""},
	{"cookie_httponly", "", kBool, o2pSame, ""},
	{"cookie_name", "", kString, o2pSame, ""},
	{"cookie_path", "", kString, o2pSame, ""},
	{"cookie_refresh", "", kString, o2pSame, ""},
	{"cookie_samesite", "", kString, o2pSame, ""},
	{"cookie_secret", "", kString, o2pSame, ""},
	{"cookie_secret_file", "", kString, o2pSame, ""},
	{"cookie_secure", "", kBool, o2pSame, ""},
	{"custom_sign_in_logo", "", kString, o2pSame, ""},
	{"custom_templates_dir", "", kString, o2pSame, ""},
	{"disable_keep_alives", "", kBool, o2pEnvoy, ""},
	{"display_htpasswd_form", "", kBool, o2pOtherProvider, ""},
	{"email_domains", "email-domain", kList, o2pSame, ""},
	{"encode_state", "", kBool, o2pNoop, "the state is always opaque and encrypted"},
	{"entra_id_allowed_tenants", "entra-id-allowed-tenant", kList, o2pOtherProvider, ""},
	{"entra_id_federated_token_auth", "", kBool, o2pOtherProvider, ""},
	{"errors_to_info_log", "", kBool, o2pNoop, "everything goes to stderr, one stream"},
	{"exclude_logging_paths", "exclude-logging-path", kList, o2pNoop, "allowed requests are not logged"},
	{"extra_jwt_issuers", "", kList, o2pSame, ""},
	{"flush_interval", "", kString, o2pEnvoy, ""},
	{"footer", "", kString, o2pSame, ""},
	{"force_code_challenge_method", "", kString, o2pAlias, "code_challenge_method"},
	{"force_https", "", kBool, o2pEnvoy, "Envoy redirects HTTP to HTTPS"},
	{"force_json_errors", "", kBool, o2pUnsupported, "use api_routes = [\".*\"] for 401s instead of redirects"},
	{"gcp_healthchecks", "", kBool, o2pEnvoy, "Envoy answers load balancer health checks"},
	{"github_org", "", kString, o2pOtherProvider, ""},
	{"github_repo", "", kString, o2pOtherProvider, ""},
	{"github_team", "", kString, o2pOtherProvider, ""},
	{"github_token", "", kString, o2pOtherProvider, ""},
	{"github_users", "github-user", kList, o2pOtherProvider, ""},
	{"gitlab_groups", "gitlab-group", kList, o2pOtherProvider, ""},
	{"gitlab_projects", "gitlab-project", kString, o2pOtherProvider, ""},
	{"google_admin_api_user_scope", "", kString, o2pOtherProvider, ""},
	{"google_admin_email", "", kString, o2pOtherProvider, ""},
	{"google_group", "", kList, o2pOtherProvider, ""},
	{"google_groups", "google-group", kList, o2pOtherProvider, ""},
	{"google_service_account_json", "", kString, o2pOtherProvider, ""},
	{"google_target_principal", "", kString, o2pOtherProvider, ""},
	{"google_use_application_default_credentials", "", kString, o2pOtherProvider, ""},
	{"google_use_organization_id", "", kString, o2pOtherProvider, ""},
	{"htpasswd_file", "", kString, o2pOtherProvider, ""},
	{"htpasswd_user_groups", "htpasswd-user-group", kList, o2pOtherProvider, ""},
	{"http_address", "", kString, o2pSame, ""},
	{"https_address", "", kString, o2pEnvoy, "Envoy terminates TLS"},
	{"insecure_oidc_allow_unverified_email", "", kBool, o2pSame, ""},
	{"insecure_oidc_skip_issuer_verification", "", kBool, o2pUnsupported, "the issuer is always checked (an RFC 9207 mix-up defence)"},
	{"insecure_oidc_skip_nonce", "", kBool, o2pNoop, "the nonce is always checked (the login sends one)"},
	{"jwt_key", "", kString, o2pOtherProvider, ""},
	{"jwt_key_file", "", kString, o2pOtherProvider, ""},
	{"keycloak_groups", "keycloak-group", kList, o2pOtherProvider, ""},
	{"logging_compress", "", kBool, o2pNoop, "logs go to stderr; the container runtime rotates them"},
	{"logging_filename", "", kString, o2pNoop, "logs go to stderr; the container runtime keeps them"},
	{"logging_local_time", "", kBool, o2pNoop, "log times are UTC"},
	{"logging_max_age", "", kString, o2pNoop, "logs go to stderr; the container runtime rotates them"},
	{"logging_max_backups", "", kString, o2pNoop, "logs go to stderr; the container runtime rotates them"},
	{"logging_max_size", "", kString, o2pNoop, "logs go to stderr; the container runtime rotates them"},
	{"login_url", "", kString, o2pSame, ""},
	{"metrics_address", "", kString, o2pSame, ""},
	{"metrics_secure_address", "", kString, o2pUnsupported, "serve /metrics on a private port (metrics_address); terminate TLS in front if needed"},
	{"metrics_tls_cert_file", "", kString, o2pUnsupported, "serve /metrics on a private port (metrics_address); terminate TLS in front if needed"},
	{"metrics_tls_key_file", "", kString, o2pUnsupported, "serve /metrics on a private port (metrics_address); terminate TLS in front if needed"},
	{"oidc_audience_claims", "oidc-audience-claim", kList, o2pUnsupported, "the audience is always aud (and azp), as OpenID Connect says"},
	{"oidc_email_claim", "", kString, o2pSame, ""},
	{"oidc_enabled_signing_algs", "oidc-enabled-signing-alg", kList, o2pUnsupported, "the asymmetric algorithms the IdP advertises are accepted; none and HS* never"},
	{"oidc_extra_audiences", "oidc-extra-audience", kList, o2pAlias, "extra_jwt_audiences"},
	{"oidc_groups_claim", "", kString, o2pSame, ""},
	{"oidc_issuer_url", "", kString, o2pSame, ""},
	{"oidc_jwks_url", "", kString, o2pSame, ""},
	{"oidc_public_key_files", "oidc-public-key-file", kList, o2pUnsupported, "keys come from the IdP's JWKS (oidc_jwks_url without discovery)"},
	{"pass_access_token", "", kBool, o2pSame, ""},
	{"pass_authorization_header", "", kBool, o2pSame, ""},
	{"pass_basic_auth", "", kBool, o2pSame, ""},
	{"pass_host_header", "", kBool, o2pEnvoy, ""},
	{"pass_user_headers", "", kBool, o2pSame, ""},
	{"ping_path", "", kString, o2pSame, ""},
	{"ping_user_agent", "", kString, o2pEnvoy, "Envoy answers load balancer health checks"},
	{"prefer_email_to_user", "", kBool, o2pSame, ""},
	{"profile_url", "", kString, o2pSame, ""},
	{"prompt", "", kString, o2pSame, ""},
	{"provider", "", kString, o2pSame, ""},
	{"provider_ca_files", "provider-ca-file", kList, o2pSame, ""},
	{"provider_display_name", "", kString, o2pSame, ""},
	{"proxy_prefix", "", kString, o2pSame, ""},
	{"proxy_websockets", "", kBool, o2pEnvoy, ""},
	{"pubjwk_url", "", kString, o2pOtherProvider, ""},
	{"ready_path", "", kString, o2pSame, ""},
	{"real_client_ip_header", "", kString, o2pSame, ""},
	{"redeem_url", "", kString, o2pSame, ""},
	{"redirect_url", "", kString, o2pSame, ""},
	{"redis_ca_path", "", kString, o2pAlias, "redis_ca_file"},
	{"redis_cluster_connection_urls", "", kList, o2pAlias, "redis_cluster_addresses"},
	{"redis_connection_idle_timeout", "", kString, o2pNoop, "go-redis closes idle connections itself"},
	{"redis_connection_url", "", kString, o2pAlias, "redis_url"},
	{"redis_insecure_skip_tls_verify", "", kBool, o2pSame, ""},
	{"redis_password", "", kString, o2pSame, ""},
	{"redis_sentinel_connection_urls", "", kList, o2pAlias, "redis_sentinel_addresses"},
	{"redis_sentinel_master_name", "", kString, o2pSame, ""},
	{"redis_sentinel_password", "", kString, o2pSame, ""},
	{"redis_use_cluster", "", kBool, o2pNoop, "redis_cluster_addresses (or redis_cluster_connection_urls) choose Cluster"},
	{"redis_use_sentinel", "", kBool, o2pNoop, "redis_sentinel_addresses (or redis_sentinel_connection_urls) choose Sentinel"},
	{"redis_username", "", kString, o2pSame, ""},
	{"relative_redirect_url", "", kBool, o2pNoop, "redirect_url may always be a path"},
	{"request_id_header", "", kString, o2pEnvoy, "Envoy sets x-request-id; we log it"},
	{"request_logging", "", kBool, o2pNoop, "allowed requests are not logged (use the metrics, or Envoy's access log)"},
	{"request_logging_format", "", kString, o2pNoop, "logs are structured (log_format text or json); Envoy's access log format is Envoy's"},
	{"resource", "", kString, o2pOtherProvider, ""},
	{"reverse_proxy", "", kBool, o2pSame, ""},
	{"scope", "", kString, o2pSame, ""},
	{"session_cookie_minimal", "", kBool, o2pSame, ""},
	{"session_store_type", "", kString, o2pSame, ""},
	{"set_authorization_header", "", kBool, o2pAlias, "pass_authorization_header"},
	{"set_basic_auth", "", kBool, o2pAlias, "pass_basic_auth"},
	{"set_xauthrequest", "", kBool, o2pSame, ""},
	{"show_debug_on_error", "", kBool, o2pUnsupported, "error pages never show internals; the log line with the request id has them"},
	{"signature_key", "", kString, o2pUnsupported, "GAP-Signature request signing: sign upstream requests in Envoy"},
	{"silence_ping_logging", "", kBool, o2pNoop, "health checks are never logged"},
	{"skip_auth_preflight", "", kBool, o2pSame, ""},
	{"skip_auth_regex", "", kList, o2pAlias, "skip_auth_routes"},
	{"skip_auth_routes", "skip-auth-route", kList, o2pSame, ""},
	{"skip_auth_strip_headers", "", kBool, o2pNoop, "identity headers a client sends are always removed"},
	{"skip_claims_from_profile_url", "", kBool, o2pNoop, "userinfo is asked only when the ID token lacks the e-mail"},
	{"skip_jwt_bearer_tokens", "", kBool, o2pSame, ""},
	{"skip_oidc_discovery", "", kBool, o2pSame, ""},
	{"skip_provider_button", "", kBool, o2pSame, ""},
	{"ssl_insecure_skip_verify", "", kBool, o2pSame, ""},
	{"ssl_upstream_insecure_skip_verify", "", kBool, o2pEnvoy, ""},
	{"standard_logging", "", kBool, o2pNoop, "log_level sets what is logged"},
	{"standard_logging_format", "", kString, o2pNoop, "logs are structured (log_format text or json)"},
	{"tls_cert_file", "", kString, o2pEnvoy, "Envoy terminates TLS"},
	{"tls_cipher_suites", "tls-cipher-suite", kList, o2pEnvoy, "Envoy terminates TLS"},
	{"tls_key_file", "", kString, o2pEnvoy, "Envoy terminates TLS"},
	{"tls_min_version", "", kString, o2pEnvoy, "Envoy terminates TLS"},
	{"trusted_ips", "trusted-ip", kList, o2pSame, ""},
	{"trusted_proxy_ips", "trusted-proxy-ip", kList, o2pEnvoy, "Envoy's xff_num_trusted_hops and use_remote_address decide which X-Forwarded-For entries count"},
	{"upstreams", "upstream", kList, o2pEnvoy, "Envoy routes to your upstreams"},
	{"upstream_timeout", "", kString, o2pEnvoy, ""},
	{"use_system_trust_store", "", kBool, o2pNoop, "provider_ca_files are added to the system's trust store"},
	{"user_id_claim", "", kString, o2pSame, ""},
	{"validate_url", "", kString, o2pUnsupported, "tokens are verified by signature or introspection"},
	{"whitelist_domains", "whitelist-domain", kList, o2pSame, ""},
}

// OAuth2ProxyEnvPrefix is oauth2-proxy's environment prefix; our own
// (EnvPrefix) wins when both name a key.
const OAuth2ProxyEnvPrefix = "OAUTH2_PROXY_"

func o2pLookup(name string) (o2pOption, bool) {
	i := slices.IndexFunc(oauth2ProxyOptions, func(o o2pOption) bool { return o.name == name })
	if i < 0 {
		return o2pOption{}, false
	}
	return oauth2ProxyOptions[i], true
}

// o2pNamesFor are the oauth2-proxy options that feed key name: itself (a
// same option) and its aliases, in that order.
func o2pNamesFor(name string) []o2pOption {
	var out []o2pOption
	for _, o := range oauth2ProxyOptions {
		if (o.class == o2pSame && o.name == name) || (o.class == o2pAlias && o.note == name) {
			out = append(out, o)
		}
	}
	return out
}

// understood is how check-config reports an oauth2-proxy option it met.
func (o o2pOption) understood() string {
	switch o.class {
	case o2pSame:
		return "used"
	case o2pAlias:
		return "alias of " + o.note
	case o2pNoop:
		return "accepted, no effect here: " + o.note
	case o2pEnvoy:
		if o.note != "" {
			return "Envoy's job: ignored (" + o.note + ")"
		}
		return "Envoy's job: ignored"
	case o2pOtherProvider:
		return "not supported: another provider's option (provider = oidc)"
	}
	return "not supported: " + o.note
}

// warns reports whether meeting the option is worth a warning: it is not
// applied as its name says.
func (o o2pOption) warns() bool { return o.class != o2pSame && o.class != o2pAlias }

// o2pSource says where an option was set: file, environment or flag.
func o2pSource(r *resolver, o o2pOption) (string, bool) {
	if f := r.fs.Lookup(o.flagName()); f != nil && f.Changed {
		return "--" + o.flagName(), true
	}
	if r.getenv(OAuth2ProxyEnvPrefix+strings.ToUpper(o.name)) != "" {
		return OAuth2ProxyEnvPrefix + strings.ToUpper(o.name), true
	}
	if r.v.IsSet(o.name) {
		return "file", true
	}
	return "", false
}

// oauth2ProxyReport lists the oauth2-proxy options the configuration sets
// and how each was understood, and warns about those not applied as
// their names say.
func (r *resolver) oauth2ProxyReport() []string {
	var report []string
	for _, o := range oauth2ProxyOptions {
		src, ok := o2pSource(r, o)
		if !ok {
			continue
		}
		report = append(report, fmt.Sprintf("%s (%s): %s", o.name, src, o.understood()))
		if o.warns() {
			r.warnings = append(r.warnings, fmt.Sprintf("%s: %s", o.name, o.understood()))
		}
	}
	return report
}

// OAuth2ProxyApplied reports whether oauth2-proxy's option name is applied
// as its name says (a key of ours, or an alias of one), and whether it is
// one of oauth2-proxy's at all.
func OAuth2ProxyApplied(name string) (applied, known bool) {
	o, ok := o2pLookup(name)
	return ok && !o.warns(), ok
}

// SwitchingTable is README's table of every oauth2-proxy option, in four
// columns: the same here, an alias of a key of ours, Envoy's job, and not
// supported (with why; options accepted without effect are there too).
func SwitchingTable() string {
	var cols [4][]string
	for _, o := range oauth2ProxyOptions {
		name := "`" + o.name + "`"
		switch o.class {
		case o2pSame:
			cols[0] = append(cols[0], name)
		case o2pAlias:
			cols[1] = append(cols[1], name+" → `"+o.note+"`")
		case o2pEnvoy:
			if o.note != "" {
				name += " (" + o.note + ")"
			}
			cols[2] = append(cols[2], name)
		case o2pNoop:
			cols[3] = append(cols[3], name+": accepted, no effect: "+o.note)
		case o2pOtherProvider:
			cols[3] = append(cols[3], name+": another provider's")
		default:
			cols[3] = append(cols[3], name+": "+o.note)
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| Same name, same meaning (%d) | Alias: read as our key (%d) | Envoy's job: ignored (%d) | Not supported, and why (%d) |\n|---|---|---|---|\n",
		len(cols[0]), len(cols[1]), len(cols[2]), len(cols[3]))
	rows := max(len(cols[0]), len(cols[1]), len(cols[2]), len(cols[3]))
	for i := range rows {
		b.WriteString("|")
		for _, col := range cols {
			cell := ""
			if i < len(col) {
				cell = strings.ReplaceAll(col[i], "|", "\\|")
			}
			b.WriteString(" " + cell + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}
