package authz

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/internal/deadline"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
)

// callback finishes a login: it checks the state cookie, exchanges the code,
// verifies the ID token, applies the policy, and redirects to the original
// URL with the session cookie. Any failure is a Denied answer without a
// session.
func (s *Server) callback(ctx context.Context, r *Request) *Decision {
	q := r.Query()
	state := q.Get("state")
	// RFC 9207: a response that names another issuer, or none where our IdP
	// promises to name itself, may come from another IdP (mix-up attack).
	iss, hasIss := q["iss"]
	if err := s.idp.CheckResponseIssuer(firstValue(iss), hasIss); err != nil {
		s.logger.Warn("authorization response refused", "request_id", r.ID, "reason", "issuer_mismatch", "error", err.Error())
		d := s.errorPage(http.StatusBadRequest, "issuer_mismatch", page{Title: "Sign-in failed", Message: "The sign-in response did not come from the expected identity provider.", Restart: true})
		return s.clearingState(d, state, r)
	}
	// The IdP reported an error (the user cancelled, or the client is
	// misconfigured).
	// Anyone can send a browser here with any error text: the page says
	// what we know the error code means, never the unauthenticated
	// error_description (it would put an attacker's words on our page);
	// the log keeps both, clipped.
	if e := q.Get("error"); e != "" {
		s.logger.Info("the identity provider returned an error", "request_id", r.ID, "reason", "idp_error",
			"error", Clip(e, 64), "error_description", Clip(q.Get("error_description"), 256))
		d := s.errorPage(http.StatusForbidden, "idp_error", idpErrorPage(e))
		return s.clearingState(d, state, r)
	}
	// No matching state cookie: forged, replayed, expired or from another
	// browser.
	ls, err := s.jar.ReadState(state, r.Cookies)
	if err != nil {
		return s.errorPage(http.StatusForbidden, "bad_state", page{Title: "Sign-in expired", Message: "This sign-in link is no longer valid or was opened in another browser.", Restart: true})
	}
	code := q.Get("code")
	if code == "" {
		return s.errorPage(http.StatusBadRequest, "missing_code", page{Title: "Sign-in failed", Message: "The identity provider sent no authorization code."})
	}
	ctx, cancel := s.idpContext(ctx)
	defer cancel()
	tokens, err := s.idp.Exchange(ctx, code, ls.GetRedirectUri(), oidcflow.Login{State: ls.GetState(), Nonce: ls.GetNonce(), CodeVerifier: ls.GetCodeVerifier()})
	switch {
	case errors.Is(err, oidcflow.ErrIdPUnavailable):
		s.logger.Warn("code exchange failed", "request_id", r.ID, "reason", "idp_unavailable", "error", err.Error())
		return s.unavailable(err, signInUnavailable)
	case errors.Is(err, oidcflow.ErrClientAuth):
		// Our configuration, not the user: no "start again" (it would fail
		// the same way); the Provider logged what to fix.
		return s.clientMisconfigured()
	case err != nil:
		s.logger.Warn("code exchange failed", "request_id", r.ID, "reason", "login_rejected", "error", err.Error())
		return s.errorPage(http.StatusForbidden, "login_rejected", page{Title: "Sign-in failed", Message: "The sign-in could not be completed. Start again."})
	}
	id := tokens.Identity
	if reason := s.authorize(identityUser(id)); reason != "" {
		var d *Decision
		if reason == reasonUnverifiedEm {
			d = s.errorPage(http.StatusForbidden, reason, page{Title: "E-mail address not verified",
				Message: "Your identity provider says your e-mail address is not verified. Verify it there (look for its confirmation e-mail), then sign in again.", Restart: true})
		} else {
			d = s.forbidden(reason, displayName(id.PreferredUsername, id.Email, id.User), nil)
		}
		return s.clearingState(withSubject(d, id.Subject), state, r)
	}
	now := s.now()
	// A step-up asked for a sign-in within max_age: an ID token without
	// auth_time, or with an older one, is not that sign-in.
	if ma := ls.GetMaxAge(); ma > 0 && (id.AuthTime.IsZero() || now.Sub(id.AuthTime) > time.Duration(ma)*time.Second+authTimeSkew) {
		s.logger.Warn("login refused: not a fresh sign-in", "request_id", r.ID, "reason", "stale_auth_time", "sub", id.Subject, "max_age", ma)
		d := s.errorPage(http.StatusForbidden, "stale_auth_time", page{Title: "Sign-in not fresh", Message: "This page needs a fresh sign-in, and the identity provider did not ask for one.", Restart: true})
		return s.clearingState(withSubject(d, id.Subject), state, r)
	}
	sess := &sessionpb.Session{
		Subject:           id.Subject,
		User:              id.User,
		Email:             id.Email,
		EmailVerified:     id.EmailVerified,
		PreferredUsername: id.PreferredUsername,
		Groups:            id.Groups,
		Scopes:            tokens.Scopes,
		AccessToken:       tokens.AccessToken,
		IdToken:           tokens.IDToken,
		RefreshToken:      tokens.RefreshToken,
		CreatedAt:         now.Unix(),
		CreatedAtMs:       now.UnixMilli(),
		LastSeenAt:        now.Unix(),
		LastSeenAtMs:      now.UnixMilli(),
		LoginId:           newLoginID(),
		ExpiresAt:         now.Add(s.jar.Lifetime()).Unix(),
		SessionId:         tokens.SessionID,
		OrgId:             id.OrgID,
		OrgDomain:         id.OrgDomain,

		Amr: id.AMR,
	}
	if !id.AuthTime.IsZero() {
		sess.AuthTime = id.AuthTime.Unix()
	}
	sess.RoleGrants, sess.RoleOrg = compactGrants(id.RoleGrants)
	if !tokens.Expiry.IsZero() {
		sess.AccessTokenExpiresAt = tokens.Expiry.Unix()
	}
	if s.conf().SessionCookieMinimal {
		// The identity only: the session lasts its cookie_expire.
		sess.AccessToken, sess.IdToken, sess.RefreshToken, sess.AccessTokenExpiresAt = "", "", "", 0
	}
	cookies, err := s.jar.Save(ctx, sess, r.Host, r.Cookies)
	if errors.Is(err, session.ErrStoreUnavailable) {
		s.logger.Warn("session not stored", "request_id", r.ID, "reason", "session_store_unavailable", "error", err.Error())
		return s.storeUnavailable()
	}
	if errors.Is(err, session.ErrTooLarge) {
		s.logger.Error("session not stored", "request_id", r.ID, "reason", "session_too_large", "sub", id.Subject,
			"error", err.Error(), "fix", `set session_store_type = "redis" (a small ticket cookie), or ask the IdP for fewer claims (scope, roles)`)
		return s.errorPage(http.StatusInternalServerError, "session_too_large", page{Title: "Sign-in failed",
			Message: "Your sign-in is too large to keep in browser cookies (too many roles or claims). Please tell the administrator: the server log says how to fix it."})
	}
	if err != nil {
		return s.errorPage(http.StatusInternalServerError, "session_cookie", page{Title: "Sign-in failed", Message: "The session could not be stored."})
	}
	cookies = append(cookies, s.jar.ClearState(state, r.Host))
	s.logger.Info("login completed", "request_id", r.ID, "sub", id.Subject)
	// A step-up for an authentication method the new sign-in still lacks:
	// the session is made (it serves the other routes), and the page says
	// why this one stays closed instead of sending the user round again.
	if want := ls.GetRequiredAmr(); len(want) > 0 && !slices.ContainsFunc(id.AMR, func(m string) bool { return slices.Contains(want, m) }) {
		s.logger.Info("step-up not met: the sign-in lacks the required method", "request_id", r.ID, "reason", "step_up_failed", "sub", id.Subject, "amr", id.AMR, "required_amr", want)
		d := s.errorPage(http.StatusForbidden, "step_up_failed", page{Title: "Stronger sign-in needed",
			Message: "This page needs a sign-in with " + strings.Join(want, " or ") + " (for example a second factor). Your sign-in did not use it.",
			Detail:  "Set up a second factor at your identity provider, then try again. You stay signed in for the other pages.",
			Next:    ls.GetReturnUrl(), NextLabel: "Try again", SignOut: true})
		return withSubject(withCookies(d, cookies...), id.Subject)
	}
	return withSubject(redirect(ls.GetReturnUrl(), "login_completed", cookies), id.Subject)
}

// idpErrorPage is our page for an OAuth error code (RFC 6749 §4.1.2.1,
// OpenID Connect Core §3.1.2.6); the code is shown only when it is one.
func idpErrorPage(code string) page {
	p := page{Title: "Sign-in failed", Message: "The identity provider refused the sign-in.", Restart: true}
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
	return p
}

// compactGrants keeps role grants small in a session: when one
// organization granted every role (the usual case) the session keeps only
// its id; the roles are the groups already.
func compactGrants(grants []string) ([]string, string) {
	org := ""
	for _, g := range grants {
		_, o, _ := strings.Cut(g, "@")
		if org != "" && o != org {
			return grants, ""
		}
		org = o
	}
	return nil, org
}

// authTimeSkew tolerates the IdP's clock running behind ours.
const authTimeSkew = 30 * time.Second

// idpContext bounds an IdP call by idp_timeout and by the Check's own
// deadline, less a margin, so we answer before Envoy times out.
func (s *Server) idpContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return deadline.Within(ctx, s.conf().IDPTimeout)
}

// clearingState clears the state cookie of a failed callback.
func (s *Server) clearingState(d *Decision, state string, r *Request) *Decision {
	if state == "" {
		return d
	}
	return withCookies(d, s.jar.ClearState(state, r.Host))
}

// firstValue is the first value of a query parameter ("" when absent).
func firstValue(values []string) string {
	if len(values) == 0 {
		return ""
	}
	return values[0]
}

// newLoginID is a random id for a sign-in (128 bits, hex).
func newLoginID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
