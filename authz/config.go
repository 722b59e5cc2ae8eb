package authz

import (
	"net/netip"
	"regexp"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/rules"
)

// Config is the policy and routing of the service, as plain values.
type Config struct {
	// RedirectURL is redirect_url: absolute, or a path resolved against the
	// request's scheme and host. Its path is the callback path.
	RedirectURL string
	// ProviderDisplayName names the IdP on the sign-in page (default
	// DefaultProviderDisplayName).
	ProviderDisplayName string
	// SkipProviderButton sends unauthenticated browsers straight to the IdP
	// instead of the sign-in page.
	SkipProviderButton bool

	EmailDomains  []string // "*", "example.com" (exact) or ".example.com" (and subdomains)
	AllowedGroups []string // empty: any group; "role@orgId" entries match a ZITADEL role granted by that organization

	// ZITADEL organization every user must belong to (its id, or its
	// primary domain); empty: any. Logins ask ZITADEL for that
	// organization (oidcflow scopes); sessions and tokens of another are
	// refused.
	OrganizationID     string
	OrganizationDomain string
	// StepUpACRValues is sent as acr_values when a route's required_amr
	// sends the user back to the IdP (step_up_acr_values).
	StepUpACRValues string
	// IdentityJWT is the signed identity assertion on allowed answers
	// (identity_jwt_*; assertion.go).
	IdentityJWT IdentityJWT
	// ProtectedResource is the app's RFC 9728 protected-resource metadata
	// (resource_*; resource.go): the document Check serves at
	// /.well-known/oauth-protected-resource, and the resource_metadata
	// every 401 names, when the app takes bearer tokens (WithBearerAuth).
	ProtectedResource ProtectedResource
	// Rules are the named CEL rules routes name in their allow_if and
	// deny_if context_extensions (rules; nil: none). AllowIf and DenyIf
	// are the app's defaults for routes that name neither (allow_if,
	// deny_if): every rule of AllowIf must hold, and none of DenyIf.
	Rules           *rules.Set
	AllowIf, DenyIf []string
	// IgnoredRouteKeys are context_extensions keys other services or
	// filters read (ignored_route_keys): any other key we don't know
	// denies the route.
	IgnoredRouteKeys []string
	// AllowUnverifiedEmail accepts e-mail addresses the IdP marks unverified
	// for the email_domains check (insecure_oidc_allow_unverified_email).
	AllowUnverifiedEmail bool

	SkipAuthRoutes   []Route          // allowed without login
	APIRoutes        []*regexp.Regexp // unauthenticated: 401, never a redirect
	WhitelistDomains []string         // extra hosts allowed as return targets

	PassAccessToken         bool
	PassAuthorizationHeader bool
	SetXAuthRequest         bool
	PassUserHeaders         bool
	// ClaimHeaders (claim_headers) send claims of the user upstream, each
	// under its header name, in this order (the config sorts them by
	// name); oidcflow computed the values (Identity.ClaimValues). A
	// client-sent header of each name is removed on every allowed request,
	// whether or not the user has the claim.
	ClaimHeaders []ClaimHeader
	// IDTokenHeader (id_token_header) sends a session's ID token upstream
	// in this header; "": none. A client-sent one is always removed.
	IDTokenHeader string

	// RefreshBeforeExpiry refreshes the tokens this long before the access
	// token expires (refresh_before_expiry, default 1m).
	RefreshBeforeExpiry time.Duration
	// CookieRefresh refreshes once the session's tokens are older than this,
	// even if still valid (cookie_refresh; 0 = only near expiry).
	CookieRefresh time.Duration
	// IdleTimeout ends sessions unused for this long (session_idle_timeout;
	// 0 = never).
	IdleTimeout time.Duration

	// IDPTimeout bounds each IdP call made inside a Check (default 5s); it
	// never outlives the Check's own deadline.
	IDPTimeout time.Duration

	// oauth2-proxy's options of the same names.

	// SkipAuthPreflight lets OPTIONS requests through without login.
	SkipAuthPreflight bool
	// TrustedIPs pass without login, by the client's address: the
	// CheckRequest's source, or with ReverseProxy the RealClientIPHeader's
	// (lower case) entry TrustedProxyHops from the right: proxies append
	// the address they saw, so the entries to its left are the client's own
	// words (oauth2-proxy took the first and was bypassed).
	TrustedIPs         []netip.Prefix
	ReverseProxy       bool
	RealClientIPHeader string
	TrustedProxyHops   int
	// CSRFAllowedOrigins may send state-changing requests with the session
	// cookie besides the app's own origin (csrf_allowed_origins): origins
	// such as https://admin.example.com, or https://*.example.com.
	CSRFAllowedOrigins []string
	// AuthenticatedEmails are allowed besides EmailDomains
	// (authenticated_emails_file, lower case); nil when unset.
	AuthenticatedEmails map[string]bool
	// PreferEmailToUser sends the e-mail as the user.
	PreferEmailToUser bool
	// PassBasicAuth sends authorization: Basic user:BasicAuthPassword.
	PassBasicAuth     bool
	BasicAuthPassword string
	// Prompt and ACRValues go on every authorization request.
	Prompt, ACRValues string
	// ProxyPrefix is the path prefix of our endpoints (default /oauth2).
	ProxyPrefix string
	// BackendLogoutURL is called at sign-out ({id_token} replaced).
	BackendLogoutURL string
	// Pages customises the sign-in and error pages (nil: ours).
	Pages *Pages
	// SessionCookieMinimal keeps no tokens in the session, only the
	// identity: no refresh, no token headers, sign-out without a hint.
	SessionCookieMinimal bool
}

// DefaultProviderDisplayName is provider_display_name's default, the one
// default the key table and Config share.
const DefaultProviderDisplayName = "ZITADEL"

// ClaimHeader is one claim_headers entry: the upstream header Name
// (CheckUpstreamHeader accepts it) carries the value of the claim at
// Claim, a path as oidcflow.Config.ClaimHeaders has it.
type ClaimHeader struct{ Name, Claim string }

// Route is one skip_auth_routes entry: an optional method and a path
// regexp, which with Negate ("METHOD!=regex", "!=regex") matches the paths
// it does not match.
type Route struct {
	Method string // upper case; empty matches every method
	Path   *regexp.Regexp
	Negate bool
}
