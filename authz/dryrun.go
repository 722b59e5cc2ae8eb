package authz

import (
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
	// Scopes are the token's (or the session's) granted scopes; Audiences
	// the token's aud.
	Scopes, Audiences []string
}

// endpointNames are our endpoints as check-policy names them.
var endpointNames = map[endpoint]string{
	epCallback: "the callback", epStart: "the login start", epSignIn: "the sign-in page", epSignOut: "the sign-out",
	epUserinfo: "the user info", epJWKS: "the identity assertion keys (JWKS)", epResourceMetadata: "the protected-resource metadata (RFC 9728)",
}

// Endpoint says which endpoint of ours r asks for ("the login start",
// "the callback", …), "" when none: Check answers those itself, whoever
// asks, as Decide picks them.
func (s *Server) Endpoint(r *Request) string {
	set := s.conf()
	ep := s.endpointAt(set, r)
	if ep == epResourceMetadata && s.resourceMetadata(set, r) == nil {
		return ""
	}
	return endpointNames[ep]
}

// DecideAs decides r for dr's user as Decide would for a valid session or
// token of theirs, by the same steps (skip_auth_routes, preflight,
// trusted_ips, the route's keys, the token's audience, the app's policy,
// the rules, step-up, the 401's resource metadata), without the IdP, a
// session store or a cookie; trace says what each rule that ran read and
// returned. A login or step-up redirect is reported without its state (it
// would carry a fresh one). r must not be one of our endpoints (Endpoint).
func (s *Server) DecideAs(r *Request, dr DryRun) (d *Decision, trace []RuleRun) {
	trace = []RuleRun{}
	return s.challengeNamesResource(r, s.decideAs(r, dr, &trace)), trace
}

func (s *Server) decideAs(r *Request, dr DryRun, trace *[]RuleRun) *Decision {
	set := s.conf()
	d, rp := s.beforeUser(set, r)
	if d != nil {
		return d
	}
	switch {
	case dr.Identity != nil && dr.Bearer && s.bearerAuth != nil && rp.auth != "session-only":
		b := &oidcflow.Bearer{Identity: *dr.Identity, Scopes: dr.Scopes, Audiences: dr.Audiences, Via: "jwt"}
		u := fromClaims(b.Identity)
		if d := s.judgeBearer(r, b, u, &rp, trace); d != nil {
			return d
		}
		return s.allowBearer(r, u, b, dr.Token)
	case rp.auth == "bearer-only":
		return unauthorized(ReasonNoBearer)
	case dr.Identity == nil || dr.Bearer:
		// No session (a bearer token where bearer tokens aren't taken
		// counts as none: the cookie decides).
		if s.isAPI(r) {
			return unauthorized(ReasonNoSession)
		}
		return s.loginPlanned()
	case unsafeMethod(r.Method) && !rp.csrfOff && !s.sameOrigin(r):
		return withSubject(s.csrfRefused(r), dr.Identity.Subject)
	}
	// The user as a live Check reads them: from the session a login
	// would store (which keeps role grants compactly).
	sess := &sessionpb.Session{Scopes: dr.Scopes}
	fromClaims(*dr.Identity).writeTo(sess)
	u := fromSession(sess)
	if d := s.judge(r, nil, u, viaSession, dr.Scopes, &rp, trace); d != nil {
		return d
	}
	return withSubject(s.allowSession(r, nil, sess), u.sub)
}
