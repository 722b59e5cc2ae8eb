package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
)

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
