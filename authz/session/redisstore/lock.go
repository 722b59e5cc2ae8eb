package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/internal/deadline"
)

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
