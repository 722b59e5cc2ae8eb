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
	"unicode/utf8"

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

// Outcomes of a back-channel logout, for the metric.
const (
	OutcomeEnded            = "ended"                     // verified; its sessions ended
	OutcomeInvalidRequest   = "invalid_request"           // not a POSTed form with a logout_token
	OutcomeInvalidToken     = "invalid_logout_token"      // no app's verifier accepted the token
	OutcomeReplayed         = "replayed_logout_token"     // its jti was used before
	OutcomeIdPUnavailable   = "idp_unavailable"           // the IdP's keys couldn't be loaded (503)
	OutcomeStoreUnavailable = "session_store_unavailable" // Redis couldn't record it or end the sessions (503)
)

// Outcomes lists every outcome (labels to pre-create).
var Outcomes = []string{OutcomeEnded, OutcomeInvalidRequest, OutcomeInvalidToken, OutcomeReplayed, OutcomeIdPUnavailable, OutcomeStoreUnavailable}

// Handler is the back-channel logout endpoint. A logout token is for the
// apps whose verifier accepts it (its iss and aud are theirs); the sessions
// of those apps end, no other app's. audiences is read per request, so a
// reload that adds or removes apps applies at once. observe (may be nil)
// hears each request's outcome.
//
// The endpoint is reachable from the internet (ZITADEL calls it through
// Envoy), so what a caller sends can't grow the log: refusals are Info
// lines, at most refusalLines a second (the next line says how many were
// left out), and any text from the token is cut to maxLoggedError.
func Handler(audiences func() []Audience, replay ReplayGuard, logger *slog.Logger, observe func(outcome string)) http.Handler {
	if observe == nil {
		observe = func(string) {}
	}
	return &handler{audiences: audiences, replay: replay, logger: logger, observe: observe, refusals: &sampler{}}
}

// handler is Handler's endpoint.
type handler struct {
	audiences func() []Audience
	replay    ReplayGuard
	logger    *slog.Logger
	observe   func(outcome string)
	refusals  *sampler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.observe(OutcomeInvalidRequest)
		writeError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		h.refuse(w, OutcomeInvalidRequest, "the body is not a form")
		return
	}
	raw := r.PostForm.Get("logout_token")
	if raw == "" {
		h.refuse(w, OutcomeInvalidRequest, "logout_token is missing")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	claims, matched, ok := h.verify(ctx, w, raw)
	if !ok {
		return
	}
	first, err := h.replay.FirstUse(ctx, claims.JTI, claims.Expiry.Add(5*time.Minute))
	if err != nil {
		h.unavailable(w, OutcomeStoreUnavailable, "back-channel logout not recorded", "try again", err)
		return
	}
	if !first {
		h.refuse(w, OutcomeReplayed, "logout token already used", "sub", claims.Subject)
		return
	}
	for _, a := range matched {
		if err := a.Ender.End(ctx, claims.SID, claims.Subject); err != nil {
			h.unavailable(w, OutcomeStoreUnavailable, "back-channel logout failed", "try again", err, "app", a.App)
			return
		}
		h.logger.Info("back-channel logout", "app", a.App, "sid", claims.SID, "sub", claims.Subject)
	}
	h.observe(OutcomeEnded)
	w.WriteHeader(http.StatusOK)
}

// verify finds the apps whose verifier accepts the logout token; when
// none does it answers (503 when the IdP's keys couldn't be loaded, else
// 400) and ok is false.
func (h *handler) verify(ctx context.Context, w http.ResponseWriter, raw string) (claims *oidcflow.LogoutClaims, matched []Audience, ok bool) {
	var failure, idpFailed error // why no app accepted it
	for _, a := range h.audiences() {
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
	if len(matched) > 0 {
		return claims, matched, true
	}
	if idpFailed != nil {
		h.unavailable(w, OutcomeIdPUnavailable, "back-channel logout not verified", "the identity provider's keys can't be loaded", idpFailed)
		return nil, nil, false
	}
	why := "no app is configured"
	if failure != nil {
		why = clip(failure.Error())
	}
	h.refuse(w, OutcomeInvalidToken, "invalid logout token", "error", why)
	return nil, nil, false
}

// refuse answers 400 and logs why, sampled.
func (h *handler) refuse(w http.ResponseWriter, outcome, description string, attrs ...any) {
	h.observe(outcome)
	if ok, left := h.refusals.allow(time.Now()); ok {
		if left > 0 {
			attrs = append(attrs, "refusals_not_logged", left)
		}
		h.logger.Info("back-channel logout refused", append([]any{"reason", outcome}, attrs...)...)
	}
	writeError(w, http.StatusBadRequest, "invalid_request", description)
}

// unavailable answers 503 (the IdP or the store failed) and logs it.
func (h *handler) unavailable(w http.ResponseWriter, outcome, msg, description string, err error, attrs ...any) {
	h.observe(outcome)
	h.logger.Warn(msg, append([]any{"reason", outcome, "error", clip(err.Error())}, attrs...)...)
	writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", description)
}

// maxLoggedError bounds the text of a refusal's error in the log: it can
// carry what the caller put in the token (a kid, an issuer).
const maxLoggedError = 160

// clip cuts s to maxLoggedError bytes (on a rune boundary) and marks the cut.
func clip(s string) string {
	if len(s) <= maxLoggedError {
		return s
	}
	cut := maxLoggedError
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// refusalLines is how many refusals a second are logged.
const refusalLines = 5

// sampler lets refusalLines log lines through per second and counts the
// rest, which the next line through reports.
type sampler struct {
	mu      sync.Mutex
	second  int64
	lines   int
	skipped int
}

func (s *sampler) allow(now time.Time) (ok bool, skipped int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sec := now.Unix(); sec != s.second {
		s.second, s.lines = sec, 0
	}
	if s.lines >= refusalLines {
		s.skipped++
		return false, 0
	}
	s.lines++
	skipped, s.skipped = s.skipped, 0
	return true, skipped
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
