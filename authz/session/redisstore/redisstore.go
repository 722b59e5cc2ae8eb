package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// Keys. The prefix keeps several deployments apart in one Redis.
const (
	channel      = "zitadel-ext-authz:events"
	keySession   = "zea:s:"    // + ticket id → encrypted session
	keyBySID     = "zea:sid:"  // + IdP sid → set of ticket ids
	keyBySub     = "zea:sub:"  // + subject → set of ticket ids
	keyLock      = "zea:lock:" // + name → lock token
	keyRevoked   = "zea:rv:"   // + "sid:"/"sub:" + value → unix time of the logout
	keyJTI       = "zea:jti:"  // + logout token jti
	lockTTL      = 15 * time.Second
	lockPollStep = 20 * time.Millisecond
)

// Store implements session.Store and the cross-replica pieces on Redis.
type Store struct {
	rdb     redis.UniversalClient
	replica string // this process, so it skips its own invalidations
	logger  *slog.Logger
	// minReplicas > 0: a write counts only once that many replicas have
	// it (WAIT in the same pipeline), so a Sentinel failover can't lose
	// an acknowledged login or sign-out, and a write that reached a master
	// already demoted fails instead of vanishing (SetMinReplicas).
	minReplicas int
	waitFor     time.Duration
	now         func() time.Time // WithClock; time.Now by default
}

// Option customises a Store.
type Option func(*Store)

// WithClock replaces time.Now where the Store dates a record or turns an
// end time into a Redis TTL (logout records, used logout-token ids), so
// the process's one clock decides, in tests too.
func WithClock(now func() time.Time) Option {
	return func(s *Store) {
		if now != nil {
			s.now = now
		}
	}
}

// SetMinReplicas makes every write wait until n replicas have it, at most
// for d (then the write fails: the caller answers 503, nothing is
// acknowledged). 0 turns it off (asynchronous replication).
func (s *Store) SetMinReplicas(n int, d time.Duration) { s.minReplicas, s.waitFor = n, d }

// replicated queues a WAIT after a pipeline's writes; check it with
// waited.
func (s *Store) replicated(ctx context.Context, p redis.Pipeliner) *redis.IntCmd {
	if s.minReplicas <= 0 {
		return nil
	}
	cmd := redis.NewIntCmd(ctx, "wait", s.minReplicas, s.waitFor.Milliseconds())
	_ = p.Process(ctx, cmd)
	return cmd
}

// waited reports a WAIT that fell short as an error.
func (s *Store) waited(w *redis.IntCmd, err error) error {
	if err != nil || w == nil {
		return err
	}
	if n, werr := w.Result(); werr != nil || n < int64(s.minReplicas) {
		return fmt.Errorf("write reached %d of %d replicas in %s (a failover, or no replica): %w", n, s.minReplicas, s.waitFor, errNotReplicated)
	}
	return nil
}

var errNotReplicated = errors.New("not replicated")

// New wraps a go-redis client.
func New(rdb redis.UniversalClient, logger *slog.Logger, opts ...Option) *Store {
	b := make([]byte, 8)
	rand.Read(b)
	s := &Store{rdb: rdb, replica: hex.EncodeToString(b), logger: logger, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	return s
}

// ttlUntil is the Redis lifetime of a record that ends at until: at
// least a second, since Redis refuses a zero or negative expiry.
func (s *Store) ttlUntil(until time.Time) time.Duration {
	return max(until.Sub(s.now()), time.Second)
}

// Ping reports whether Redis answers (for /readyz).
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// Close closes the client.
func (s *Store) Close() error { return s.rdb.Close() }
