package authz

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/checkwire"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// Every denied answer is built in this file: a 401 with its
// www-authenticate challenge for API callers, a 403, a 503 or 504 when a
// part we depend on fails, an HTML page for browsers, the redirects, and
// every set-cookie of a local reply. Callers name the Reason; the reasons
// table (reasons.go) and these decide how Envoy answers it
// (TestAnswersAreBuiltInDeny holds that).

// retryAfter is what a 503 tells clients to wait, in seconds.
const retryAfter = "5"

// unauthorized is a 401 for an API caller (RFC 6750 §3) with the reason's
// www-authenticate challenge from the table ("Bearer" when it has none).
func unauthorized(reason Reason) *Decision {
	return challenged(reason, cmp.Or(reasons[reason].challenge, challengeBearer))
}

// challenged is a 401 with challenge as its www-authenticate value.
func challenged(reason Reason, challenge string) *Decision {
	return &Decision{Status: http.StatusUnauthorized, Reason: reason, Headers: []Header{
		{"www-authenticate", challenge},
		{"cache-control", "no-store"},
	}}
}

// wrongAudience is the 401 for a valid token that lacks the audience the
// route wants (the route key audience): invalid_token, as for any token
// not meant for this resource (RFC 6750 §3.1, RFC 9068 §4), saying which
// audience a token needs (RFC 8707: the client can ask for one).
func wrongAudience(want string) *Decision {
	desc := "This route needs a token for another audience"
	if quotable(want) {
		desc = "This route needs a token for the audience " + want
	}
	return challenged(ReasonInvalidToken, challengeInvalidToken+`, error_description="`+desc+`"`)
}

// quotable reports whether v may stand in an error_description (RFC 6750
// §3: %x20-21 / %x23-5B / %x5D-7E, so no quote or backslash).
func quotable(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// withResourceMetadata names the app's protected-resource metadata in the
// Bearer challenge of d, a 401 for r (RFC 9728 §5.1), so that a client
// without a token learns where to get one: every 401 of an app that takes
// bearer tokens (Decide), except on routes that refuse them (auth:
// session-only).
func (s *Server) withResourceMetadata(r *Request, d *Decision) {
	i := slices.IndexFunc(d.Headers, func(h Header) bool {
		return h.Name == "www-authenticate" && strings.HasPrefix(h.Value, challengeBearer)
	})
	if i < 0 || strings.TrimSpace(r.ContextExtensions[extAuth]) == "session-only" {
		return
	}
	u, ok := resourceMetadataURL(s.conf(), r)
	if !ok {
		return
	}
	v := d.Headers[i].Value
	if v == challengeBearer {
		v += " "
	} else {
		v += ", "
	}
	// A copy: d's headers are its own today, but a shared slice must not
	// change under another Check.
	d.Headers = slices.Clone(d.Headers)
	d.Headers[i].Value = v + `resource_metadata="` + u + `"`
}

// deny is reason's answer as the table has it: its status and its page.
func (s *Server) deny(reason Reason) *Decision {
	spec := reasons[reason]
	return s.errorPage(spec.status, reason, spec.page)
}

// denyPage is reason's answer with its status and a page the caller fills
// in (who is signed in, what the page needs): the table's title and
// message unless p has its own.
func (s *Server) denyPage(reason Reason, p page) *Decision {
	spec := reasons[reason]
	p.Title, p.Message = cmp.Or(p.Title, spec.page.Title), cmp.Or(p.Message, spec.page.Message)
	return s.errorPage(spec.status, reason, p)
}

// jsonError is reason's answer for a program: its status, and the
// reason and a description as JSON (RFC 6749 §5.2's shape).
func jsonError(reason Reason, description string, headers ...Header) *Decision {
	return jsonErrorWith(reason, description, nil, headers...)
}

// jsonErrorWith is jsonError with more string fields in the body (what it
// names: the rule, the route key); empty ones are left out.
func jsonErrorWith(reason Reason, description string, fields map[string]string, headers ...Header) *Decision {
	obj := map[string]string{"error": string(reason), "error_description": description}
	for k, v := range fields {
		if v != "" {
			obj[k] = v
		}
	}
	body, _ := json.Marshal(obj) // keys in sorted order
	return &Decision{Status: reasons[reason].status, Reason: reason, Body: string(body),
		Headers: append(headers, Header{"content-type", "application/json"}, Header{"cache-control", "no-store"})}
}

// insufficientScope is the 403 for an API caller whose token is valid but
// not allowed here (RFC 6750 §3.1).
func insufficientScope(reason Reason) *Decision {
	return &Decision{Status: http.StatusForbidden, Reason: reason, Headers: []Header{
		{"www-authenticate", `Bearer error="insufficient_scope"`},
		{"cache-control", "no-store"},
	}}
}

// insufficientAuthentication is RFC 9470's 401 for an API caller whose
// sign-in is too old (need "max_age") or not strong enough ("amr") for
// the route: the client can get a token from a fresh or stronger sign-in
// and retry.
func (s *Server) insufficientAuthentication(need string, rp routePolicy) *Decision {
	challenge := reasons[ReasonInsufficientAuthn].challenge
	if need == "max_age" {
		challenge += `, error_description="A more recent sign-in is required", max_age="` + strconv.FormatInt(rp.maxAge, 10) + `"`
	} else {
		challenge += `, error_description="A sign-in with ` + strings.Join(rp.amr, " or ") + ` is required"`
		if acr := s.conf().StepUpACRValues; acr != "" {
			challenge += `, acr_values="` + acr + `"`
		}
	}
	return challenged(ReasonInsufficientAuthn, challenge)
}

// forbidden is the 403 page for a signed-in browser that isn't allowed: it
// says who is signed in, what the page asks for (the rule, never a secret)
// and offers to sign out, so the user can switch accounts or ask for the
// right role. rp is the route's policy (nil: the app's only).
func (s *Server) forbidden(reason Reason, who string, rp *routePolicy) *Decision {
	msg := "You are signed in"
	if who != "" {
		msg += " as " + who
	}
	msg += ", but this page needs " + s.needs(reason, rp) + "."
	return s.denyPage(reason, page{Title: "Access denied", Message: msg,
		Detail: "Ask the administrator for access, or sign out and sign in with another account.", SignOut: true})
}

// needs says, for a refusal's reason, what the page asks of the user.
func (s *Server) needs(reason Reason, rp *routePolicy) string {
	cfg := s.conf()
	list := func(items []string) string {
		if len(items) > 5 {
			items = append(items[:5:5], "…")
		}
		return strings.Join(items, ", ")
	}
	switch reason {
	case ReasonNotInGroup:
		return "one of these roles: " + list(cfg.AllowedGroups)
	case ReasonRouteNotInGroup:
		if rp != nil {
			return "one of these roles: " + list(rp.groups)
		}
	case ReasonEmailDomain:
		var domains []string
		for _, d := range cfg.EmailDomains {
			if d != "*" {
				domains = append(domains, strings.TrimPrefix(d, "."))
			}
		}
		if len(domains) > 0 {
			return "an e-mail address at " + list(domains)
		}
		return "a valid e-mail address"
	case ReasonEmailUnverified:
		return "an e-mail address your identity provider has verified"
	case ReasonWrongOrg:
		if cfg.OrganizationDomain != "" {
			return "an account of the organization " + cfg.OrganizationDomain
		}
		return "an account of the organization this application belongs to"
	case ReasonRouteWrongOrg:
		return "an account of one of the organizations this page is for"
	case ReasonMissingScope:
		if rp != nil {
			return "the permissions (scopes) " + list(rp.scopes)
		}
	}
	return "a permission your account doesn't have"
}

// unavailable answers a failure of the IdP or the session store: 504 when
// it was slower than its bound (idp_timeout or the Check's deadline), else
// 503; both with retry-after. Browsers get a page when p is set.
func (s *Server) unavailable(err error, p *page) *Decision {
	reason := ReasonIdPUnavailable
	switch {
	case errors.Is(err, session.ErrStoreUnavailable):
		reason = ReasonStoreUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		reason = ReasonIdPTimeout
	}
	status := reasons[reason].status
	var d *Decision
	if p != nil {
		d = s.errorPage(status, reason, *p)
	} else {
		d = &Decision{Status: status, Reason: reason, Headers: make([]Header, 0, 2)}
		d.Headers = append(d.Headers, Header{"cache-control", "no-store"})
	}
	// Both are worth a retry once the part is back.
	d.Headers = append(d.Headers, Header{"retry-after", retryAfter})
	return d
}

// clientMisconfigured is the 500 page when the IdP refuses our client
// (client_auth_method, client_id, secret or key): nothing the user can do,
// so no link to start again.
func (s *Server) clientMisconfigured() *Decision { return s.deny(ReasonClientAuthFailed) }

// signInUnavailable is the page while the IdP can't be reached.
var signInUnavailable = &page{Title: "Sign-in unavailable", Message: "The identity provider can't be reached right now. Try again in a moment."}

// storeUnavailable answers when sessions can't be read or written: the
// user's session may be fine, so no login redirect and no cleared cookie.
func (s *Server) storeUnavailable() *Decision {
	return s.unavailable(session.ErrStoreUnavailable, nil)
}

// bearerFailure maps Authenticate's error: an invalid token is 401, the
// IdP failing 503/504.
func (s *Server) bearerFailure(err error) *Decision {
	if errors.Is(err, oidcflow.ErrInvalidToken) {
		return unauthorized(ReasonInvalidToken)
	}
	// A flood of unknown tokens spent introspection_budget: the token may
	// be good, so the client retries rather than drops it.
	if errors.Is(err, oidcflow.ErrOverBudget) {
		return &Decision{Status: reasons[ReasonIntrospectionQuota].status, Reason: ReasonIntrospectionQuota, Headers: []Header{
			{"retry-after", "1"}, {"cache-control", "no-store"},
		}}
	}
	return s.unavailable(err, nil)
}

// page is what an HTML answer says; everything is escaped.
type page struct {
	Title, Message, Detail string
	// Restart links to /oauth2/start ("Sign in again").
	Restart bool
	// SignOut links to /oauth2/sign_out ("Sign out or switch account").
	SignOut bool
	// Next is a way forward (a URL) and its label.
	Next, NextLabel string
}

// errorPage is a readable denied answer for browsers. Its headers are its
// own: callers may append (set-cookie, retry-after).
func (s *Server) errorPage(status int, reason Reason, p page) *Decision {
	set := s.conf()
	return renderError(set.Pages, set.paths, status, reason, p)
}

func errorPage(status int, reason Reason, p page) *Decision {
	return renderError(nil, paths{}, status, reason, p)
}

// renderError is an error page with pages' customisation; ps are the
// sign-in and sign-out paths its links go to.
func renderError(pages *Pages, ps paths, status int, reason Reason, p page) *Decision {
	data := pageData{Title: p.Title, Message: p.Message, Detail: p.Detail, NextURL: p.Next, NextLabel: p.NextLabel}
	if p.Restart {
		data.StartURL = cmp.Or(ps.start, DefaultProxyPrefix+"/start")
	}
	if p.SignOut {
		data.SignOutURL = cmp.Or(ps.signOut, DefaultProxyPrefix+"/sign_out")
	}
	base := pageHeadersFor(pages)
	headers := make([]Header, len(base), len(base)+2)
	copy(headers, base)
	return &Decision{Status: status, Reason: reason, Headers: headers, Body: render(pages, "error", data)}
}

// redirect is a 302 to location with cookies to set.
func redirect(location string, reason Reason, setCookies []string) *Decision {
	d := &Decision{Status: http.StatusFound, Reason: reason, Headers: make([]Header, 0, 3+len(setCookies))}
	d.Headers = append(d.Headers, Header{"location", location}, Header{"cache-control", "no-store"}, Header{"referrer-policy", "no-referrer"})
	for _, c := range setCookies {
		d.Headers = append(d.Headers, Header{"set-cookie", c})
	}
	return d
}

// withCookies adds set-cookie headers to a denied answer.
func withCookies(d *Decision, setCookies ...string) *Decision {
	d.Headers = appendCookies(d.Headers, setCookies)
	return d
}

// withResponseCookies adds set-cookie headers to the response an allowed
// request eventually gets.
func withResponseCookies(d *Decision, setCookies ...string) *Decision {
	d.ResponseHeaders = appendCookies(d.ResponseHeaders, setCookies)
	return d
}

func appendCookies(headers []Header, setCookies []string) []Header {
	for _, c := range setCookies {
		headers = append(headers, Header{"set-cookie", c})
	}
	return headers
}

// keepCookies is a 401 for reason with the set-cookie headers of over (an
// ended session's answer, which clears the cookies).
func keepCookies(reason Reason, over *Decision) *Decision {
	d := unauthorized(reason)
	for _, h := range over.Headers {
		if h.Name == "set-cookie" {
			d.Headers = append(d.Headers, h)
		}
	}
	return d
}

// BadRequest is the 400 page for a CheckRequest ParseRequest refused:
// reason invalid_utf8 or malformed_request for one the codec couldn't
// decode, malformed_request for one without the HTTP attributes.
func BadRequest(err error) *Decision {
	reason := ReasonMalformedRequest
	if u, ok := err.(undecodable); ok && checkwire.Cause(u) == checkwire.CauseInvalidUTF8 {
		reason = ReasonInvalidUTF8
	}
	return errorPage(reasons[reason].status, reason, reasons[reason].page)
}

// NoApp is the answer when a server of several apps (the apps list) has
// none for a request: ReasonUnknownHost (no app claims the host and there
// is no default app), a 403 page; or ReasonUnknownApp (the route's
// context_extensions name an app that isn't configured), a 500 page, as
// for any other route misconfiguration.
func NoApp(reason Reason) *Decision {
	return errorPage(reasons[reason].status, reason, reasons[reason].page)
}

// Clip bounds what a client sent (a host, an IdP's error text) before it
// is logged: at most n bytes, valid UTF-8.
func Clip(s string, n int) string {
	if len(s) > n {
		return strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}

// idpErrorPage is our page for an OAuth error code (RFC 6749 §4.1.2.1,
// OpenID Connect Core §3.1.2.6); the code is shown only when it is one.
func (s *Server) idpErrorPage(code string) *Decision {
	p := reasons[ReasonIdPError].page
	switch code {
	case "access_denied":
		p.Message = "The sign-in was cancelled or refused at the identity provider."
	case "login_required", "interaction_required", "consent_required", "account_selection_required":
		p.Message = "The identity provider needs you to sign in again."
	case "temporarily_unavailable", "server_error":
		p.Message = "The identity provider had a problem. Try again in a moment."
	}
	if len(code) <= 64 && !strings.ContainsFunc(code, func(c rune) bool { return (c < 'a' || c > 'z') && c != '_' }) {
		p.Detail = "Error code: " + code
	}
	return s.denyPage(ReasonIdPError, p)
}

// stepUpFailed is the 403 page of a step-up whose new sign-in still lacks
// a method in want: the session it made (with its cookies) serves the
// other routes; this one offers to try again at next.
func (s *Server) stepUpFailed(want []string, next string, cookies []string) *Decision {
	d := s.denyPage(ReasonStepUpFailed, page{
		Message: "This page needs a sign-in with " + strings.Join(want, " or ") + " (for example a second factor). Your sign-in did not use it.",
		Detail:  "Set up a second factor at your identity provider, then try again. You stay signed in for the other pages.",
		Next:    next, NextLabel: "Try again", SignOut: true})
	return withCookies(d, cookies...)
}

// stepUpPage says why a signed-in user must sign in again (need: "max_age"
// or "amr") before it sends them: a 401 page with the prepared sign-in at
// authURL (its state cookies set) behind a button.
func (s *Server) stepUpPage(need string, rp routePolicy, authURL string, cookies []string) *Decision {
	p := page{Next: authURL, NextLabel: "Continue to sign in",
		Message: "This page needs a sign-in with " + strings.Join(rp.amr, " or ") + " (a second factor, such as a one-time code).",
		Detail:  "Your identity provider will ask you to sign in again. If you have no second factor yet, set one up there first."}
	if need == "max_age" {
		p.Message = "This page needs a recent sign-in (within the last " + ageText(rp.maxAge) + ")."
		p.Detail = "Your identity provider will ask you to sign in again; then you come straight back here."
	}
	return withCookies(s.denyPage(ReasonStepUpRedirect, p), cookies...)
}

// ageText says a max_age in words.
func ageText(seconds int64) string {
	switch {
	case seconds < 120:
		return strconv.FormatInt(seconds, 10) + " seconds"
	case seconds < 7200:
		return strconv.FormatInt(seconds/60, 10) + " minutes"
	}
	return strconv.FormatInt(seconds/3600, 10) + " hours"
}

// csrfRefused is the 403 for a cross-site state-changing request: the
// table's page for a browser, JSON for a program.
func (s *Server) csrfRefused(r *Request) *Decision {
	if !strings.Contains(r.Headers["accept"], "text/html") {
		return jsonError(ReasonCSRFOrigin, "a request that changes state must come from this site (Origin)")
	}
	return s.deny(ReasonCSRFOrigin)
}

// notSignedIn is /oauth2/userinfo's 401 without a session: a browser gets
// the sign-in page as its body instead of its own blank 401 page, and a
// program JSON saying why (CONTRACT.md §3).
func (s *Server) notSignedIn(r *Request) *Decision {
	if !s.isAPI(r) {
		d := s.signInPage(r, "/")
		d.Status, d.Reason = reasons[ReasonNoSession].status, ReasonNoSession
		d.Headers = append(append(make([]Header, 0, len(d.Headers)+1), d.Headers...), Header{"www-authenticate", challengeBearer})
		return d
	}
	return jsonError(ReasonNoSession, "not signed in: no valid session cookie", Header{"www-authenticate", challengeBearer})
}

// ended is the answer for a session that is over (reason): API callers
// get 401, browsers the login redirect (or sign-in page); both with the
// session cookies cleared (clear).
func (s *Server) ended(r *Request, reason Reason, clear []string) *Decision {
	d := s.unauthenticated(r)
	d.Reason = reason
	headers := make([]Header, 0, len(d.Headers)+len(clear))
	d.Headers = appendCookies(append(headers, d.Headers...), clear)
	if d.Status == 0 {
		d.Status = http.StatusUnauthorized
	}
	return d
}

// signOutUnavailable answers a sign-out the session store couldn't carry
// out: 503 with retry-after, so it doesn't look done; the browser's
// cookies are cleared all the same (clear: this browser is signed out; the
// stored session or a copy of the cookie lives until the user tries again
// or it expires).
func (s *Server) signOutUnavailable(clear []string) *Decision {
	d := s.unavailable(session.ErrStoreUnavailable, &page{Title: "Sign-out not completed",
		Message: "Your session could not be ended everywhere right now. Try signing out again in a moment."})
	return withCookies(d, clear...)
}

// ruleRefused is the answer when a route's rules (v, rulecheck.go) don't
// let u in: the 403 page naming the rule for a browser, a 403 JSON body
// for a program (with RFC 6750's challenge for a bearer token); a rule
// the configuration doesn't define is a 500 naming it. Never an allow.
func (s *Server) ruleRefused(r *Request, v ruleVerdict, u user, via string) *Decision {
	var d *Decision
	var why string
	switch v.reason {
	case ReasonUnknownRule:
		s.logger.Error("a route names a rule that isn't defined; denying (define it under [rules] or fix the route's allow_if/deny_if)",
			"request_id", r.ID, "rule", v.rule)
		why = "this route names the rule " + v.rule + ", which is not defined"
		if !s.isAPI(r) {
			d = s.denyPage(ReasonUnknownRule, page{Message: "This route names the rule " + v.rule + ", which is not defined. The administrator has been told in the log."})
		}
	case ReasonRuleError:
		s.logger.Error("a rule could not be evaluated; denying", "request_id", r.ID, "rule", v.rule, "error", v.err.Error())
		why = "the rule " + v.rule + " could not be evaluated"
	default:
		why = "the rule " + v.rule + " does not allow this request"
	}
	if d == nil && !s.isAPI(r) {
		msg := "You are signed in"
		if who := u.displayName(); who != "" {
			msg += " as " + who
		}
		d = s.denyPage(v.reason, page{Title: "Access denied", Message: msg + ", but " + why + ".",
			Detail: "Ask the administrator for access, or sign out and sign in with another account.", SignOut: true})
	}
	if d == nil {
		var challenge []Header
		if via == viaBearer && v.reason != ReasonUnknownRule {
			challenge = []Header{{"www-authenticate", `Bearer error="insufficient_scope"`}}
		}
		d = jsonErrorWith(v.reason, why, map[string]string{"rule": v.rule}, challenge...)
	}
	d.Rule = v.rule
	return withSubject(d, u.sub)
}

// stepUpPlanned is what check-policy reports where a browser would be
// sent back to the IdP for a fresher or stronger sign-in (need: "max_age"
// or "amr"): the step-up page's answer without its login state.
func stepUpPlanned(need string) *Decision {
	return &Decision{Status: reasons[ReasonStepUpRedirect].status, Reason: ReasonStepUpRedirect, Headers: []Header{{"x-step-up", need}}}
}

// loginPlanned is what check-policy reports for a browser without a
// session: the login redirect (or the sign-in page) without its state.
func (s *Server) loginPlanned() *Decision {
	if !s.conf().SkipProviderButton {
		return &Decision{Status: http.StatusOK, Reason: ReasonSignInPage}
	}
	return &Decision{Status: http.StatusFound, Reason: ReasonLoginRedirect}
}

// tokenExchangeFailed is the 502 when the IdP won't exchange the user's
// token for the upstream's (upstreamtoken.go): the table's page for a
// browser, JSON naming the cause (the IdP's OAuth error code) for a
// program (api). The user's own token is never sent instead.
func (s *Server) tokenExchangeFailed(api bool, cause string) *Decision {
	if api {
		return jsonError(ReasonTokenExchange, "the identity provider would not issue a token for this service: "+cause)
	}
	return s.deny(ReasonTokenExchange)
}

// upstreamTokenUnavailable answers when the IdP can't be reached, or not
// in time, for the upstream's token: 503 or 504 with retry-after, with a
// page for a browser (api false).
func (s *Server) upstreamTokenUnavailable(err error, api bool) *Decision {
	if api {
		return s.unavailable(err, nil)
	}
	return s.unavailable(err, &page{Title: "Service unavailable",
		Message: "The identity provider can't be reached right now, and this service needs it. Try again in a moment."})
}

// routeRefused is the answer for a route whose context_extensions we
// can't use (e.problem): an unknown key (unknown_route_key) or a value we
// can't read (bad_route_config), 500 naming the key, and the key it most
// likely means; logged at most once a minute per route setting.
func (s *Server) routeRefused(r *Request, e *routeEntry) *Decision {
	p := e.problem
	reason := ReasonBadRouteConfig
	if p.Unknown {
		reason = ReasonUnknownRouteKey
	}
	if e.logNow(s.now()) {
		s.logger.Error("the route's context_extensions can't be used; denying every request of the route (fix the Envoy route; zitadel-ext-authz check-envoy finds these)",
			"request_id", r.ID, "reason", reason, "key", Clip(p.Key, 64), "problem", Clip(p.String(), 200))
	}
	if s.isAPI(r) {
		return jsonErrorWith(reason, "this route's configuration has a problem: "+p.String(), map[string]string{"key": p.Key, "did_you_mean": p.Nearest})
	}
	return s.denyPage(reason, page{Message: "This route's configuration has a problem: " + p.String() + ". The administrator has been told in the log."})
}
