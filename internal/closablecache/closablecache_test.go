package closablecache

import (
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/ristretto/v2"
)

func newCache(t *testing.T) *Cache[uint64, string] {
	t.Helper()
	c, err := ristretto.NewCache(&ristretto.Config[uint64, string]{NumCounters: 1000, MaxCost: 1 << 20, BufferItems: 64})
	if err != nil {
		t.Fatal(err)
	}
	return New(c)
}

// Writers that keep writing while the cache closes neither panic nor race
// (run with -race; a bare ristretto cache panics with "send on closed
// channel" here), and nothing is stored or found after Close.
func TestCloseWhileWriting(t *testing.T) {
	g := newCache(t)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := range 8 {
		wg.Go(func() {
			<-start
			for i := range 2000 {
				g.SetWithTTL(uint64(w*10000+i), "token", 10, time.Minute)
				g.Wait()
				g.Get(uint64(i))
			}
		})
	}
	close(start)
	g.Close()
	wg.Wait()
	if g.SetWithTTL(1, "late", 1, time.Minute) {
		t.Fatal("a Set after Close reported success")
	}
	if _, ok := g.Get(1); ok {
		t.Fatal("a Get after Close found something")
	}
	g.Close() // twice is fine
}

// Before Close it is the cache it guards.
func TestGuardedCacheStores(t *testing.T) {
	g := newCache(t)
	defer g.Close()
	for range 3 {
		if g.SetWithTTL(7, "token", 1, time.Minute) {
			break
		}
	}
	g.Wait()
	if v, ok := g.Get(7); !ok || v != "token" {
		t.Fatalf("Get = %q, %v", v, ok)
	}
}
