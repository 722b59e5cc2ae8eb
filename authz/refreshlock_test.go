package authz

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// memStore is a session.Store that records what happens, in order.
type memStore struct {
	mu     sync.Mutex
	blobs  map[string][]byte
	events *[]string
	down   bool // Save and Delete fail (Redis away)
	// writesFail: Save and Replace fail, Delete works (the store is back
	// and a sign-out went through, but a kept write hasn't landed yet).
	writesFail bool
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
	if m.down || m.writesFail {
		*m.events = append(*m.events, "save failed")
		return errStoreDown
	}
	m.blobs[id] = blob
	*m.events = append(*m.events, "save")
	return nil
}

func (m *memStore) Replace(_ context.Context, id string, blob []byte, _ time.Duration, _, _ string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down || m.writesFail {
		*m.events = append(*m.events, "save failed")
		return errStoreDown
	}
	if _, ok := m.blobs[id]; !ok {
		*m.events = append(*m.events, "replace refused")
		return session.ErrNoSession
	}
	m.blobs[id] = blob
	*m.events = append(*m.events, "save")
	return nil
}

func (m *memStore) Delete(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.down {
		return errStoreDown
	}
	delete(m.blobs, id)
	return nil
}

var errStoreDown = errors.New("connection refused")

func (m *memStore) setDown(down bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down = down
}

type recordingLock struct {
	mu     *sync.Mutex
	events *[]string
}

func (l recordingLock) Lock(context.Context, string) (func(), error) {
	l.record("lock")
	return func() { l.record("unlock") }, nil
}

func (l recordingLock) record(e string) {
	if l.mu != nil {
		l.mu.Lock()
		defer l.mu.Unlock()
	}
	*l.events = append(*l.events, e)
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
		WithClock(func() time.Time { return t0 }), WithLogger(slog.New(slog.DiscardHandler)), WithRefreshLock(recordingLock{events: &events}))
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

// A refresh the IdP answered (spending the old refresh token) whose
// session the store can't take is kept, not lost: this replica serves the
// new tokens, writes them once the store is back, and only then releases
// the refresh lock, so no replica re-reads the old token meanwhile.
func TestRefreshKeptWhenTheStoreFails(t *testing.T) {
	var mu sync.Mutex
	var events []string
	store := &memStore{blobs: map[string][]byte{}, events: &events}
	codec, err := session.NewCodec([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	jar := session.NewJar(codec, session.Options{}, session.WithStore(store, nil, 0), session.WithClock(time.Now))
	refreshes := 0
	idp := &stubIdP{refresh: func(context.Context, string) (*oidcflow.Tokens, error) {
		refreshes++
		return &oidcflow.Tokens{AccessToken: "at2", RefreshToken: "rt2", Expiry: time.Now().Add(time.Hour)}, nil
	}}
	s, err := New(Config{EmailDomains: []string{"*"}, CookieRefresh: time.Minute, PassUserHeaders: true, PassAccessToken: true}, idp, jar,
		WithLogger(slog.New(slog.DiscardHandler)), WithRefreshLock(recordingLock{&mu, &events}))
	if err != nil {
		t.Fatal(err)
	}
	cookie := storedRefreshable(t, jar)
	store.setDown(true)
	for i := range 2 {
		resp, err := s.Check(t.Context(), envoyRequest("GET", "/", cookie))
		if err != nil || resp.GetStatus().GetCode() != 0 {
			t.Fatalf("Check %d with the store failing: %v %v", i, resp.GetStatus(), err)
		}
		if got := upstreamHeader(resp, "x-forwarded-access-token"); got != "at2" {
			t.Fatalf("Check %d: access token %q, want the refreshed at2", i, got)
		}
	}
	if refreshes != 1 || jar.PendingLen() != 1 {
		t.Fatalf("%d refreshes, %d kept; want the one refresh kept", refreshes, jar.PendingLen())
	}
	mu.Lock()
	unlocked := strings.Count(strings.Join(events, ","), "unlock")
	mu.Unlock()
	if unlocked != 0 {
		t.Fatalf("the lock was released before the refreshed session was stored: %v", events)
	}
	store.setDown(false)
	deadline := time.Now().Add(5 * time.Second)
	for jar.PendingLen() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	got := strings.Join(events, ", ")
	mu.Unlock()
	if jar.PendingLen() != 0 || !strings.HasSuffix(got, "save, unlock") {
		t.Fatalf("after the store came back: %d kept, events %s; want stored, then unlocked", jar.PendingLen(), got)
	}
	name, value, _ := strings.Cut(cookie["cookie"], "=")
	stored, err := jar.LoadFresh(t.Context(), session.CookieMap(map[string]string{name: value}))
	if err != nil || stored.GetRefreshToken() != "rt2" {
		t.Errorf("stored refresh token %q, %v; want rt2", stored.GetRefreshToken(), err)
	}
}

// A sign-out the store can't carry out is not acknowledged: 503 with
// retry-after (the browser's cookie cleared all the same), and the session
// isn't reported ended; once the store is back, signing out again ends it.
func TestSignOutNotAcknowledgedWhenTheStoreFails(t *testing.T) {
	var events []string
	store := &memStore{blobs: map[string][]byte{}, events: &events}
	codec, _ := session.NewCodec([]byte(secret))
	jar := session.NewJar(codec, session.Options{}, session.WithStore(store, nil, 0))
	s, err := New(Config{EmailDomains: []string{"*"}}, &stubIdP{}, jar, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	sess := alice()
	sess.CreatedAt, sess.ExpiresAt, sess.AccessTokenExpiresAt = time.Now().Unix(), time.Now().Add(time.Hour).Unix(), time.Now().Add(time.Hour).Unix()
	set, err := jar.Save(t.Context(), sess, "app.example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := http.ParseSetCookie(set[0])
	cookie := map[string]string{"cookie": p.Name + "=" + p.Value}
	if resp, _ := s.Check(t.Context(), envoyRequest("GET", "/", cookie)); resp.GetStatus().GetCode() != 0 {
		t.Fatalf("the session before the sign-out: %v", resp.GetDeniedResponse())
	}
	store.setDown(true)
	resp, _ := s.Check(t.Context(), envoyRequest("GET", "/oauth2/sign_out", cookie))
	d := resp.GetDeniedResponse()
	if d.GetStatus().GetCode() != 503 || !hasHeader(d.GetHeaders(), "retry-after") || !hasHeader(d.GetHeaders(), "set-cookie") {
		t.Fatalf("sign-out with the store down: %v", d)
	}
	store.setDown(false)
	if resp, _ := s.Check(t.Context(), envoyRequest("GET", "/", cookie)); resp.GetStatus().GetCode() != 0 {
		t.Fatalf("the session after an unacknowledged sign-out: %v; it was never ended", resp.GetDeniedResponse().GetStatus())
	}
	if resp, _ := s.Check(t.Context(), envoyRequest("GET", "/oauth2/sign_out", cookie)); resp.GetDeniedResponse().GetStatus().GetCode() != 302 {
		t.Fatalf("sign-out with the store back: %v", resp.GetDeniedResponse().GetStatus())
	}
	if resp, _ := s.Check(t.Context(), envoyRequest("GET", "/", cookie)); resp.GetStatus().GetCode() == 0 {
		t.Fatal("the session survived an acknowledged sign-out")
	}
}

// storedRefreshable stores alice's session, due for a refresh
// (cookie_refresh 1m, signed in 2 minutes ago, refresh token rt1), and
// returns the Cookie header that carries it.
func storedRefreshable(t *testing.T, jar *session.Jar) map[string]string {
	t.Helper()
	sess := alice()
	sess.RefreshToken, sess.AccessToken = "rt1", "at1"
	sess.CreatedAt, sess.ExpiresAt, sess.AccessTokenExpiresAt = time.Now().Add(-2*time.Minute).Unix(), time.Now().Add(time.Hour).Unix(), time.Now().Add(time.Hour).Unix()
	set, err := jar.Save(t.Context(), sess, "app.example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := http.ParseSetCookie(set[0])
	return map[string]string{"cookie": p.Name + "=" + p.Value}
}

// upstreamHeader is a header an OK answer sends upstream.
func upstreamHeader(resp *authv3.CheckResponse, name string) string {
	for _, h := range resp.GetOkResponse().GetHeaders() {
		if h.GetHeader().GetKey() == name {
			return h.GetHeader().GetValue()
		}
	}
	return ""
}

// hasHeader reports whether a denied answer carries header name.
func hasHeader(headers []*corev3.HeaderValueOption, name string) bool {
	for _, h := range headers {
		if h.GetHeader().GetKey() == name {
			return true
		}
	}
	return false
}

// A logout acknowledged once the store is back outlives a refresh kept
// through the outage (the soak's resurrection): replica B refreshes while
// the store is down and keeps the new tokens (Pend); the store comes back
// and replica A's sign-out deletes the session before B's kept write
// lands; that write must not bring the session back, on either replica.
func TestKeptRefreshNeverUndoesASignOut(t *testing.T) {
	var mu sync.Mutex
	var events []string
	store := &memStore{blobs: map[string][]byte{}, events: &events}
	codec, err := session.NewCodec([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	replica := func(idp IdP) (*Server, *session.Jar) {
		jar := session.NewJar(codec, session.Options{}, session.WithStore(store, nil, 0), session.WithClock(time.Now))
		s, err := New(Config{EmailDomains: []string{"*"}, CookieRefresh: time.Minute, PassUserHeaders: true}, idp, jar,
			WithLogger(slog.New(slog.DiscardHandler)), WithRefreshLock(recordingLock{&mu, &events}))
		if err != nil {
			t.Fatal(err)
		}
		return s, jar
	}
	a, _ := replica(&stubIdP{})
	b, jarB := replica(&stubIdP{refresh: func(context.Context, string) (*oidcflow.Tokens, error) {
		return &oidcflow.Tokens{AccessToken: "at2", RefreshToken: "rt2", Expiry: time.Now().Add(time.Hour)}, nil
	}})
	cookie := storedRefreshable(t, jarB)

	store.setDown(true)
	if resp, _ := b.Check(t.Context(), envoyRequest("GET", "/", cookie)); resp.GetStatus().GetCode() != 0 || jarB.PendingLen() != 1 {
		t.Fatalf("refresh with the store down: %v, %d kept; want allowed and kept", resp.GetDeniedResponse().GetStatus(), jarB.PendingLen())
	}
	// The store is back; A's sign-out goes through before B's kept write.
	store.mu.Lock()
	store.down, store.writesFail = false, true
	store.mu.Unlock()
	if resp, _ := a.Check(t.Context(), envoyRequest("GET", "/oauth2/sign_out", cookie)); resp.GetDeniedResponse().GetStatus().GetCode() != http.StatusFound {
		t.Fatalf("sign-out on A: %v, want it acknowledged (302)", resp.GetDeniedResponse().GetStatus())
	}
	store.mu.Lock()
	store.writesFail = false
	store.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for jarB.PendingLen() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling to a deadline: the flusher runs on its own ticker
	}
	if jarB.PendingLen() != 0 {
		t.Fatal("B still keeps the refreshed session")
	}
	store.mu.Lock()
	n := len(store.blobs)
	store.mu.Unlock()
	if n != 0 {
		t.Fatalf("the kept write brought the signed-out session back into the store (events %v)", events)
	}
	for name, s := range map[string]*Server{"A": a, "B": b} {
		if resp, _ := s.Check(t.Context(), envoyRequest("GET", "/", cookie)); resp.GetStatus().GetCode() == 0 {
			t.Errorf("replica %s allows the signed-out session", name)
		}
	}
}
