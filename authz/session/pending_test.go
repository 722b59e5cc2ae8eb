package session

import (
	"context"
	"errors"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
)

// flakyStore is a session.Store in memory that can be taken away.
type flakyStore struct {
	mu     sync.Mutex
	blobs  map[string][]byte
	down   atomic.Bool
	writes atomic.Int64 // Replace calls, answered or not
}

var errStoreDown = errors.New("store down")

func (f *flakyStore) Load(_ context.Context, id string) ([]byte, error) {
	if f.down.Load() {
		return nil, errStoreDown
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if b, ok := f.blobs[id]; ok {
		return b, nil
	}
	return nil, ErrNoSession
}

func (f *flakyStore) Save(_ context.Context, id string, blob []byte, _ time.Duration, _, _ string) error {
	if f.down.Load() {
		return errStoreDown
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.blobs == nil {
		f.blobs = map[string][]byte{}
	}
	f.blobs[id] = blob
	return nil
}

func (f *flakyStore) Replace(ctx context.Context, id string, blob []byte, ttl time.Duration, sid, sub string) error {
	f.writes.Add(1)
	return f.Save(ctx, id, blob, ttl, sid, sub)
}

func (f *flakyStore) Delete(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.blobs, id)
	return nil
}

// StopPending ends the writer of kept sessions, and no goroutine of it
// outlives the call: the refresh lock stays held (it must not be released
// before the session is stored), and nothing is kept afterwards.
func TestStopPendingEndsTheWriter(t *testing.T) {
	before := runtime.NumGoroutine()
	clk := testkit.NewClock(t0) // never advanced: the kept session doesn't age out by itself
	store := &flakyStore{}
	j := newTestJar(t, Options{}, clk, WithStore(store, nil, 0))
	s := &sessionpb.Session{Subject: "u1", CreatedAt: t0.Unix(), ExpiresAt: t0.Add(time.Hour).Unix(), AccessToken: "at"}
	cookies := map[string]string{}
	sc, err := j.Save(t.Context(), s, "app.example.com", CookieMap(cookies))
	if err != nil {
		t.Fatal(err)
	}
	browser(t, cookies, sc)
	e, _, err := j.Load(t.Context(), CookieMap(cookies))
	if err != nil {
		t.Fatal(err)
	}

	store.down.Store(true)
	var unlocked atomic.Bool
	if !j.Pend(t.Context(), e.Session, CookieMap(cookies), func() { unlocked.Store(true) }) {
		t.Fatal("Pend: the refreshed session was not kept")
	}
	// The writer retries while the store is away.
	testkit.Eventually(t, 5*time.Second, "a write attempt", func() bool { return store.writes.Load() > 0 })

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	j.StopPending(ctx)
	if ctx.Err() != nil {
		t.Fatal("StopPending: the writer did not return within 5 s")
	}
	writes := store.writes.Load()
	testkit.Eventually(t, 5*time.Second, "the goroutines back to where they were", func() bool { return runtime.NumGoroutine() <= before })
	if got := store.writes.Load(); got != writes {
		t.Errorf("StopPending: %d writes after it returned, want none", got-writes)
	}
	if unlocked.Load() {
		t.Error("StopPending released the refresh lock of a session never stored")
	}
	if j.Pend(t.Context(), e.Session, CookieMap(cookies), nil) {
		t.Error("Pend after StopPending: kept, want refused")
	}
	j.StopPending(ctx) // a second stop is harmless
}
