package authz

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// Every denied answer is built in this file: a 401 with its
// www-authenticate challenge for API callers, a 403, a 503 or 504 when a
// part we depend on fails, an HTML page for browsers, and the redirects.
// Callers say what happened; these decide how Envoy answers it.

// retryAfter is what a 503 tells clients to wait, in seconds.
const retryAfter = "5"

// unauthorized is a 401 for an API caller (RFC 6750 §3): challenge is the
// www-authenticate value ("Bearer", or with an error).
func unauthorized(reason, challenge string) *Decision {
	return &Decision{Status: http.StatusUnauthorized, Reason: reason, Headers: []Header{
		{"www-authenticate", challenge},
		{"cache-control", "no-store"},
	}}
}

// Challenges of unauthorized.
const (
	challengeBearer       = "Bearer"
	challengeInvalidToken = `Bearer error="invalid_token"`
)

// insufficientScope is the 403 for an API caller whose token is valid but
// not allowed here (RFC 6750 §3.1).
func insufficientScope(reason string) *Decision {
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
	challenge := `Bearer error="insufficient_user_authentication"`
	if need == "max_age" {
		challenge += `, error_description="A more recent sign-in is required", max_age="` + strconv.FormatInt(rp.maxAge, 10) + `"`
	} else {
		challenge += `, error_description="A sign-in with ` + strings.Join(rp.amr, " or ") + ` is required"`
		if acr := s.conf().StepUpACRValues; acr != "" {
			challenge += `, acr_values="` + acr + `"`
		}
	}
	return unauthorized("insufficient_user_authentication", challenge)
}

// forbidden is the 403 page for a signed-in browser that isn't allowed: it
// says who is signed in, what the page asks for (the rule, never a secret)
// and offers to sign out, so the user can switch accounts or ask for the
// right role. rp is the route's policy (nil: the app's only).
func (s *Server) forbidden(reason, who string, rp *routePolicy) *Decision {
	msg := "You are signed in"
	if who != "" {
		msg += " as " + who
	}
	msg += ", but this page needs " + s.needs(reason, rp) + "."
	return s.errorPage(http.StatusForbidden, reason, page{Title: "Access denied", Message: msg,
		Detail: "Ask the administrator for access, or sign out and sign in with another account.", SignOut: true})
}

// needs says, for a refusal's reason, what the page asks of the user.
func (s *Server) needs(reason string, rp *routePolicy) string {
	cfg := s.conf()
	list := func(items []string) string {
		if len(items) > 5 {
			items = append(items[:5:5], "…")
		}
		return strings.Join(items, ", ")
	}
	switch reason {
	case reasonNotInGroup:
		return "one of these roles: " + list(cfg.AllowedGroups)
	case reasonRouteNotInGrp:
		if rp != nil {
			return "one of these roles: " + list(rp.groups)
		}
	case reasonEmailDomain:
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
	case reasonUnverifiedEm:
		return "an e-mail address your identity provider has verified"
	case reasonWrongOrg:
		if cfg.OrganizationDomain != "" {
			return "an account of the organization " + cfg.OrganizationDomain
		}
		return "an account of the organization this application belongs to"
	case reasonRouteWrongOrg:
		return "an account of one of the organizations this page is for"
	case reasonMissingScope:
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
	status, reason := http.StatusServiceUnavailable, "idp_unavailable"
	switch {
	case errors.Is(err, session.ErrStoreUnavailable):
		reason = "session_store_unavailable"
	case errors.Is(err, context.DeadlineExceeded):
		status, reason = http.StatusGatewayTimeout, "idp_timeout"
	}
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
func (s *Server) clientMisconfigured() *Decision {
	return s.errorPage(http.StatusInternalServerError, "client_auth_failed", page{Title: "Sign-in is misconfigured",
		Message: "The identity provider refused this application's credentials. The administrator has been told in the log."})
}

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
		return unauthorized("invalid_token", challengeInvalidToken)
	}
	// A flood of unknown tokens spent introspection_budget: the token may
	// be good, so the client retries rather than drops it.
	if errors.Is(err, oidcflow.ErrOverBudget) {
		return &Decision{Status: http.StatusServiceUnavailable, Reason: "introspection_budget", Headers: []Header{
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
func (s *Server) errorPage(status int, reason string, p page) *Decision {
	set := s.conf()
	return renderError(set.Pages, set.paths, status, reason, p)
}

func errorPage(status int, reason string, p page) *Decision {
	return renderError(nil, paths{}, status, reason, p)
}

// renderError is an error page with pages' customisation; ps are the
// sign-in and sign-out paths its links go to.
func renderError(pages *Pages, ps paths, status int, reason string, p page) *Decision {
	data := pageData{Title: p.Title, Message: p.Message, Detail: p.Detail, NextURL: p.Next, NextLabel: p.NextLabel}
	if p.Restart {
		data.StartURL = cmp.Or(ps.start, defaultPrefix+"/start")
	}
	if p.SignOut {
		data.SignOutURL = cmp.Or(ps.signOut, defaultPrefix+"/sign_out")
	}
	base := pageHeadersFor(pages)
	headers := make([]Header, len(base), len(base)+2)
	copy(headers, base)
	return &Decision{Status: status, Reason: reason, Headers: headers, Body: render(pages, "error", data)}
}

// redirect is a 302 to location with cookies to set.
func redirect(location, reason string, setCookies []string) *Decision {
	d := &Decision{Status: http.StatusFound, Reason: reason, Headers: make([]Header, 0, 3+len(setCookies))}
	d.Headers = append(d.Headers, Header{"location", location}, Header{"cache-control", "no-store"}, Header{"referrer-policy", "no-referrer"})
	for _, c := range setCookies {
		d.Headers = append(d.Headers, Header{"set-cookie", c})
	}
	return d
}

// withCookies adds set-cookie headers to a denied answer.
func withCookies(d *Decision, setCookies ...string) *Decision {
	for _, c := range setCookies {
		d.Headers = append(d.Headers, Header{"set-cookie", c})
	}
	return d
}

// BadRequest is the 400 page for a CheckRequest ParseRequest refused:
// reason invalid_utf8 or malformed_request for one the codec couldn't
// decode, malformed_request for one without the HTTP attributes.
func BadRequest(err error) *Decision {
	reason := "malformed_request"
	if u, ok := err.(undecodable); ok {
		reason = string(u)
	}
	return errorPage(http.StatusBadRequest, reason, page{Title: "Bad request", Message: "The request could not be understood."})
}

// NoApp is the answer when a server of several apps (the apps list) has
// none for a request: reason "unknown_host" (no app claims the host and
// there is no default app), a 403 page; or "unknown_app" (the route's
// context_extensions name an app that isn't configured), a 500 page, as
// for any other route misconfiguration.
func NoApp(reason string) *Decision {
	if reason == "unknown_app" {
		return errorPage(http.StatusInternalServerError, reason, page{Title: "Configuration error", Message: "This route is misconfigured."})
	}
	return errorPage(http.StatusForbidden, reason, page{Title: "Unknown site", Message: "No application is configured for this host name."})
}

// Clip bounds what a client sent (a host, an IdP's error text) before it
// is logged: at most n bytes, valid UTF-8.
func Clip(s string, n int) string {
	if len(s) > n {
		return strings.ToValidUTF8(s[:n], "") + "…"
	}
	return s
}
