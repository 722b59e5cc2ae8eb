package wiring

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/redis/go-redis/v9"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/backchannel"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session/redisstore"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/config"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/telemetry"
)

// Sessions is where sessions live and how they end: cookies or Redis, the
// L1 cache, back-channel logout, and what replicas tell each other.
//
// One Sessions serves every app: their sessions share the caches and the
// store, kept apart by each app's cookie keys and cache namespace (see
// session.WithApp) and, for logouts, by prefixing the IdP's session ids
// and subjects the store indexes with the app's name (forApp).
type Sessions struct {
	store   string        // session_store_type
	cache   session.Cache // nil: disabled
	l1TTL   time.Duration
	redis   *redisstore.Store        // nil without Redis
	sub     *redisstore.Subscription // set by Follow
	revoked *backchannel.Revocations
	replay  backchannel.ReplayGuard
	now     func() time.Time // dates the logouts recorded here
	closers []func()
}

// newSessions builds the stores and the L1 cache for cfg; now is the
// process's clock (nil: time.Now).
func newSessions(cfg *config.Config, m *telemetry.Metrics, logger *slog.Logger, now func() time.Time) (*Sessions, error) {
	if now == nil {
		now = time.Now
	}
	s := &Sessions{now: now}
	if cfg.Redis != nil {
		// go-redis ignores context deadlines unless told: without this a
		// stalled Redis would hold a Check for its 3 s read timeout, past
		// Envoy's deadline.
		opts := *cfg.Redis
		opts.ContextTimeoutEnabled = true
		s.redis = redisstore.New(redis.NewUniversalClient(&opts), logger, redisstore.WithClock(now))
		if opts.MasterName != "" && cfg.RedisMinReplicas > 0 {
			// Sentinel: an acknowledged write survives a failover.
			s.redis.SetMinReplicas(cfg.RedisMinReplicas, 500*time.Millisecond)
		}
		s.closers = append(s.closers, func() { s.redis.Close() })
		s.replay = s.redis
	} else {
		s.replay = backchannel.NewReplays(nil)
	}
	// The decoded-session cache: keyed by cookie in cookie mode, by ticket
	// id as the L1 in front of Redis. session_cache_max_bytes = 0 disables it.
	var cache session.Cache
	if cfg.SessionCacheSize > 0 {
		c, err := ristretto.NewCache(&ristretto.Config[string, *session.Entry]{
			KeyToHash:   session.KeyToHash,
			NumCounters: max(cfg.SessionCacheSize/100, 1000), // ~10× the sessions that fit
			MaxCost:     cfg.SessionCacheSize,
			BufferItems: 64,
			Metrics:     true,
		})
		if err != nil {
			return nil, fmt.Errorf("session cache: %w", err)
		}
		s.closers = append(s.closers, c.Close)
		if m != nil {
			m.WatchCache("session", c.Metrics)
		}
		cache = c
	}
	s.store, s.cache, s.l1TTL = cfg.SessionStore, cache, cfg.RedisL1TTL
	if s.store != "redis" {
		s.revoked = backchannel.NewRevocations(nil)
	}
	return s, nil
}

// appScope prefixes the IdP session ids and subjects of app's sessions,
// where they are indexed and revoked, so a logout of one app's sessions
// leaves the others' alone. The default app ("") keeps them unprefixed, as
// before there were apps.
func appScope(app string) func(string) string {
	if app == "" {
		return func(v string) string { return v }
	}
	prefix := "app/" + app + "/"
	return func(v string) string {
		if v == "" {
			return ""
		}
		return prefix + v
	}
}

// forApp is what app's Jar and Server take from the sessions, and how a
// back-channel logout ends its sessions; cookieExpire is the app's
// cookie_expire (a revocation lasts as long as its cookies could).
func (s *Sessions) forApp(app string, cookieExpire time.Duration) (jarOpts []session.JarOption, authzOpts []authz.Option, ender backchannel.Ender) {
	scope := appScope(app)
	jarOpts = []session.JarOption{session.WithApp(app)}
	if s.store == "redis" {
		jarOpts = append(jarOpts, session.WithStore(scopedStore{s.redis, scope}, s.cache, s.l1TTL))
		authzOpts = append(authzOpts, authz.WithRefreshLock(s.redis))
		return jarOpts, authzOpts, enderFunc(func(ctx context.Context, sid, sub string) error {
			_, err := s.redis.EndSessions(ctx, scope(sid), scope(sub))
			return err
		})
	}
	if s.cache != nil {
		jarOpts = append(jarOpts, session.WithCache(s.cache))
	}
	authzOpts = append(authzOpts, authz.WithRevocations(revocations{s.revoked, s.redis, scope}))
	return jarOpts, authzOpts, enderFunc(func(ctx context.Context, sid, sub string) error {
		now := s.now()
		until := now.Add(cookieExpire)
		s.revoked.Add(scope(sid), scope(sub), now, until)
		if s.redis != nil {
			return s.redis.Revoke(ctx, scope(sid), scope(sub), now, until)
		}
		return nil
	})
}

// scopedStore indexes an app's stored sessions under its scoped sid and sub.
type scopedStore struct {
	*redisstore.Store
	scope func(string) string
}

func (s scopedStore) Save(ctx context.Context, id string, blob []byte, ttl time.Duration, sid, sub string) error {
	return s.Store.Save(ctx, id, blob, ttl, s.scope(sid), s.scope(sub))
}

func (s scopedStore) Replace(ctx context.Context, id string, blob []byte, ttl time.Duration, sid, sub string) error {
	return s.Store.Replace(ctx, id, blob, ttl, s.scope(sid), s.scope(sub))
}

// revocations records sign-outs of cookie sessions in this process and,
// with Redis, for every replica.
type revocations struct {
	*backchannel.Revocations
	redis *redisstore.Store // nil without Redis
	scope func(string) string
}

// Revoked looks sid and sub up in the app's scope; with no revocation
// recorded at all (the usual case) it costs nothing.
func (r revocations) Revoked(sid, sub string, createdAtMs int64) bool {
	if r.Revocations.Empty() {
		return false
	}
	return r.Revocations.Revoked(r.scope(sid), r.scope(sub), createdAtMs)
}

func (r revocations) SignOut(ctx context.Context, loginID string, until time.Time) error {
	r.AddLogin(loginID, until)
	if r.redis != nil {
		return r.redis.RevokeLogin(ctx, loginID, until)
	}
	return nil
}

type enderFunc func(ctx context.Context, sid, sub string) error

func (f enderFunc) End(ctx context.Context, sid, sub string) error { return f(ctx, sid, sub) }

// Follow subscribes to the other replicas' announcements and then loads
// the logouts of cookie sessions recorded before this replica started
// (each within a few seconds; a Redis that doesn't answer is logged and
// retried in the background by go-redis). Call it before the listeners
// open, so the first Check already knows every recorded logout; Run then
// delivers what the others announce.
func (s *Sessions) Follow(ctx context.Context, logger *slog.Logger) {
	if s.redis == nil {
		return
	}
	subCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	sub, err := s.redis.Subscribe(subCtx)
	cancel()
	if err != nil {
		logger.Warn("not yet subscribed to the other replicas' announcements; retrying", "reason", "redis_unavailable", "error", err.Error())
	}
	s.sub = sub
	s.closers = append(s.closers, func() { sub.Close() })
	if s.revoked == nil {
		return
	}
	loadCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	list, err := s.redis.Revocations(loadCtx)
	cancel()
	if err != nil {
		logger.Warn("recorded back-channel logouts not loaded", "reason", "redis_unavailable", "error", err.Error())
	}
	for _, r := range list {
		s.addRevocation(r)
	}
}

// Run delivers the other replicas' announcements (L1 invalidations,
// logouts of cookie sessions) until ctx ends; Follow subscribed.
func (s *Sessions) Run(ctx context.Context) {
	if s.sub == nil {
		<-ctx.Done()
		return
	}
	s.sub.Deliver(ctx, redisstore.Events{
		Invalidate: s.invalidate,
		Revoked: func(r redisstore.Revocation) {
			if s.revoked != nil {
				s.addRevocation(r)
			}
		},
	})
}

// addRevocation records what another replica announced.
func (s *Sessions) addRevocation(r redisstore.Revocation) {
	if r.Login != "" {
		s.revoked.AddLogin(r.Login, r.Until)
		return
	}
	s.revoked.Add(r.SID, r.Sub, r.At, r.Until)
}

// Ready reports Redis for /readyz.
func (s *Sessions) Ready() (bool, string) {
	if s.redis == nil {
		return true, ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.redis.Ping(ctx); err != nil {
		return false, "redis: " + err.Error()
	}
	return true, ""
}

// invalidate drops a stored session from the L1 cache, which every app's
// Jar shares.
func (s *Sessions) invalidate(id string) {
	if s.store == "redis" && s.cache != nil {
		s.cache.Del(id)
	}
}

// LogoutHandler is POST /oauth2/backchannel_logout for the apps audiences
// returns; observe (may be nil) hears each outcome.
func (s *Sessions) LogoutHandler(audiences func() []backchannel.Audience, logger *slog.Logger, observe func(outcome string)) http.Handler {
	return backchannel.Handler(audiences, s.replay, logger, observe)
}

func (s *Sessions) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}
