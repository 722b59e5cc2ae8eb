package authz

import (
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/rules"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
)

// DryRun is a user check-policy asks about: would Check let them make a
// request? Without an identity, the request comes from no one.
type DryRun struct {
	// Identity is the user as a login or a bearer token gives it
	// (oidcflow.Provider.IdentityFromClaims); nil: no session, no token.
	Identity *oidcflow.Identity
	// Bearer: the user comes with a bearer token (Token, for the token
	// headers), else with a session.
	Bearer bool
	Token  string
	// Scopes are the token's (or the session's) granted scopes.
	Scopes []string
}

// Endpoint says which endpoint of ours is at path ("the login start",
// "the callback", …), "" when path is none: Check answers those itself,
// whoever asks.
func (s *Server) Endpoint(path string) string {
	set := s.conf()
	switch path {
	case set.callbackPath:
		return "the callback"
	case set.paths.start:
		return "the login start"
	case set.paths.signIn:
		return "the sign-in page"
	case set.paths.signOut:
		return "the sign-out"
	case set.paths.userinfo:
		return "the user info"
	case set.paths.jwks:
		return "the identity assertion keys (JWKS)"
	}
	if s.isResourceMetadata(set, path) {
		return "the protected-resource metadata (RFC 9728)"
	}
	return ""
}

// DecideAs decides r for dr's user as Decide would for a valid session or
// token of theirs, by the same steps (skip_auth_routes, preflight,
// trusted_ips, the route's keys, the app's policy, the rules, step-up),
// without the IdP, a session store or a cookie; trace says what each rule
// that ran read and returned. A login or step-up redirect is reported
// without its state (it would carry a fresh one). r must not be one of our
// endpoints (Endpoint).
func (s *Server) DecideAs(r *Request, dr DryRun) (d *Decision, trace []rules.Explanation) {
	set := s.conf()
	d, rp := s.beforeUser(set, r)
	if d != nil {
		return d, nil
	}
	trace = []rules.Explanation{}
	switch {
	case dr.Identity != nil && dr.Bearer && s.bearerAuth != nil && rp.auth != "session-only":
		u := fromClaims(*dr.Identity)
		if d := s.judge(r, nil, u, viaBearer, dr.Scopes, &rp, &trace); d != nil {
			return d, trace
		}
		b := &oidcflow.Bearer{Identity: *dr.Identity, Scopes: dr.Scopes, Via: "jwt"}
		return s.allowBearer(r, u, b, dr.Token), trace
	case rp.auth == "bearer-only":
		return unauthorized(ReasonNoBearer), nil
	case dr.Identity == nil || dr.Bearer:
		// No session (a bearer token where bearer tokens aren't taken
		// counts as none: the cookie decides).
		if s.isAPI(r) {
			return unauthorized(ReasonNoSession), nil
		}
		return s.loginPlanned(), nil
	case unsafeMethod(r.Method) && !rp.csrfOff && !s.sameOrigin(r):
		return withSubject(s.csrfRefused(r), dr.Identity.Subject), nil
	}
	u := fromClaims(*dr.Identity)
	if d := s.judge(r, nil, u, viaSession, dr.Scopes, &rp, &trace); d != nil {
		return d, trace
	}
	sess := &sessionpb.Session{Scopes: dr.Scopes}
	u.writeTo(sess)
	return withSubject(s.allowSession(r, nil, sess), u.sub), trace
}
