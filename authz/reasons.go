package authz

import (
	"log/slog"
	"net/http"
)

// Reason says why Check answered as it did: a short label from the fixed
// set below, for logs, metrics, traces and the answer's dynamic metadata
// (never user data). reasons says what each one means for the answer.
type Reason string

// Allowed answers.
const (
	ReasonSession             Reason = "session"
	ReasonSessionRenewed      Reason = "session_renewed"
	ReasonBearerJWT           Reason = "bearer_jwt"
	ReasonBearerIntrospection Reason = "bearer_introspection"
	ReasonSkipAuthRoute       Reason = "skip_auth_route"
	ReasonPreflight           Reason = "preflight"
	ReasonTrustedIP           Reason = "trusted_ip"
)

// Pages, redirects and JSON a browser or client is meant to get.
const (
	ReasonSignInPage     Reason = "sign_in_page"
	ReasonSignedOutPage  Reason = "signed_out_page"
	ReasonUserinfo       Reason = "userinfo"
	ReasonLoginRedirect  Reason = "login_redirect"
	ReasonLoginCompleted Reason = "login_completed"
	ReasonSignOut        Reason = "sign_out"
	ReasonStepUpRedirect Reason = "step_up_redirect"
	ReasonJWKS           Reason = "jwks"
	ReasonResourceMeta   Reason = "resource_metadata" // RFC 9728 protected-resource metadata
)

// Without a (valid) session or token.
const (
	ReasonNoSession          Reason = "no_session"
	ReasonNoBearer           Reason = "no_bearer"
	ReasonInvalidToken       Reason = "invalid_token"
	ReasonInsufficientAuthn  Reason = "insufficient_user_authentication"
	ReasonIdleTimeout        Reason = "idle_timeout"
	ReasonSignedOut          Reason = "signed_out"
	ReasonLoggedOut          Reason = "logged_out"
	ReasonRefreshRejected    Reason = "refresh_rejected"
	ReasonSubjectChanged     Reason = "subject_changed"
	ReasonIntrospectionQuota Reason = "introspection_budget"
)

// A signed-in user or a valid token the policy refuses.
const (
	ReasonNotInGroup       Reason = "not_in_group"
	ReasonEmailDomain      Reason = "email_domain"
	ReasonEmailUnverified  Reason = "email_unverified"
	ReasonWrongOrg         Reason = "wrong_organization"
	ReasonRouteWrongOrg    Reason = "route_wrong_organization"
	ReasonRouteNotInGroup  Reason = "route_not_in_group"
	ReasonMissingScope     Reason = "missing_scope"
	ReasonRuleDenied       Reason = "rule_denied" // a deny_if rule held, or an allow_if rule didn't
	ReasonRuleError        Reason = "rule_error"  // a rule could not be evaluated: denied (fail closed)
	ReasonCSRFOrigin       Reason = "csrf_origin"
	ReasonStepUpFailed     Reason = "step_up_failed"
	ReasonStaleAuthTime    Reason = "stale_auth_time"
	ReasonIssuerMismatch   Reason = "issuer_mismatch"
	ReasonIdPError         Reason = "idp_error"
	ReasonBadState         Reason = "bad_state"
	ReasonMissingCode      Reason = "missing_code"
	ReasonLoginRejected    Reason = "login_rejected"
	ReasonUnknownHost      Reason = "unknown_host"
	ReasonMalformedRequest Reason = "malformed_request"
	ReasonInvalidUTF8      Reason = "invalid_utf8"
)

// Failures on our side or the IdP's.
const (
	ReasonIdPUnavailable   Reason = "idp_unavailable"
	ReasonIdPTimeout       Reason = "idp_timeout"
	ReasonStoreUnavailable Reason = "session_store_unavailable"
	ReasonClientAuthFailed Reason = "client_auth_failed"
	ReasonSessionTooLarge  Reason = "session_too_large"
	ReasonSessionCookie    Reason = "session_cookie"
	ReasonStateCookie      Reason = "state_cookie"
	ReasonRandomFailed     Reason = "random_failed"
	ReasonInternalError    Reason = "internal_error"
	ReasonBadRouteConfig   Reason = "bad_route_config"      // a route key's value can't be read
	ReasonUnknownRouteKey  Reason = "unknown_route_key"     // a route sets a key we don't know
	ReasonUnknownRule      Reason = "unknown_rule"          // a route names a rule the configuration doesn't define
	ReasonTokenExchange    Reason = "token_exchange_failed" // the IdP refused to exchange the user's token for the upstream's (RFC 8693)
	ReasonUnknownApp       Reason = "unknown_app"
)

// Reasons of log lines only: a side task failed, the answer didn't.
const (
	ReasonPanic               Reason = "panic"
	ReasonRevokeFailed        Reason = "revoke_failed"
	ReasonBackendLogoutFailed Reason = "backend_logout_failed"
)

// reasonSpec is what a reason means for the answer: its status (0: it
// depends, e.g. an ended session is a redirect for a browser and a 401
// for an API caller), the page a browser gets when the reason has one of
// its own, the www-authenticate challenge of an API caller's 401, and the
// level of the "not allowed" log line.
type reasonSpec struct {
	status    int
	page      page
	challenge string
	level     slog.Level
	// selfLogged: the answer's builder logs the cause, rate-limited; the
	// decision line stays at level even for a 5xx (a misconfigured route
	// answers every request, and must not write a line for each).
	selfLogged bool
}

// Challenges of a 401 (RFC 6750 §3).
const (
	challengeBearer       = "Bearer"
	challengeInvalidToken = `Bearer error="invalid_token"`
)

var (
	signInFailed    = "Sign-in failed"
	couldNotStart   = page{Title: "Sign-in unavailable", Message: "Could not start the sign-in. Try again."}
	misconfigured   = page{Title: "Configuration error", Message: "This route is misconfigured."}
	notUnderstood   = page{Title: "Bad request", Message: "The request could not be understood."}
	levelOurFailure = slog.LevelWarn
)

// reasons is the one table of reasons: every Reason a decision or a log
// line carries is here (TestEveryReasonIsInTheTable).
var reasons = map[Reason]reasonSpec{
	ReasonSession: {}, ReasonSessionRenewed: {}, ReasonBearerJWT: {}, ReasonBearerIntrospection: {},
	ReasonSkipAuthRoute: {}, ReasonPreflight: {}, ReasonTrustedIP: {},

	ReasonSignInPage:     {status: http.StatusOK},
	ReasonSignedOutPage:  {status: http.StatusOK},
	ReasonUserinfo:       {status: http.StatusOK},
	ReasonLoginRedirect:  {status: http.StatusFound},
	ReasonLoginCompleted: {status: http.StatusFound},
	ReasonSignOut:        {status: http.StatusFound},
	ReasonStepUpRedirect: {status: http.StatusUnauthorized, page: page{Title: "Sign in again to continue"}},
	ReasonJWKS:           {status: http.StatusOK, level: slog.LevelDebug}, // verifiers fetch it every minute
	ReasonResourceMeta:   {status: http.StatusOK, level: slog.LevelDebug}, // clients fetch it before they sign in

	ReasonNoSession:          {status: http.StatusUnauthorized, challenge: challengeBearer},
	ReasonNoBearer:           {status: http.StatusUnauthorized, challenge: challengeBearer},
	ReasonInvalidToken:       {status: http.StatusUnauthorized, challenge: challengeInvalidToken},
	ReasonInsufficientAuthn:  {status: http.StatusUnauthorized, challenge: `Bearer error="insufficient_user_authentication"`},
	ReasonIdleTimeout:        {},
	ReasonSignedOut:          {},
	ReasonLoggedOut:          {},
	ReasonRefreshRejected:    {},
	ReasonSubjectChanged:     {},
	ReasonIntrospectionQuota: {status: http.StatusServiceUnavailable, level: levelOurFailure},

	ReasonNotInGroup:  {status: http.StatusForbidden},
	ReasonEmailDomain: {status: http.StatusForbidden},
	ReasonEmailUnverified: {status: http.StatusForbidden, page: page{Title: "E-mail address not verified", Restart: true,
		Message: "Your identity provider says your e-mail address is not verified. Verify it there (look for its confirmation e-mail), then sign in again."}},
	ReasonWrongOrg:        {status: http.StatusForbidden},
	ReasonRouteWrongOrg:   {status: http.StatusForbidden},
	ReasonRouteNotInGroup: {status: http.StatusForbidden},
	ReasonMissingScope:    {status: http.StatusForbidden},
	ReasonRuleDenied:      {status: http.StatusForbidden},
	ReasonRuleError:       {status: http.StatusForbidden, level: slog.LevelDebug}, // ruleRefused logs the cause at Error
	ReasonCSRFOrigin: {status: http.StatusForbidden, page: page{Title: "Request refused",
		Message: "This request came from another site, so it was not carried out. Go back to the page and try again from there."}},
	ReasonStepUpFailed: {status: http.StatusForbidden, page: page{Title: "Stronger sign-in needed"}},
	ReasonStaleAuthTime: {status: http.StatusForbidden, page: page{Title: "Sign-in not fresh", Restart: true,
		Message: "This page needs a fresh sign-in, and the identity provider did not ask for one."}},
	ReasonIssuerMismatch: {status: http.StatusBadRequest, page: page{Title: signInFailed, Restart: true,
		Message: "The sign-in response did not come from the expected identity provider."}},
	ReasonIdPError: {status: http.StatusForbidden, page: page{Title: signInFailed, Restart: true,
		Message: "The identity provider refused the sign-in."}},
	ReasonBadState: {status: http.StatusForbidden, page: page{Title: "Sign-in expired", Restart: true,
		Message: "This sign-in link is no longer valid or was opened in another browser."}},
	ReasonMissingCode:      {status: http.StatusBadRequest, page: page{Title: signInFailed, Message: "The identity provider sent no authorization code."}},
	ReasonLoginRejected:    {status: http.StatusForbidden, page: page{Title: signInFailed, Message: "The sign-in could not be completed. Start again."}},
	ReasonUnknownHost:      {status: http.StatusForbidden, page: page{Title: "Unknown site", Message: "No application is configured for this host name."}},
	ReasonMalformedRequest: {status: http.StatusBadRequest, page: notUnderstood},
	ReasonInvalidUTF8:      {status: http.StatusBadRequest, page: notUnderstood},

	ReasonIdPUnavailable:   {status: http.StatusServiceUnavailable, level: levelOurFailure},
	ReasonIdPTimeout:       {status: http.StatusGatewayTimeout, level: levelOurFailure},
	ReasonStoreUnavailable: {status: http.StatusServiceUnavailable, level: levelOurFailure},
	ReasonClientAuthFailed: {status: http.StatusInternalServerError, level: levelOurFailure, page: page{Title: "Sign-in is misconfigured",
		Message: "The identity provider refused this application's credentials. The administrator has been told in the log."}},
	ReasonSessionTooLarge: {status: http.StatusInternalServerError, level: levelOurFailure, page: page{Title: signInFailed,
		Message: "Your sign-in is too large to keep in browser cookies (too many roles or claims). Please tell the administrator: the server log says how to fix it."}},
	ReasonSessionCookie:   {status: http.StatusInternalServerError, level: levelOurFailure, page: page{Title: signInFailed, Message: "The session could not be stored."}},
	ReasonStateCookie:     {status: http.StatusInternalServerError, level: levelOurFailure, page: couldNotStart},
	ReasonRandomFailed:    {status: http.StatusInternalServerError, level: levelOurFailure, page: couldNotStart},
	ReasonInternalError:   {status: http.StatusInternalServerError, level: levelOurFailure, page: page{Title: "Internal error", Message: "The request could not be checked."}},
	ReasonBadRouteConfig:  {status: http.StatusInternalServerError, level: slog.LevelDebug, selfLogged: true, page: misconfigured},
	ReasonUnknownRouteKey: {status: http.StatusInternalServerError, level: slog.LevelDebug, selfLogged: true, page: misconfigured},
	ReasonUnknownRule:     {status: http.StatusInternalServerError, level: slog.LevelDebug, page: misconfigured}, // ruleRefused logs it at Error
	ReasonTokenExchange: {status: http.StatusBadGateway, level: levelOurFailure, page: page{Title: "Upstream sign-in failed",
		Message: "The identity provider would not issue a token for this service. The administrator has been told in the log."}},
	ReasonUnknownApp: {status: http.StatusInternalServerError, level: slog.LevelError, page: misconfigured},

	ReasonPanic: {level: slog.LevelError}, ReasonRevokeFailed: {level: levelOurFailure}, ReasonBackendLogoutFailed: {level: levelOurFailure},
}

// Level is the level of the log line of a denied answer with reason r and
// status: the table's, and at least Warn for a 5xx.
func (r Reason) Level(status int) slog.Level {
	level := reasons[r].level
	if status >= 500 && !reasons[r].selfLogged {
		level = max(level, slog.LevelWarn)
	}
	return level
}
