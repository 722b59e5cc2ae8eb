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
		if over.Status == http.StatusFound || over.Status == http.StatusOK {
			// The browser's way back in is the sign-in, not here: an ended
			// session is a 401 (its cookies cleared all the same).
			d := unauthorized(over.Reason, challengeBearer)
			for _, h := range over.Headers {
				if h.Name == "set-cookie" {
					d.Headers = append(d.Headers, h)
				}
			}
			return d
		}
		return over
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
		cookies, err := s.jar.Save(ctx, sess, r.Host, r.Cookies)
		if errors.Is(err, session.ErrNoSession) {
			return unauthorized("logged_out", challengeBearer)
		}
		for _, c := range cookies {
			d.Headers = append(d.Headers, Header{"set-cookie", c})
		}
	}
	return d
}
