package authz

import (
	"context"
	"encoding/json"
	"net/http"
)

// userinfo is /oauth2/userinfo: the session's identity as JSON in a local
// reply with status 200, or 401 without a valid session.
func (s *Server) userinfo(ctx context.Context, r *Request) *Decision {
	e, _, err := s.jar.Load(ctx, r.Cookies)
	if err != nil {
		return unauthorized("no_session", challengeBearer)
	}
	sess := e.Session
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
	return &Decision{Status: http.StatusOK, Reason: "userinfo", Body: string(body), Headers: []Header{
		{"content-type", "application/json"},
		{"cache-control", "no-store"},
	}}
}
