package authz

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
	"google.golang.org/protobuf/proto"
)

// lastSeenEvery is how often last-seen is rewritten for an idle timeout: a
// fifth of it, so a user active at least that often is never idle, but at
// most once a minute (each rewrite is a new cookie, or a store write).
func lastSeenEvery(idle time.Duration) time.Duration {
	return min(idle/5, time.Minute)
}

// markSeen sets last-seen to now.
func markSeen(sess *sessionpb.Session, now time.Time) {
	sess.LastSeenAt, sess.LastSeenAtMs = now.Unix(), now.UnixMilli()
}

// lastSeen is when the session was last seen (zero: never recorded).
func lastSeen(sess *sessionpb.Session) time.Time {
	if ms := sess.GetLastSeenAtMs(); ms > 0 {
		return time.UnixMilli(ms)
	}
	if sec := sess.GetLastSeenAt(); sec > 0 {
		return time.Unix(sec, 0)
	}
	return time.Time{}
}

// withSession decides for a request with a decodable session: idle
// timeout, token refresh, policy, then allow, with a renewed cookie when
// the session changed (refresh, secret rotation, last-seen).
func (s *Server) withSession(ctx context.Context, r *Request, e *session.Entry, stale bool, rp routePolicy) *Decision {
	sess, renewed, over := s.current(ctx, r, e, stale)
	if over != nil {
		return over
	}
	now := s.now()
	u := sessionUser(sess)
	if reason := s.authorize(u); reason != "" {
		return withSubject(s.forbidden(reason, sessionName(sess), &rp), sess.GetSubject())
	}
	if reason := rp.check(u, sess.GetScopes()); reason != "" {
		return withSubject(s.forbidden(reason, sessionName(sess), &rp), sess.GetSubject())
	}
	// The route wants a fresher or stronger sign-in than this session's:
	// back to the IdP for it (the session stays for the other routes).
	if need := rp.stepUp(u, now); need != "" {
		if s.isAPI(r) {
			return withSubject(s.insufficientAuthentication(need, rp), sess.GetSubject())
		}
		return withSubject(s.startStepUp(r, rp, need), sess.GetSubject())
	}
	idle := s.conf().IdleTimeout
	if idle > 0 && now.Sub(lastSeen(sess)) >= lastSeenEvery(idle) {
		if !renewed {
			sess = proto.CloneOf(sess)
		}
		markSeen(sess, now)
		renewed = true
	}
	d := withSubject(s.allowSession(r, e, sess), sess.GetSubject())
	if renewed {
		return s.saveRenewed(ctx, r, sess, d)
	}
	return d
}

// sessionName is how a page names the signed-in user.
func sessionName(sess *sessionpb.Session) string {
	return displayName(sess.GetPreferredUsername(), sess.GetEmail(), sess.GetUser())
}

// displayName is the first of the user's names that is set.
func displayName(names ...string) string {
	for _, n := range names {
		if n != "" {
			return n
		}
	}
	return ""
}

// saveRenewed writes a session that changed (refresh, secret rotation,
// last-seen) and adds its cookies to d (an allowed answer's response
// headers, or a local reply's own); a session ended meanwhile on another
// replica stays ended.
func (s *Server) saveRenewed(ctx context.Context, r *Request, sess *sessionpb.Session, d *Decision) *Decision {
	cookies, err := s.jar.Save(ctx, sess, r.Host, r.Cookies)
	if errors.Is(err, session.ErrNoSession) {
		return s.sessionOver(ctx, r, "logged_out")
	}
	if err != nil {
		s.logger.Error("renewed session not written", "request_id", r.ID, "reason", "session_cookie", "error", err.Error())
		return d
	}
	if !d.Allow {
		return withCookies(d, cookies...)
	}
	for _, c := range cookies {
		d.ResponseHeaders = append(d.ResponseHeaders, Header{"set-cookie", c})
	}
	d.Reason = "session_renewed"
	return d
}

// current is the session as of now, for every route that reads one
// (Check, /oauth2/userinfo): not signed out, logged out or idle, refreshed
// when due, its access token unexpired. over is the answer when it is
// none of these; renewed says sess changed and must be written.
func (s *Server) current(ctx context.Context, r *Request, e *session.Entry, stale bool) (sess *sessionpb.Session, renewed bool, over *Decision) {
	now := s.now()
	sess = e.Session
	// Ended by a back-channel logout or a sign-out while this copy of the
	// cookie lived on (cookie mode; redis mode deletes the session).
	if s.revocations != nil {
		if s.revocations.SignedOut(sess.GetLoginId()) {
			return nil, false, s.sessionOver(ctx, r, "signed_out")
		}
		if s.revocations.Revoked(sess.GetSessionId(), sess.GetSubject(), createdAtMillis(sess)) {
			return nil, false, s.sessionOver(ctx, r, "logged_out")
		}
	}
	// Unused for longer than session_idle_timeout: the session is over.
	idle := s.conf().IdleTimeout
	seen := lastSeen(sess)
	if idle > 0 && !seen.IsZero() && now.Sub(seen) > idle {
		return nil, false, s.sessionOver(ctx, r, "idle_timeout")
	}
	renewed = stale
	if s.refreshDue(sess, now) {
		res := s.refresh(ctx, r, sess)
		if res.answer != nil {
			return nil, false, res.answer
		}
		if res.fresh != nil {
			// A stored session the refresh already saved keeps its cookie:
			// write again only for a stale cookie secret.
			sess, renewed = res.fresh, renewed || !res.saved
		}
	}
	// Access token expired and no way to refresh it: log in again.
	if at := sess.GetAccessTokenExpiresAt(); at > 0 && at <= now.Unix() {
		return nil, false, s.unauthenticated(r)
	}
	return sess, renewed, nil
}

// refreshDue: the session has a refresh token and its access token is
// expired or within refresh_before_expiry of it, or cookie_refresh has
// passed since the last refresh.
func (s *Server) refreshDue(sess *sessionpb.Session, now time.Time) bool {
	if sess.GetRefreshToken() == "" {
		return false
	}
	if at := sess.GetAccessTokenExpiresAt(); at > 0 && now.Add(refreshAhead(s.conf().RefreshBeforeExpiry, sess, at)).Unix() >= at {
		return true
	}
	if every := s.conf().CookieRefresh; every > 0 {
		last := sess.GetRefreshedAt()
		if last == 0 {
			last = sess.GetCreatedAt()
		}
		return now.Sub(time.Unix(last, 0)) >= every
	}
	return false
}

// refreshAhead is how long before the access token's expiry (at) a
// refresh is due: refresh_before_expiry, but at most a third of the
// token's lifetime, so tokens that live shorter than it (a 1-minute token
// with the default 1m) are not refreshed on every request.
func refreshAhead(before time.Duration, sess *sessionpb.Session, at int64) time.Duration {
	got := sess.GetRefreshedAt()
	if got == 0 {
		got = sess.GetCreatedAt()
	}
	if got > 0 && at > got {
		if third := time.Duration(at-got) * time.Second / 3; third < before {
			return third
		}
	}
	return before
}

// refreshed is what a refresh came to: a renewed session (saved when it is
// already in the session store), or nothing, to go on with the old one (IdP
// down, access token still valid), or an answer that ends the request.
type refreshed struct {
	fresh  *sessionpb.Session
	saved  bool
	answer *Decision
}

// keepOld goes on with the session as it is.
var keepOld = refreshed{}

// refresh renews the session's tokens.
func (s *Server) refresh(ctx context.Context, r *Request, sess *sessionpb.Session) refreshed {
	ctx, cancel := s.idpContext(ctx)
	defer cancel()
	// A stored session shared by replicas: refresh under the session's lock,
	// and use what another replica stored meanwhile instead of spending the
	// same refresh token again.
	locked := false
	var unlock func() // released on return, unless handed to a pending write
	if s.refreshLock != nil && sess.GetTicketId() != "" {
		locked = true
		lockUnlock, err := s.refreshLock.Lock(ctx, "refresh:"+sess.GetTicketId())
		if err != nil {
			s.logger.Warn("refresh lock not taken", "request_id", r.ID, "reason", "session_store_unavailable", "error", err.Error())
			if at := sess.GetAccessTokenExpiresAt(); at == 0 || at > s.now().Unix() {
				return keepOld
			}
			return refreshed{answer: s.storeUnavailable()}
		}
		unlock = lockUnlock
		defer func() {
			if unlock != nil {
				unlock()
			}
		}()
		stored, err := s.jar.LoadFresh(ctx, r.Cookies)
		switch {
		case errors.Is(err, session.ErrStoreUnavailable):
			return refreshed{answer: s.storeUnavailable()}
		case err != nil:
			return refreshed{answer: s.sessionOver(ctx, r, "logged_out")}
		case stored.GetRefreshToken() != sess.GetRefreshToken():
			return refreshed{fresh: stored, saved: true}
		}
	}
	tokens, err := s.idp.Refresh(ctx, sess.GetRefreshToken())
	now := s.now()
	switch {
	case errors.Is(err, oidcflow.ErrIdPUnavailable):
		if at := sess.GetAccessTokenExpiresAt(); at == 0 || at > now.Unix() {
			s.logger.Warn("refresh postponed", "request_id", r.ID, "reason", "idp_unavailable")
			return keepOld
		}
		// Expired and the IdP is away: keep the cookie, the user recovers
		// when the IdP is back.
		return refreshed{answer: s.unavailable(err, signInUnavailable)}
	case errors.Is(err, oidcflow.ErrClientAuth):
		// Our configuration is wrong, not the session: keep it (it works
		// again once the configuration is fixed) and use it while its
		// access token lasts.
		if at := sess.GetAccessTokenExpiresAt(); at == 0 || at > now.Unix() {
			return keepOld
		}
		return refreshed{answer: s.clientMisconfigured()}
	case err != nil:
		// invalid_grant (revoked, expired, reused refresh token) or an
		// invalid refreshed ID token: the session is over.
		s.logger.Info("refresh rejected; session over", "request_id", r.ID, "reason", "refresh_rejected", "sub", sess.GetSubject())
		return refreshed{answer: s.sessionOver(ctx, r, "refresh_rejected")}
	}
	if tokens.IDToken != "" && tokens.Identity.Subject != sess.GetSubject() {
		s.logger.Warn("refreshed ID token is for another subject; session over", "request_id", r.ID, "reason", "subject_changed")
		return refreshed{answer: s.sessionOver(ctx, r, "subject_changed")}
	}
	fresh := proto.CloneOf(sess)
	fresh.AccessToken = tokens.AccessToken
	fresh.RefreshToken = tokens.RefreshToken
	fresh.AccessTokenExpiresAt = 0
	if !tokens.Expiry.IsZero() {
		fresh.AccessTokenExpiresAt = tokens.Expiry.Unix()
	}
	fresh.RefreshedAt = now.Unix()
	markSeen(fresh, now)
	if len(tokens.Scopes) > 0 {
		fresh.Scopes = tokens.Scopes
	}
	// A refresh response may lack an ID token: keep the old one (it is
	// still the id_token_hint for sign-out) and the identity it gave.
	if tokens.IDToken != "" {
		id := tokens.Identity
		fresh.IdToken = tokens.IDToken
		fresh.User, fresh.Email, fresh.EmailVerified = id.User, id.Email, id.EmailVerified
		fresh.PreferredUsername, fresh.Groups = id.PreferredUsername, id.Groups
		// Roles and the organization may change; how and when the user
		// signed in does not (a refresh is no sign-in): auth_time and
		// amr stay the login's.
		fresh.RoleGrants, fresh.RoleOrg = compactGrants(id.RoleGrants)
		if id.OrgID != "" {
			fresh.OrgId, fresh.OrgDomain = id.OrgID, id.OrgDomain
		}
		if tokens.SessionID != "" {
			fresh.SessionId = tokens.SessionID
		}
	}
	// Under the lock, the refreshed session must be stored before the lock
	// goes: the next holder re-reads it and must not find the spent token.
	if locked {
		_, err := s.jar.Save(ctx, fresh, r.Host, r.Cookies)
		if errors.Is(err, session.ErrNoSession) {
			// Signed out or logged out while the IdP answered: the new
			// tokens die with the session, which stays ended.
			return refreshed{answer: s.sessionOver(ctx, r, "logged_out")}
		}
		if err != nil {
			// The IdP spent the old refresh token: keep the new tokens, and
			// the lock, until the store takes them (session.Pend).
			if s.jar.Pend(ctx, fresh, r.Cookies, unlock) {
				unlock = nil
				s.logger.Warn("refreshed session kept until the store answers", "request_id", r.ID, "reason", "session_store_unavailable", "error", err.Error())
			} else {
				s.logger.Warn("refreshed session not stored", "request_id", r.ID, "reason", "session_store_unavailable", "error", err.Error())
			}
			return refreshed{fresh: fresh}
		}
		return refreshed{fresh: fresh, saved: true}
	}
	return refreshed{fresh: fresh}
}

// sessionOver ends a session: API callers get 401, browsers the login
// redirect (or sign-in page); both with the session cookies cleared.
func (s *Server) sessionOver(ctx context.Context, r *Request, reason string) *Decision {
	d := s.unauthenticated(r)
	d.Reason = reason
	clear := s.jar.End(ctx, r.Host, r.Cookies)
	headers := make([]Header, 0, len(d.Headers)+len(clear))
	headers = append(headers, d.Headers...)
	for _, c := range clear {
		headers = append(headers, Header{"set-cookie", c})
	}
	d.Headers = headers
	if d.Status == 0 {
		d.Status = http.StatusUnauthorized
	}
	return d
}

// createdAtMillis is the login time in Unix milliseconds; sessions from
// before created_at_ms existed count from the end of their login second.
func createdAtMillis(sess *sessionpb.Session) int64 {
	if ms := sess.GetCreatedAtMs(); ms > 0 {
		return ms
	}
	return sess.GetCreatedAt()*1000 + 999
}
