// Package redisstore is the shared engine of several replicas
// (session_store_type = redis, or back-channel logout with redis_url): it
// stores encrypted sessions with their lifetime, indexes them by the IdP's
// session id and subject, holds the cross-replica refresh lock, records
// back-channel logouts and used logout-token ids, and tells every replica
// over pub/sub to drop a session from its L1 cache. It works with Redis
// and Valkey through go-redis (single node, Sentinel or Cluster).
package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/internal/deadline"
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
}

// New wraps a go-redis client.
func New(rdb redis.UniversalClient, logger *slog.Logger) *Store {
	b := make([]byte, 8)
	rand.Read(b)
	return &Store{rdb: rdb, replica: hex.EncodeToString(b), logger: logger}
}

// Ping reports whether Redis answers (for /readyz).
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// Close closes the client.
func (s *Store) Close() error { return s.rdb.Close() }

// Load implements session.Store.
func (s *Store) Load(ctx context.Context, id string) ([]byte, error) {
	b, err := s.rdb.Get(ctx, keySession+id).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, session.ErrNoSession
	}
	return b, err
}

// Save implements session.Store: the session, its sid and sub index entries
// and the invalidation, in one transaction.
func (s *Store) Save(ctx context.Context, id string, blob []byte, ttl time.Duration, sid, sub string) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, keySession+id, blob, ttl)
		for _, idx := range indexKeys(sid, sub) {
			p.SAdd(ctx, idx, id)
			// The index lives as long as its longest session.
			p.ExpireGT(ctx, idx, ttl)
			p.ExpireNX(ctx, idx, ttl)
		}
		p.Publish(ctx, channel, "inv "+s.replica+" "+id)
		return nil
	})
	return err
}

func indexKeys(sid, sub string) []string {
	var keys []string
	if sid != "" {
		keys = append(keys, keyBySID+sid)
	}
	if sub != "" {
		keys = append(keys, keyBySub+sub)
	}
	return keys
}

// Delete implements session.Store.
func (s *Store) Delete(ctx context.Context, id string) error {
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, keySession+id)
		p.Publish(ctx, channel, "inv "+s.replica+" "+id)
		return nil
	})
	return err
}

// EndSessions deletes every stored session of the IdP session sid, or of
// subject sub when sid is empty (back-channel logout in redis mode). It
// returns how many it ended.
func (s *Store) EndSessions(ctx context.Context, sid, sub string) (int, error) {
	idx := keyBySID + sid
	if sid == "" {
		idx = keyBySub + sub
	}
	ids, err := s.rdb.SMembers(ctx, idx).Result()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		deleted, err := s.rdb.Del(ctx, keySession+id).Result()
		if err != nil {
			return n, err
		}
		n += int(deleted)
		// Published for ourselves too: our own L1 must drop it as well.
		if err := s.rdb.Publish(ctx, channel, "inv - "+id).Err(); err != nil {
			return n, err
		}
	}
	return n, s.rdb.Del(ctx, idx).Err()
}

// Lock takes the lock name for all replicas (SET NX with an expiry, so a
// crashed holder can't block forever), waiting until ctx ends. The returned
// unlock runs within ctx too: a Redis gone meanwhile can't hold the answer
// (the lock then expires by itself).
func (s *Store) Lock(ctx context.Context, name string) (func(), error) {
	b := make([]byte, 16)
	rand.Read(b)
	token := hex.EncodeToString(b)
	key := keyLock + name
	tick := time.NewTicker(lockPollStep)
	defer tick.Stop()
	for attempt := 0; ; attempt++ {
		ok, err := s.rdb.SetNX(ctx, key, token, lockTTL).Result()
		if err != nil {
			return nil, err
		}
		if ok {
			return func() { s.unlock(ctx, key, token) }, nil
		}
		if attempt == 0 {
			s.logger.Debug("lock busy; waiting", "lock", strings.SplitN(name, ":", 2)[0])
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lock %s: %w", name, ctx.Err())
		case <-tick.C:
		}
	}
}

// unlockScript deletes the lock only if it is still ours.
var unlockScript = redis.NewScript(`if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`)

func (s *Store) unlock(ctx context.Context, key, token string) {
	ctx, cancel := deadline.Within(ctx, 2*time.Second)
	defer cancel()
	if err := unlockScript.Run(ctx, s.rdb, []string{key}, token).Err(); err != nil {
		s.logger.Warn("refresh lock not released; it expires by itself", "error", err.Error())
	}
}

// FirstUse records a logout token id until `until`; false when it was seen
// before (a replay), on any replica.
func (s *Store) FirstUse(ctx context.Context, jti string, until time.Time) (bool, error) {
	return s.rdb.SetNX(ctx, keyJTI+jti, 1, max(time.Until(until), time.Second)).Result()
}

// Revoke records a back-channel logout for cookie sessions (by sid, or by
// subject with its time) until `until`, and tells every replica.
func (s *Store) Revoke(ctx context.Context, sid, sub string, at, until time.Time) error {
	field := "sid:" + sid
	if sid == "" {
		field = "sub:" + sub
	}
	return s.revoke(ctx, field, at, until)
}

// RevokeLogin records the sign-out of one cookie session (by its login id)
// until `until`, and tells every replica.
func (s *Store) RevokeLogin(ctx context.Context, loginID string, until time.Time) error {
	return s.revoke(ctx, "login:"+loginID, time.Now(), until)
}

func (s *Store) revoke(ctx context.Context, field string, at, until time.Time) error {
	ttl := max(time.Until(until), time.Second)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, keyRevoked+field, at.UnixMilli(), ttl)
		p.Publish(ctx, channel, "rev "+url.QueryEscape(field)+" "+strconv.FormatInt(at.UnixMilli(), 10)+" "+strconv.FormatInt(until.Unix(), 10))
		return nil
	})
	return err
}

// Revocation is one recorded back-channel logout (SID or Sub) or sign-out
// (Login).
type Revocation struct {
	SID, Sub, Login string
	At, Until       time.Time
}

// Revocations lists the logouts recorded so far (a replica starting up
// loads them).
func (s *Store) Revocations(ctx context.Context) ([]Revocation, error) {
	var out []Revocation
	iter := s.rdb.Scan(ctx, 0, keyRevoked+"*", 500).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		at, err := s.rdb.Get(ctx, key).Int64()
		if err != nil {
			continue // expired meanwhile
		}
		ttl, err := s.rdb.PTTL(ctx, key).Result()
		if err != nil || ttl <= 0 {
			continue
		}
		if r, ok := parseRevocation(strings.TrimPrefix(key, keyRevoked), at, time.Now().Add(ttl).Unix()); ok {
			out = append(out, r)
		}
	}
	return out, iter.Err()
}

// parseRevocation reads a field ("sid:…", "sub:…" or "login:…"), the logout time in
// Unix milliseconds and the end of the record in Unix seconds.
func parseRevocation(field string, at, until int64) (Revocation, bool) {
	kind, value, ok := strings.Cut(field, ":")
	if !ok || value == "" {
		return Revocation{}, false
	}
	r := Revocation{At: time.UnixMilli(at), Until: time.Unix(until, 0)}
	switch kind {
	case "sid":
		r.SID = value
	case "sub":
		r.Sub = value
	case "login":
		r.Login = value
	default:
		return Revocation{}, false
	}
	return r, true
}

// Events are what other replicas announce.
type Events struct {
	// Invalidate drops a session from the L1 cache.
	Invalidate func(id string)
	// Revoked records a back-channel logout of cookie sessions.
	Revoked func(Revocation)
}

// Subscribe delivers other replicas' announcements until ctx ends. go-redis
// resubscribes by itself after a connection loss; announcements sent while
// it was away are missed, which the L1 cache's short TTL bounds.
func (s *Store) Subscribe(ctx context.Context, ev Events) error {
	ps := s.rdb.Subscribe(ctx, channel)
	defer ps.Close()
	ch := ps.Channel(redis.WithChannelHealthCheckInterval(time.Second))
	for {
		select {
		case <-ctx.Done():
			return nil
		case msg, ok := <-ch:
			if !ok {
				return nil
			}
			s.handle(msg.Payload, ev)
		}
	}
}

func (s *Store) handle(payload string, ev Events) {
	parts := strings.Fields(payload)
	switch {
	case len(parts) == 3 && parts[0] == "inv":
		if parts[1] != s.replica && ev.Invalidate != nil {
			ev.Invalidate(parts[2])
		}
	case len(parts) == 4 && parts[0] == "rev":
		at, err1 := strconv.ParseInt(parts[2], 10, 64)
		until, err2 := strconv.ParseInt(parts[3], 10, 64)
		if err1 == nil && err2 == nil && ev.Revoked != nil {
			field, err := url.QueryUnescape(parts[1])
			if r, ok := parseRevocation(field, at, until); ok && err == nil {
				ev.Revoked(r)
			}
		}
	}
}
