package authz

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// signOut is /oauth2/sign_out: clear the session cookies, then send the
// browser to the IdP's end_session_endpoint with id_token_hint, client_id
// and an absolute post_logout_redirect_uri (rd when allowed, else the
// request's own origin). The browser must go there itself: ZITADEL's SSO
// session is a cookie on the IdP's host (zitadel.md §1.7).
func (s *Server) signOut(ctx context.Context, r *Request) *Decision {
	after, ok := s.returnURL(r, r.Query().Get("rd"))
	state := ""
	if !ok {
		// Our own landing: the IdP sends the browser back with this state
		// (RP-Initiated Logout §3), and the page says it is signed out. The
		// URI stays the origin's root, as registered at the IdP.
		after, state = r.Scheme+"://"+r.Host+"/", signedOutState
	}
	var idToken string
	if e, _, err := s.jar.Load(ctx, r.Cookies); err == nil {
		sess := e.Session
		idToken = sess.GetIdToken()
		// Cookie mode: record the sign-out, so a copy of this cookie (another
		// tab, a log, a thief) is refused from now on, on every replica;
		// redis mode: delete the stored session. A sign-out the store
		// couldn't record is not acknowledged (503, try again).
		if s.revocations != nil && sess.GetLoginId() != "" {
			ctx, cancel := s.idpContext(ctx)
			err := s.revocations.SignOut(ctx, sess.GetLoginId(), time.Unix(sess.GetExpiresAt(), 0))
			cancel()
			if err != nil {
				s.logger.Warn("sign-out not recorded", "request_id", r.ID, "reason", ReasonStoreUnavailable, "error", err.Error())
				return s.signOutUnavailable(s.jar.ClearCookies(r.Host, r.Cookies))
			}
		}
		if err := s.jar.EndStored(ctx, r.Cookies); err != nil {
			s.logger.Warn("sign-out not recorded", "request_id", r.ID, "reason", ReasonStoreUnavailable, "error", err.Error())
			return s.signOutUnavailable(s.jar.ClearCookies(r.Host, r.Cookies))
		}
		// Revoke the refresh token first (RFC 7009), so a copied one dies
		// with the session. A failure is logged and never blocks sign-out.
		if rt := sess.GetRefreshToken(); rt != "" {
			ctx, cancel := s.idpContext(ctx)
			if err := s.idp.Revoke(ctx, rt, "refresh_token"); err != nil {
				s.logger.Warn("sign-out: refresh token not revoked", "request_id", r.ID, "reason", ReasonRevokeFailed, "error", err.Error())
			}
			cancel()
		}
	}
	if u := s.conf().BackendLogoutURL; u != "" && idToken != "" {
		// oauth2-proxy's backend_logout_url: the application's own logout,
		// told which session ended. A failure is logged, never blocking.
		ctx, cancel := s.idpContext(ctx)
		if err := s.idp.BackendLogout(ctx, strings.ReplaceAll(u, "{id_token}", url.QueryEscape(idToken))); err != nil {
			s.logger.Warn("sign-out: backend logout failed", "request_id", r.ID, "reason", ReasonBackendLogoutFailed, "error", err.Error())
		}
		cancel()
	}
	cookies := s.jar.End(ctx, r.Host, r.Cookies)
	target, err := s.idp.EndSessionURL(idToken, after, state)
	if err != nil {
		if !errors.Is(err, oidcflow.ErrNoEndSession) {
			// The IdP is unavailable: the local session ends anyway.
			s.logger.Warn("sign-out without IdP logout", "request_id", r.ID, "reason", ReasonIdPUnavailable)
		}
		target = after
		if state != "" {
			target += "?state=" + state
		}
	}
	return redirect(target, ReasonSignOut, cookies)
}

// signedOutState marks the IdP's redirect back after our sign-out.
const signedOutState = "signed_out"

// signedOut reports whether r is the browser coming back from our
// sign-out (the origin's root with our state).
func (s *Server) signedOut(r *Request) bool {
	return r.Path == "/" && r.RawQuery == "state="+signedOutState && !s.isAPI(r)
}
