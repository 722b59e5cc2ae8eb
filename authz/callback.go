package authz

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"slices"
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
	ls, failed := s.callbackState(r, q)
	if failed != nil {
		return s.clearingState(failed, state, r)
	}
	ctx, cancel := s.idpContext(ctx)
	defer cancel()
	tokens, failed := s.exchange(ctx, r, ls, q.Get("code"))
	if failed != nil {
		return failed
	}
	u := fromClaims(tokens.Identity)
	if failed := s.admit(r, ls, u); failed != nil {
		return s.clearingState(withSubject(failed, u.sub), state, r)
	}
	sess := s.newSession(u, tokens)
	cookies, err := s.jar.Save(ctx, sess, r.Host, r.Cookies)
	if err != nil {
		return s.sessionNotStored(r, u, err)
	}
	cookies = append(cookies, s.jar.ClearState(state, r.Host))
	s.logger.Info("login completed", "request_id", r.ID, "sub", u.sub)
	// A step-up for an authentication method the new sign-in still lacks:
	// the session is made (it serves the other routes), and the page says
	// why this one stays closed instead of sending the user round again.
	if want := ls.GetRequiredAmr(); len(want) > 0 && !slices.ContainsFunc(u.amr, func(m string) bool { return slices.Contains(want, m) }) {
		s.logger.Info("step-up not met: the sign-in lacks the required method", "request_id", r.ID, "reason", ReasonStepUpFailed, "sub", u.sub, "amr", u.amr, "required_amr", want)
		return withSubject(s.stepUpFailed(want, ls.GetReturnUrl(), cookies), u.sub)
	}
	return withSubject(redirect(ls.GetReturnUrl(), ReasonLoginCompleted, cookies), u.sub)
}

// callbackState checks what the IdP sent the browser back with, before
// any IdP call: the issuer (RFC 9207), an error, and the state cookie.
func (s *Server) callbackState(r *Request, q url.Values) (*sessionpb.LoginState, *Decision) {
	// RFC 9207: a response that names another issuer, or none where our IdP
	// promises to name itself, may come from another IdP (mix-up attack).
	iss, hasIss := q["iss"]
	if err := s.idp.CheckResponseIssuer(firstValue(iss), hasIss); err != nil {
		s.logger.Warn("authorization response refused", "request_id", r.ID, "reason", ReasonIssuerMismatch, "error", err.Error())
		return nil, s.deny(ReasonIssuerMismatch)
	}
	// The IdP reported an error (the user cancelled, or the client is
	// misconfigured). Anyone can send a browser here with any error text:
	// the page says what we know the error code means, never the
	// unauthenticated error_description (it would put an attacker's words
	// on our page); the log keeps both, clipped.
	if e := q.Get("error"); e != "" {
		s.logger.Info("the identity provider returned an error", "request_id", r.ID, "reason", ReasonIdPError,
			"error", Clip(e, 64), "error_description", Clip(q.Get("error_description"), 256))
		return nil, s.idpErrorPage(e)
	}
	// No matching state cookie: forged, replayed, expired or from another
	// browser. Its cookie, if any, is someone else's: left alone.
	ls, err := s.jar.ReadState(q.Get("state"), r.Cookies)
	if err != nil {
		return nil, s.deny(ReasonBadState)
	}
	return ls, nil
}

// clearingState clears the state cookie of a failed callback. A bad state
// has no cookie of ours to clear.
func (s *Server) clearingState(d *Decision, state string, r *Request) *Decision {
	if state == "" || d.Reason == ReasonBadState {
		return d
	}
	return withCookies(d, s.jar.ClearState(state, r.Host))
}

// exchange trades the code for tokens; failed is the answer when the IdP
// can't or won't.
func (s *Server) exchange(ctx context.Context, r *Request, ls *sessionpb.LoginState, code string) (*oidcflow.Tokens, *Decision) {
	if code == "" {
		return nil, s.deny(ReasonMissingCode)
	}
	tokens, err := s.idp.Exchange(ctx, code, ls.GetRedirectUri(), oidcflow.Login{State: ls.GetState(), Nonce: ls.GetNonce(), CodeVerifier: ls.GetCodeVerifier()})
	switch {
	case errors.Is(err, oidcflow.ErrIdPUnavailable):
		s.logger.Warn("code exchange failed", "request_id", r.ID, "reason", ReasonIdPUnavailable, "error", err.Error())
		return nil, s.unavailable(err, signInUnavailable)
	case errors.Is(err, oidcflow.ErrClientAuth):
		// Our configuration, not the user: no "start again" (it would fail
		// the same way); the Provider logged what to fix.
		return nil, s.clientMisconfigured()
	case err != nil:
		s.logger.Warn("code exchange failed", "request_id", r.ID, "reason", ReasonLoginRejected, "error", err.Error())
		return nil, s.deny(ReasonLoginRejected)
	}
	return tokens, nil
}

// admit applies the app's policy and a step-up's max_age to a new
// sign-in; the answer when it may not have a session.
func (s *Server) admit(r *Request, ls *sessionpb.LoginState, u user) *Decision {
	switch reason := s.authorize(u); reason {
	case "":
	case ReasonEmailUnverified:
		return s.deny(reason) // verifying it is the way in: the page says so
	default:
		return s.forbidden(reason, u.displayName(), nil)
	}
	// A step-up asked for a sign-in within max_age: an ID token without
	// auth_time, or with an older one, is not that sign-in.
	if ma := ls.GetMaxAge(); ma > 0 && (u.authTime.IsZero() || s.now().Sub(u.authTime) > time.Duration(ma)*time.Second+authTimeSkew) {
		s.logger.Warn("login refused: not a fresh sign-in", "request_id", r.ID, "reason", ReasonStaleAuthTime, "sub", u.sub, "max_age", ma)
		return s.deny(ReasonStaleAuthTime)
	}
	return nil
}

// newSession is the session of a completed sign-in.
func (s *Server) newSession(u user, tokens *oidcflow.Tokens) *sessionpb.Session {
	now := s.now()
	sess := &sessionpb.Session{
		Scopes:       tokens.Scopes,
		AccessToken:  tokens.AccessToken,
		IdToken:      tokens.IDToken,
		RefreshToken: tokens.RefreshToken,
		CreatedAt:    now.Unix(),
		CreatedAtMs:  now.UnixMilli(),
		LastSeenAt:   now.Unix(),
		LastSeenAtMs: now.UnixMilli(),
		LoginId:      newLoginID(),
		ExpiresAt:    now.Add(s.jar.Lifetime()).Unix(),
		SessionId:    tokens.SessionID,
	}
	u.writeTo(sess)
	if !tokens.Expiry.IsZero() {
		sess.AccessTokenExpiresAt = tokens.Expiry.Unix()
	}
	if s.conf().SessionCookieMinimal {
		// The identity only: the session lasts its cookie_expire.
		sess.AccessToken, sess.IdToken, sess.RefreshToken, sess.AccessTokenExpiresAt = "", "", "", 0
	}
	return sess
}

// sessionNotStored answers a sign-in whose session couldn't be saved.
func (s *Server) sessionNotStored(r *Request, u user, err error) *Decision {
	switch {
	case errors.Is(err, session.ErrStoreUnavailable):
		s.logger.Warn("session not stored", "request_id", r.ID, "reason", ReasonStoreUnavailable, "error", err.Error())
		return s.storeUnavailable()
	case errors.Is(err, session.ErrTooLarge):
		s.logger.Error("session not stored", "request_id", r.ID, "reason", ReasonSessionTooLarge, "sub", u.sub,
			"error", err.Error(), "fix", `set session_store_type = "redis" (a small ticket cookie), or ask the IdP for fewer claims (scope, roles)`)
		return s.deny(ReasonSessionTooLarge)
	}
	return s.deny(ReasonSessionCookie)
}

// authTimeSkew tolerates the IdP's clock running behind ours.
const authTimeSkew = 30 * time.Second

// idpContext bounds an IdP call by idp_timeout and by the Check's own
// deadline, less a margin, so we answer before Envoy times out.
func (s *Server) idpContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return deadline.Within(ctx, s.conf().IDPTimeout)
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
