package authz

import (
	"context"
	"encoding/json"
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
		// 401 for everyone (CONTRACT.md §3), but a browser gets the
		// sign-in page as its body instead of its own blank 401 page, and
		// a program JSON saying why.
		if !s.isAPI(r) {
			d := s.signInPage(r, "/")
			d.Status, d.Reason = http.StatusUnauthorized, "no_session"
			d.Headers = append(append(make([]Header, 0, len(d.Headers)+1), d.Headers...), Header{"www-authenticate", challengeBearer})
			return d
		}
		d := unauthorized("no_session", challengeBearer)
		d.Body = `{"error":"no_session","error_description":"not signed in: no valid session cookie"}`
		d.Headers = append(d.Headers, Header{"content-type", "application/json"})
		return d
	}
	sess, renewed, over := s.current(ctx, r, e, stale)
	if over != nil {
		return sessionEnded(over)
	}
	if reason := s.authorize(sessionUser(sess)); reason != "" {
		return withSubject(insufficientScope(reason), sess.GetSubject())
	}
	groups := sess.GetGroups()
	if groups == nil {
		groups = []string{}
	}
	body, _ := json.Marshal(struct {
		User              string   `json:"user"`
		Email             string   `json:"email"`
		Groups            []string `json:"groups"`
		PreferredUsername string   `json:"preferred_username"`
	}{sess.GetUser(), sess.GetEmail(), groups, sess.GetPreferredUsername()})
	d := &Decision{Status: http.StatusOK, Reason: "userinfo", Body: string(body), Headers: []Header{
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
	d := unauthorized(over.Reason, challengeBearer)
	for _, h := range over.Headers {
		if h.Name == "set-cookie" {
			d.Headers = append(d.Headers, h)
		}
	}
	return d
}
