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
type Sessions struct {
	jarOpts   []session.JarOption
	authzOpts []authz.Option
	redis     *redisstore.Store // nil without Redis
	revoked   *backchannel.Revocations
	ender     backchannel.Ender
	replay    backchannel.ReplayGuard
	closers   []func()
}

func newSessions(cfg *config.Config, m *telemetry.Metrics, logger *slog.Logger) (*Sessions, error) {
	s := &Sessions{}
	if cfg.Redis != nil {
		// go-redis ignores context deadlines unless told: without this a
		// stalled Redis would hold a Check for its 3 s read timeout, past
		// Envoy's deadline.
		opts := *cfg.Redis
		opts.ContextTimeoutEnabled = true
		s.redis = redisstore.New(redis.NewUniversalClient(&opts), logger)
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
	switch cfg.SessionStore {
	case "redis":
		s.jarOpts = append(s.jarOpts, session.WithStore(s.redis, cache, cfg.RedisL1TTL))
		s.authzOpts = append(s.authzOpts, authz.WithRefreshLock(s.redis))
		s.ender = enderFunc(func(ctx context.Context, sid, sub string) error {
			_, err := s.redis.EndSessions(ctx, sid, sub)
			return err
		})
	default:
		if cache != nil {
			s.jarOpts = append(s.jarOpts, session.WithCache(cache))
		}
		s.revoked = backchannel.NewRevocations(nil)
		s.authzOpts = append(s.authzOpts, authz.WithRevocations(revocations{s.revoked, s.redis}))
		s.ender = enderFunc(func(ctx context.Context, sid, sub string) error {
			now := time.Now()
			until := now.Add(cfg.Cookie.Expire)
			s.revoked.Add(sid, sub, now, until)
			if s.redis != nil {
				return s.redis.Revoke(ctx, sid, sub, now, until)
			}
			return nil
		})
	}
	return s, nil
}

// revocations records sign-outs of cookie sessions in this process and,
// with Redis, for every replica.
type revocations struct {
	*backchannel.Revocations
	redis *redisstore.Store // nil without Redis
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

// Run follows the other replicas (L1 invalidations, logouts of cookie
// sessions) until ctx ends.
func (s *Sessions) Run(ctx context.Context, jar *session.Jar, logger *slog.Logger) error {
	if s.redis == nil {
		<-ctx.Done()
		return nil
	}
	if s.revoked != nil {
		// Logouts recorded before this replica started.
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
	return s.redis.Subscribe(ctx, redisstore.Events{
		Invalidate: jar.Invalidate,
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

// LogoutHandler is POST /oauth2/backchannel_logout.
func (s *Sessions) LogoutHandler(v backchannel.Verifier, logger *slog.Logger) http.Handler {
	return backchannel.Handler(v, s.replay, s.ender, logger)
}

func (s *Sessions) close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
}
