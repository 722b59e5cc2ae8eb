// Package closablecache is a ristretto cache that may be closed while
// other goroutines still use it. ristretto's Close must not run beside a
// Set (it closes the channel a Set sends on: "send on closed channel");
// the IdP calls that fill some caches (the token exchange, the refresh)
// run detached from the request that started them and can outlive the
// server's shutdown. Here a Set, Get or Wait after Close does nothing.
package closablecache

import (
	"sync"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

// Cache guards a ristretto cache against use after Close.
type Cache[K ristretto.Key, V any] struct {
	mu     sync.RWMutex
	closed bool
	c      *ristretto.Cache[K, V]
}

// New guards c.
func New[K ristretto.Key, V any](c *ristretto.Cache[K, V]) *Cache[K, V] {
	return &Cache[K, V]{c: c}
}

// Bounded is a guarded cache of at most maxCost, with metrics, sized for
// up to 100,000 entries (ristretto's counters) as the server's caches are.
func Bounded[K ristretto.Key, V any](maxCost int64) (*Cache[K, V], error) {
	c, err := ristretto.NewCache(&ristretto.Config[K, V]{NumCounters: 100_000, MaxCost: maxCost, BufferItems: 64, Metrics: true})
	if err != nil {
		return nil, err
	}
	return New(c), nil
}

// Get is ristretto's Get; nothing after Close.
func (g *Cache[K, V]) Get(key K) (V, bool) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		var zero V
		return zero, false
	}
	return g.c.Get(key)
}

// SetWithTTL is ristretto's SetWithTTL; false after Close.
func (g *Cache[K, V]) SetWithTTL(key K, value V, cost int64, ttl time.Duration) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return !g.closed && g.c.SetWithTTL(key, value, cost, ttl)
}

// Wait is ristretto's Wait; nothing after Close.
func (g *Cache[K, V]) Wait() {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if !g.closed {
		g.c.Wait()
	}
}

// Metrics are the cache's counters (nil unless it was made with them).
func (g *Cache[K, V]) Metrics() *ristretto.Metrics { return g.c.Metrics }

// Close waits for the calls under way and closes the cache; later calls
// do nothing. It may be called more than once.
func (g *Cache[K, V]) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.closed {
		g.closed = true
		g.c.Close()
	}
}
