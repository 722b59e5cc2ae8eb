// Package backchannel receives OpenID Connect back-channel logouts
// (POST /oauth2/backchannel_logout, form field logout_token): it verifies
// the logout token, refuses replays and ends the sessions it names. In
// redis mode the stored sessions are deleted; with cookie sessions the
// logout is recorded (Revocations) and matching cookies are refused until
// they would have expired. Revocations also records sign-outs of cookie
// sessions (by the sign-in's id), so a copy of a signed-out cookie is
// refused too.
package backchannel

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// Path is where ZITADEL's backChannelLogoutUri must point (through Envoy, or
// at http_address).
const Path = "/oauth2/backchannel_logout"

// Verifier checks a logout token (*oidcflow.Provider).
type Verifier interface {
	VerifyLogoutToken(ctx context.Context, raw string) (*oidcflow.LogoutClaims, error)
}

// Ender ends the sessions of an IdP session id, or of a subject when sid is
// empty.
type Ender interface {
	End(ctx context.Context, sid, sub string) error
}

// ReplayGuard remembers logout token ids until they expire.
type ReplayGuard interface {
	FirstUse(ctx context.Context, jti string, until time.Time) (bool, error)
}

// maxBody bounds the form we read.
const maxBody = 64 << 10

// Audience is one relying party whose logout tokens the endpoint accepts:
// one app of the server (its client at its issuer) and how its sessions end.
type Audience struct {
	App      string // the app's name, for logs
	Verifier Verifier
	Ender    Ender
}

// Handler is the back-channel logout endpoint. A logout token is for the
// apps whose verifier accepts it (its iss and aud are theirs); the sessions
// of those apps end, no other app's. audiences is read per request, so a
// reload that adds or removes apps applies at once.
func Handler(audiences func() []Audience, replay ReplayGuard, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if err := r.ParseForm(); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request", "the body is not a form")
			return
		}
		raw := r.PostForm.Get("logout_token")
		if raw == "" {
			writeError(w, http.StatusBadRequest, "invalid_request", "logout_token is missing")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
		defer cancel()
		var (
			claims    *oidcflow.LogoutClaims
			matched   []Audience
			failure   error // why no app accepted it
			idpFailed error
		)
		for _, a := range audiences() {
			c, err := a.Verifier.VerifyLogoutToken(ctx, raw)
			switch {
			case err == nil:
				claims = c
				matched = append(matched, a)
			case errors.Is(err, oidcflow.ErrIdPUnavailable):
				idpFailed = err
			default:
				failure = err
			}
		}
		if len(matched) == 0 {
			if idpFailed != nil {
				logger.Warn("back-channel logout not verified", "reason", "idp_unavailable", "error", idpFailed.Error())
				writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the identity provider's keys can't be loaded")
				return
			}
			why := "no app is configured"
			if failure != nil {
				why = failure.Error()
			}
			logger.Warn("back-channel logout refused", "reason", "invalid_logout_token", "error", why)
			writeError(w, http.StatusBadRequest, "invalid_request", "invalid logout token")
			return
		}
		first, err := replay.FirstUse(ctx, claims.JTI, claims.Expiry.Add(5*time.Minute))
		if err != nil {
			logger.Warn("back-channel logout not recorded", "reason", "session_store_unavailable", "error", err.Error())
			writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "try again")
			return
		}
		if !first {
			logger.Warn("back-channel logout refused", "reason", "replayed_logout_token", "sub", claims.Subject)
			writeError(w, http.StatusBadRequest, "invalid_request", "logout token already used")
			return
		}
		for _, a := range matched {
			if err := a.Ender.End(ctx, claims.SID, claims.Subject); err != nil {
				logger.Warn("back-channel logout failed", "reason", "session_store_unavailable", "app", a.App, "error", err.Error())
				writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "try again")
				return
			}
			logger.Info("back-channel logout", "app", a.App, "sid", claims.SID, "sub", claims.Subject)
		}
		w.WriteHeader(http.StatusOK)
	})
}

// writeError answers as OAuth 2.0 §5.2 does (Back-Channel Logout §2.8).
func writeError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}

// maxEntries bounds the in-process revocation list and replay memory.
const maxEntries = 100_000

// Revocations is the in-process record of back-channel logouts for cookie
// sessions; it implements authz.Revocations. Entries expire when the
// cookies they refuse would have.
type Revocations struct {
	n      atomic.Int64 // entries: with none (the usual case) Revoked takes no lock
	mu     sync.RWMutex
	sids   map[string]time.Time // sid → until
	subs   map[string][2]int64  // sub → (logout time in Unix ms, until in Unix s)
	logins map[string]time.Time // login id → until (sign-outs)
	now    func() time.Time
}

// NewRevocations returns an empty list.
func NewRevocations(now func() time.Time) *Revocations {
	if now == nil {
		now = time.Now
	}
	return &Revocations{sids: map[string]time.Time{}, subs: map[string][2]int64{}, logins: map[string]time.Time{}, now: now}
}

// Add records a logout: of IdP session sid, or of every session of sub
// created before at.
func (r *Revocations) Add(sid, sub string, at, until time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.makeRoom()
	defer r.count()
	if sid != "" {
		r.sids[sid] = until
		return
	}
	if old, ok := r.subs[sub]; !ok || old[0] < at.UnixMilli() {
		r.subs[sub] = [2]int64{at.UnixMilli(), until.Unix()}
	}
}

// AddLogin records a sign-out: the sign-in loginID is over until `until`
// (when its cookie would expire anyway).
func (r *Revocations) AddLogin(loginID string, until time.Time) {
	if loginID == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.makeRoom()
	defer r.count()
	r.logins[loginID] = until
}

// Empty reports whether nothing is recorded (no lock taken).
func (r *Revocations) Empty() bool { return r.n.Load() == 0 }

// SignedOut reports whether a sign-out ended the sign-in loginID.
func (r *Revocations) SignedOut(loginID string) bool {
	if r.n.Load() == 0 || loginID == "" {
		return false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	until, ok := r.logins[loginID]
	return ok && until.After(r.now())
}

func (r *Revocations) count() { r.n.Store(int64(len(r.sids) + len(r.subs) + len(r.logins))) }

// makeRoom drops expired entries once the list is full; entries still in
// force are kept (a full list of live ones grows past maxEntries rather
// than forget a logout).
func (r *Revocations) makeRoom() {
	if len(r.sids)+len(r.subs)+len(r.logins) >= maxEntries {
		r.purge()
	}
}

func (r *Revocations) purge() {
	now := r.now()
	for k, until := range r.logins {
		if !until.After(now) {
			delete(r.logins, k)
		}
	}
	for k, until := range r.sids {
		if !until.After(now) {
			delete(r.sids, k)
		}
	}
	for k, v := range r.subs {
		if v[1] <= now.Unix() {
			delete(r.subs, k)
		}
	}
}

// Revoked implements authz.Revocations.
func (r *Revocations) Revoked(sid, sub string, createdAtMs int64) bool {
	if r.n.Load() == 0 {
		return false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if sid != "" {
		if until, ok := r.sids[sid]; ok && until.After(r.now()) {
			return true
		}
	}
	if v, ok := r.subs[sub]; ok && createdAtMs <= v[0] && v[1] > r.now().Unix() {
		return true
	}
	return false
}

// Replays is the in-process ReplayGuard (one replica, no Redis).
type Replays struct {
	mu   sync.Mutex
	seen map[string]time.Time
	now  func() time.Time
}

// NewReplays returns an empty guard.
func NewReplays(now func() time.Time) *Replays {
	if now == nil {
		now = time.Now
	}
	return &Replays{seen: map[string]time.Time{}, now: now}
}

// FirstUse implements ReplayGuard.
func (g *Replays) FirstUse(_ context.Context, jti string, until time.Time) (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if len(g.seen) >= maxEntries {
		for k, u := range g.seen {
			if !u.After(now) {
				delete(g.seen, k)
			}
		}
		if len(g.seen) >= maxEntries {
			return false, errors.New("too many logout tokens remembered")
		}
	}
	if u, ok := g.seen[jti]; ok && u.After(now) {
		return false, nil
	}
	g.seen[jti] = until
	return true, nil
}
