package authz

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// memStore is a session.Store that records what happens, in order.
type memStore struct {
	mu     sync.Mutex
	blobs  map[string][]byte
	events *[]string
}

func (m *memStore) Load(_ context.Context, id string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[id]
	if !ok {
		return nil, session.ErrNoSession
	}
	return b, nil
}

func (m *memStore) Save(_ context.Context, id string, blob []byte, _ time.Duration, _, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blobs[id] = blob
	*m.events = append(*m.events, "save")
	return nil
}

func (m *memStore) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.blobs, id)
	return nil
}

type recordingLock struct{ events *[]string }

func (l recordingLock) Lock(context.Context, string) (func(), error) {
	*l.events = append(*l.events, "lock")
	return func() { *l.events = append(*l.events, "unlock") }, nil
}

// In redis mode the refreshed session is stored before the refresh lock is
// released: the next holder (another replica) re-reads it and must find
// the new refresh token, not the spent one. It is stored once.
func TestRefreshStoresBeforeUnlock(t *testing.T) {
	var events []string
	store := &memStore{blobs: map[string][]byte{}, events: &events}
	codec, err := session.NewCodec([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	jar := session.NewJar(codec, session.Options{}, session.WithStore(store, nil, 0), session.WithClock(func() time.Time { return t0 }))
	idp := &stubIdP{refresh: func(context.Context, string) (*oidcflow.Tokens, error) {
		events = append(events, "idp refresh")
		return &oidcflow.Tokens{AccessToken: "at2", RefreshToken: "rt2", Expiry: t0.Add(time.Hour)}, nil
	}}
	s, err := New(Config{EmailDomains: []string{"*"}, RefreshBeforeExpiry: 2 * time.Hour, PassUserHeaders: true}, idp, jar,
		WithClock(func() time.Time { return t0 }), WithLogger(slog.New(slog.DiscardHandler)), WithRefreshLock(recordingLock{&events}))
	if err != nil {
		t.Fatal(err)
	}
	sess := alice()
	sess.RefreshToken = "rt1"
	// Signed in 2 h ago with a token that lives 3 h: within a third of its
	// lifetime of expiry, so due (refreshAhead).
	sess.CreatedAt = t0.Add(-2 * time.Hour).Unix()
	set, err := jar.Save(t.Context(), sess, "app.example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := http.ParseSetCookie(set[0])
	events = nil

	resp, err := s.Check(t.Context(), envoyRequest("GET", "/", map[string]string{"cookie": p.Name + "=" + p.Value}))
	if err != nil || resp.GetStatus().GetCode() != 0 {
		t.Fatalf("refresh Check: %v %v", resp.GetStatus(), err)
	}
	got := strings.Join(events, ", ")
	if got != "lock, idp refresh, save, unlock" {
		t.Fatalf("order: %s; the refreshed session must be stored once, before unlock", got)
	}
	storedEntry, _, err := jar.Load(t.Context(), session.CookieMap(map[string]string{p.Name: p.Value}))
	if err != nil || storedEntry.Session.GetRefreshToken() != "rt2" {
		t.Errorf("stored refresh token %q, %v; want rt2", storedEntry.Session.GetRefreshToken(), err)
	}
}
