// Package redisstore is the shared engine of several replicas
// (session_store_type = redis, or back-channel logout with redis_url): it
// stores encrypted sessions with their lifetime, indexes them by the IdP's
// session id and subject, holds the cross-replica refresh lock, records
// back-channel logouts and used logout-token ids, and tells every replica
// over pub/sub to drop a session from its L1 cache. It works with Redis
// and Valkey through go-redis: one server, Sentinel, or Cluster.
//
// Cluster: no operation needs two keys in one slot. Writes that touch
// several keys (a session and its indexes) go out as one pipeline, which
// go-redis splits by node and sends to all of them at once, so a login
// costs one round trip in every mode. What the single server's
// transaction used to give is kept by ordering and by failing whole: see
// Save. Anything that lists keys visits every master (eachMaster).
// Invalidations are classic pub/sub, which a cluster forwards to every
// node, so a replica hears them whichever node it subscribed on.
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
	"sync"
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
	// minReplicas > 0: a write counts only once that many replicas have
	// it (WAIT in the same pipeline), so a Sentinel failover can't lose
	// an acknowledged login or sign-out, and a write that reached a master
	// already demoted fails instead of vanishing (SetMinReplicas).
	minReplicas int
	waitFor     time.Duration
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
	if s.minReplicas > 0 {
		return s.loadFromMaster(ctx, id)
	}
	b, err := s.rdb.Get(ctx, keySession+id).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, session.ErrNoSession
	}
	return b, err
}

// loadFromMaster is Load with Sentinel: the GET goes with a ROLE in one
// round trip, and an answer from a node that is no longer the master (a
// failover under way: a demoted master has neither the sessions created
// since nor the deletions) is a store error, never "no session".
func (s *Store) loadFromMaster(ctx context.Context, id string) ([]byte, error) {
	var role *redis.Cmd
	var get *redis.StringCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		role = p.Do(ctx, "role")
		get = p.Get(ctx, keySession+id)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	if r, _ := role.Slice(); len(r) == 0 || r[0] != "master" {
		return nil, fmt.Errorf("read from a node that is not the master (a failover under way): %w", errNotReplicated)
	}
	b, err := get.Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, session.ErrNoSession
	}
	return b, err
}

// Save implements session.Store: the session, its sid and sub index entries
// and the invalidation, in one pipeline (one round trip; on a cluster one
// per node, sent at once).
//
// Not a transaction, since the keys live in different slots. What matters
// is that no session is ever stored without its index entries, or a
// back-channel logout would miss it: the index entries come first (one
// server runs a pipeline in order), and when any write fails Save fails,
// so the callback issues no cookie and a refresh keeps the session's
// previous, indexed copy. A logout racing a login in flight could always
// come before the Save (the code exchange precedes it), with or without a
// transaction.
func (s *Store) Save(ctx context.Context, id string, blob []byte, ttl time.Duration, sid, sub string) error {
	return s.write(ctx, id, blob, ttl, sid, sub, false)
}

// Replace implements session.Store: Save with SET … XX, so a write that
// outlived the session's end (DEL by a sign-out or a back-channel logout,
// or its expiry) is refused by Redis itself, in the same round trip, and
// can't race the deletion: session.ErrNoSession then.
func (s *Store) Replace(ctx context.Context, id string, blob []byte, ttl time.Duration, sid, sub string) error {
	return s.write(ctx, id, blob, ttl, sid, sub, true)
}

func (s *Store) write(ctx context.Context, id string, blob []byte, ttl time.Duration, sid, sub string, existing bool) error {
	var w *redis.IntCmd
	var replaced *redis.BoolCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, idx := range indexKeys(sid, sub) {
			p.SAdd(ctx, idx, id)
			// The index lives as long as its longest session.
			p.ExpireGT(ctx, idx, ttl)
			p.ExpireNX(ctx, idx, ttl)
		}
		if existing {
			replaced = p.SetXX(ctx, keySession+id, blob, ttl)
		} else {
			p.Set(ctx, keySession+id, blob, ttl)
		}
		w = s.replicated(ctx, p)
		p.Publish(ctx, channel, "inv "+s.replica+" "+id)
		return nil
	})
	if errors.Is(err, redis.Nil) {
		err = nil // SET … XX that set nothing: read below
	}
	if err := s.waited(w, err); err != nil {
		return err
	}
	if replaced != nil && !replaced.Val() {
		return session.ErrNoSession
	}
	return nil
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

// Delete implements session.Store: the session and the invalidation in
// one pipeline.
func (s *Store) Delete(ctx context.Context, id string) error {
	var w *redis.IntCmd
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, keySession+id)
		w = s.replicated(ctx, p)
		p.Publish(ctx, channel, "inv "+s.replica+" "+id)
		return nil
	})
	return s.waited(w, err)
}

// EndSessions deletes every stored session of the IdP session sid, or of
// subject sub when sid is empty (back-channel logout in redis mode). It
// returns how many it ended. Two round trips whatever the number of
// sessions: the index, then one pipeline deleting each session (one key
// per command, so any slot), telling every replica, and dropping the
// index. A failure leaves the index in place, so ZITADEL's retry of the
// logout finds the sessions again.
func (s *Store) EndSessions(ctx context.Context, sid, sub string) (int, error) {
	idx := keyBySID + sid
	if sid == "" {
		idx = keyBySub + sub
	}
	ids, err := s.rdb.SMembers(ctx, idx).Result()
	if err != nil {
		return 0, err
	}
	dels := make([]*redis.IntCmd, len(ids))
	var w *redis.IntCmd
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			dels[i] = p.Del(ctx, keySession+id)
			// Published for ourselves too: our own L1 must drop it as well.
			p.Publish(ctx, channel, "inv - "+id)
		}
		w = s.replicated(ctx, p)
		return nil
	})
	err = s.waited(w, err)
	n := 0
	for _, d := range dels {
		n += int(d.Val())
	}
	if err != nil {
		return n, err
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
		var set *redis.BoolCmd
		var w *redis.IntCmd
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			set = p.SetNX(ctx, key, token, lockTTL)
			w = s.replicated(ctx, p)
			return nil
		})
		ok := set.Val()
		if err == nil && ok {
			// A lock only the master has dies with a failover, and another
			// replica could then take it and spend the refresh token twice.
			err = s.waited(w, nil)
		}
		if err != nil {
			if ok {
				s.unlock(ctx, key, token)
			}
			return nil, err
		}
		if ok {
			return func() {
				uctx := ctx
				if ctx.Err() != nil {
					// Called after the Check ended (its refreshed session was kept
					// until the store answered): unlock within its own bound.
					uctx = context.WithoutCancel(ctx)
				}
				s.unlock(uctx, key, token)
			}, nil
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
		found, err := scanRevocations(ctx, node)
		mu.Lock()
		out = append(out, found...)
		mu.Unlock()
		return err
	})
	return out, err
}

// scanRevocations reads one node's logout records: a SCAN, then one
// pipeline of GET and PTTL per page of keys.
func scanRevocations(ctx context.Context, node redis.Cmdable) ([]Revocation, error) {
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
			now := time.Now()
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

// Events are what other replicas announce.
type Events struct {
	// Invalidate drops a session from the L1 cache.
	Invalidate func(id string)
	// Revoked records a back-channel logout of cookie sessions.
	Revoked func(Revocation)
}

// Subscription is this replica's subscription to the others'
// announcements.
type Subscription struct {
	store *Store
	ps    *redis.PubSub
}

// Subscribe subscribes to the other replicas' announcements, waiting
// until Redis confirms or ctx ends; call Deliver to hear them. Subscribe
// before reading what was recorded earlier (Revocations), so nothing
// announced in between is missed. When Redis doesn't answer, the
// subscription is still made and go-redis keeps trying.
func (s *Store) Subscribe(ctx context.Context) (*Subscription, error) {
	ps := s.rdb.Subscribe(context.WithoutCancel(ctx), channel)
	_, err := ps.Receive(ctx)
	return &Subscription{store: s, ps: ps}, err
}

// Deliver hands announcements to ev until ctx ends, then closes the
// subscription. go-redis resubscribes by itself after a connection loss
// (on a cluster, to the node serving the channel's slot; classic pub/sub
// reaches every node); announcements sent while it was away are missed,
// which the L1 cache's short TTL bounds.
func (sub *Subscription) Deliver(ctx context.Context, ev Events) {
	defer sub.ps.Close()
	ch := sub.ps.Channel(redis.WithChannelHealthCheckInterval(time.Second))
	for {
		select {
		case <-ctx.Done():
			return
		case msg, ok := <-ch:
			if !ok {
				return
			}
			sub.store.handle(msg.Payload, ev)
		}
	}
}

// Close ends the subscription without delivering.
func (sub *Subscription) Close() error { return sub.ps.Close() }

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
