package authz

import (
	"context"
	"errors"
	"net/http"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
)

// userinfo is /oauth2/userinfo: the session's identity as JSON in a local
// reply with status 200. The session passes the same checks as for any
// other route (signed out, logged out, idle, expired, refreshed when due,
// the app's policy); without one it is 401.
func (s *Server) userinfo(ctx context.Context, r *Request) *Decision {
	e, stale, err := s.jar.Load(ctx, r.Cookies)
	if errors.Is(err, session.ErrStoreUnavailable) {
		return s.storeUnavailable()
	}
	if err != nil {
		return s.notSignedIn(r)
	}
	sess, renewed, over := s.current(ctx, r, e, stale)
	if over != nil {
		return sessionEnded(over)
	}
	u := fromSession(sess)
	if reason := s.authorize(u); reason != "" {
		return withSubject(insufficientScope(reason), u.sub)
	}
	d := &Decision{Status: http.StatusOK, Reason: ReasonUserinfo, Body: u.userinfoJSON(), Headers: []Header{
		{"content-type", "application/json"},
		{"cache-control", "no-store"},
	}}
	if renewed {
		if d = s.saveRenewed(ctx, r, sess, d); d.Status != http.StatusOK {
			return sessionEnded(d) // ended on another replica meanwhile
		}
	}
	return d
}

// sessionEnded is userinfo's answer for a session that is over: the 401
// (with its cookies cleared) where Check would send a browser to sign in.
func sessionEnded(over *Decision) *Decision {
	if over.Status != http.StatusFound && over.Status != http.StatusOK {
		return over
	}
	return keepCookies(over.Reason, over)
}
