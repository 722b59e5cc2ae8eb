package redisstore

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// FirstUse records a logout token id until `until`; false when it was seen
// before (a replay), on any replica.
func (s *Store) FirstUse(ctx context.Context, jti string, until time.Time) (bool, error) {
	return s.rdb.SetNX(ctx, keyJTI+jti, 1, s.ttlUntil(until)).Result()
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
	return s.revoke(ctx, "login:"+loginID, s.now(), until)
}

func (s *Store) revoke(ctx context.Context, field string, at, until time.Time) error {
	ttl := s.ttlUntil(until)
	var w *redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, keyRevoked+field, at.UnixMilli(), ttl)
		w = s.replicated(ctx, p)
		p.Publish(ctx, channel, "rev "+url.QueryEscape(field)+" "+strconv.FormatInt(at.UnixMilli(), 10)+" "+strconv.FormatInt(until.Unix(), 10))
		return nil
	})
	return s.waited(w, err)
}

// Revocation is one recorded back-channel logout (SID or Sub) or sign-out
// (Login).
type Revocation struct {
	SID, Sub, Login string
	At, Until       time.Time
}

// Revocations lists the logouts recorded so far (a replica starting up
// loads them), from every master of a cluster.
func (s *Store) Revocations(ctx context.Context) ([]Revocation, error) {
	var (
		mu  sync.Mutex
		out []Revocation
	)
	err := s.eachMaster(ctx, func(ctx context.Context, node redis.Cmdable) error {
		found, err := scanRevocations(ctx, node, s.now)
		mu.Lock()
		out = append(out, found...)
		mu.Unlock()
		return err
	})
	return out, err
}

// scanRevocations reads one node's logout records: a SCAN, then one
// pipeline of GET and PTTL per page of keys.
func scanRevocations(ctx context.Context, node redis.Cmdable, clock func() time.Time) ([]Revocation, error) {
	var out []Revocation
	var cursor uint64
	for {
		keys, next, err := node.Scan(ctx, cursor, keyRevoked+"*", 500).Result()
		if err != nil {
			return out, err
		}
		if len(keys) > 0 {
			gets, ttls := make([]*redis.StringCmd, len(keys)), make([]*redis.DurationCmd, len(keys))
			// Errors are per key here (one expired between SCAN and GET).
			_, _ = node.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i, key := range keys {
					gets[i], ttls[i] = p.Get(ctx, key), p.PTTL(ctx, key)
				}
				return nil
			})
			now := clock()
			for i, key := range keys {
				at, err := gets[i].Int64()
				ttl := ttls[i].Val()
				if err != nil || ttls[i].Err() != nil || ttl <= 0 {
					continue
				}
				if r, ok := parseRevocation(strings.TrimPrefix(key, keyRevoked), at, now.Add(ttl).Unix()); ok {
					out = append(out, r)
				}
			}
		}
		if cursor = next; cursor == 0 {
			return out, nil
		}
	}
}

// eachMaster runs fn on every master of a cluster, at once, or on the one
// server otherwise (a Sentinel client talks to the current master).
func (s *Store) eachMaster(ctx context.Context, fn func(ctx context.Context, node redis.Cmdable) error) error {
	if c, ok := s.rdb.(*redis.ClusterClient); ok {
		return c.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error { return fn(ctx, node) })
	}
	return fn(ctx, s.rdb)
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
