package authz

import (
	"context"
	"errors"
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
	u := fromSession(sess)
	m := s.sessionMemo(e, sess)
	if d := s.judge(r, m, u, viaSession, sess.GetScopes(), &rp, nil); d != nil {
		return d
	}
	idle := s.conf().IdleTimeout
	if idle > 0 && now.Sub(lastSeen(sess)) >= lastSeenEvery(idle) {
		if !renewed {
			sess = proto.CloneOf(sess)
		}
		markSeen(sess, now)
		renewed = true
		m = s.sessionMemo(e, sess) // a copy: not e's session any more
	}
	d := withSubject(s.allowSessionTo(ctx, r, m, sess, &rp), u.sub)
	if renewed {
		return s.saveRenewed(ctx, r, sess, d)
	}
	return d
}

// saveRenewed writes a session that changed (refresh, secret rotation,
// last-seen) and adds its cookies to d (an allowed answer's response
// headers, or a local reply's own); a session ended meanwhile on another
// replica stays ended.
func (s *Server) saveRenewed(ctx context.Context, r *Request, sess *sessionpb.Session, d *Decision) *Decision {
	cookies, err := s.jar.Save(ctx, sess, r.Host, r.Cookies)
	if errors.Is(err, session.ErrNoSession) {
		return s.sessionOver(ctx, r, ReasonLoggedOut)
	}
	if err != nil {
		s.logger.Error("renewed session not written", "request_id", r.ID, "reason", ReasonSessionCookie, "error", err.Error())
		return d
	}
	if !d.Allow {
		return withCookies(d, cookies...)
	}
	d.Reason = ReasonSessionRenewed
	return withResponseCookies(d, cookies...)
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
			return nil, false, s.sessionOver(ctx, r, ReasonSignedOut)
		}
		if s.revocations.Revoked(sess.GetSessionId(), sess.GetSubject(), createdAtMillis(sess)) {
			return nil, false, s.sessionOver(ctx, r, ReasonLoggedOut)
		}
	}
	// Unused for longer than session_idle_timeout: the session is over.
	idle := s.conf().IdleTimeout
	seen := lastSeen(sess)
	if idle > 0 && !seen.IsZero() && now.Sub(seen) > idle {
		return nil, false, s.sessionOver(ctx, r, ReasonIdleTimeout)
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
	if s.refreshLock == nil || sess.GetTicketId() == "" {
		fresh, answer := s.renew(ctx, r, sess)
		return refreshed{fresh: fresh, answer: answer}
	}
	unlock, err := s.refreshLock.Lock(ctx, "refresh:"+sess.GetTicketId())
	if err != nil {
		s.logger.Warn("refresh lock not taken", "request_id", r.ID, "reason", ReasonStoreUnavailable, "error", err.Error())
		if at := sess.GetAccessTokenExpiresAt(); at == 0 || at > s.now().Unix() {
			return keepOld
		}
		return refreshed{answer: s.storeUnavailable()}
	}
	res, handedOver := s.refreshLocked(ctx, r, sess, unlock)
	if !handedOver {
		unlock()
	}
	return res
}

// refreshLocked refreshes a stored session under its lock (unlock), unless
// another replica stored a refreshed one meanwhile. handedOver: a pending
// write (session.Pend) took the lock and releases it.
func (s *Server) refreshLocked(ctx context.Context, r *Request, sess *sessionpb.Session, unlock func()) (res refreshed, handedOver bool) {
	stored, err := s.jar.LoadFresh(ctx, r.Cookies)
	switch {
	case errors.Is(err, session.ErrStoreUnavailable):
		return refreshed{answer: s.storeUnavailable()}, false
	case err != nil:
		return refreshed{answer: s.sessionOver(ctx, r, ReasonLoggedOut)}, false
	case stored.GetRefreshToken() != sess.GetRefreshToken():
		return refreshed{fresh: stored, saved: true}, false
	}
	fresh, answer := s.renew(ctx, r, sess)
	if answer != nil || fresh == nil {
		return refreshed{fresh: fresh, answer: answer}, false
	}
	// The refreshed session must be stored before the lock goes: the next
	// holder re-reads it and must not find the spent token.
	_, err = s.jar.Save(ctx, fresh, r.Host, r.Cookies)
	switch {
	case errors.Is(err, session.ErrNoSession):
		// Signed out or logged out while the IdP answered: the new tokens
		// die with the session, which stays ended.
		return refreshed{answer: s.sessionOver(ctx, r, ReasonLoggedOut)}, false
	case err != nil:
		// The IdP spent the old refresh token: keep the new tokens, and
		// the lock, until the store takes them (session.Pend).
		if s.jar.Pend(ctx, fresh, r.Cookies, unlock) {
			s.logger.Warn("refreshed session kept until the store answers", "request_id", r.ID, "reason", ReasonStoreUnavailable, "error", err.Error())
			return refreshed{fresh: fresh}, true
		}
		s.logger.Warn("refreshed session not stored", "request_id", r.ID, "reason", ReasonStoreUnavailable, "error", err.Error())
		return refreshed{fresh: fresh}, false
	}
	return refreshed{fresh: fresh, saved: true}, false
}

// renew asks the IdP for new tokens: the renewed session, or nil to go on
// with the old one (IdP down or our client refused, access token still
// valid), or the answer that ends the request.
func (s *Server) renew(ctx context.Context, r *Request, sess *sessionpb.Session) (*sessionpb.Session, *Decision) {
	tokens, err := s.idp.Refresh(ctx, sess.GetRefreshToken())
	now := s.now()
	valid := func() bool { at := sess.GetAccessTokenExpiresAt(); return at == 0 || at > now.Unix() }
	switch {
	case errors.Is(err, oidcflow.ErrIdPUnavailable):
		if valid() {
			s.logger.Warn("refresh postponed", "request_id", r.ID, "reason", ReasonIdPUnavailable)
			return nil, nil
		}
		// Expired and the IdP is away: keep the cookie, the user recovers
		// when the IdP is back.
		return nil, s.unavailable(err, signInUnavailable)
	case errors.Is(err, oidcflow.ErrClientAuth):
		// Our configuration is wrong, not the session: keep it (it works
		// again once the configuration is fixed) and use it while its
		// access token lasts.
		if valid() {
			return nil, nil
		}
		return nil, s.clientMisconfigured()
	case err != nil:
		// invalid_grant (revoked, expired, reused refresh token) or an
		// invalid refreshed ID token: the session is over.
		s.logger.Info("refresh rejected; session over", "request_id", r.ID, "reason", ReasonRefreshRejected, "sub", sess.GetSubject())
		return nil, s.sessionOver(ctx, r, ReasonRefreshRejected)
	}
	if tokens.IDToken != "" && tokens.Identity.Subject != sess.GetSubject() {
		s.logger.Warn("refreshed ID token is for another subject; session over", "request_id", r.ID, "reason", ReasonSubjectChanged)
		return nil, s.sessionOver(ctx, r, ReasonSubjectChanged)
	}
	fresh := proto.CloneOf(sess)
	fresh.AccessToken, fresh.RefreshToken, fresh.AccessTokenExpiresAt = tokens.AccessToken, tokens.RefreshToken, 0
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
		fresh.IdToken = tokens.IDToken
		fromSession(sess).refreshed(fromClaims(tokens.Identity)).writeTo(fresh)
		if tokens.SessionID != "" {
			fresh.SessionId = tokens.SessionID
		}
	}
	return fresh, nil
}

// sessionOver ends a session for reason and clears its cookies (deny.go's
// ended says how it is answered).
func (s *Server) sessionOver(ctx context.Context, r *Request, reason Reason) *Decision {
	return s.ended(r, reason, s.jar.End(ctx, r.Host, r.Cookies))
}

// createdAtMillis is the login time in Unix milliseconds; sessions from
// before created_at_ms existed count from the end of their login second.
func createdAtMillis(sess *sessionpb.Session) int64 {
	if ms := sess.GetCreatedAtMs(); ms > 0 {
		return ms
	}
	return sess.GetCreatedAt()*1000 + 999
}
