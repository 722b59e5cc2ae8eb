package redisstore

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

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
