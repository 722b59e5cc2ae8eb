package oidcflow

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
)

type jwksServer struct {
	mu      sync.Mutex
	keys    []jose.JSONWebKey
	fetches atomic.Int64
}

func (j *jwksServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	j.fetches.Add(1)
	j.mu.Lock()
	defer j.mu.Unlock()
	json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: j.keys})
}

func (j *jwksServer) publish(keys ...jose.JSONWebKey) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.keys = keys
}

func newKey(t *testing.T, kid string) (*rsa.PrivateKey, jose.JSONWebKey) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k, jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"}
}

func sign(t *testing.T, k *rsa.PrivateKey, kid string) *jose.JSONWebSignature {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k}, (&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign([]byte(`{"sub":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	compact, _ := obj.CompactSerialize()
	jws, err := jose.ParseSignedCompact(compact, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	return jws
}

// ZITADEL rotates keys without notice: an unknown kid triggers one refetch;
// random kids can't make us refetch more than once per interval.
func TestKeySetRotationAndRateLimit(t *testing.T) {
	oldKey, oldJWK := newKey(t, "old")
	newPriv, newJWK := newKey(t, "new")
	srv := &jwksServer{}
	srv.publish(oldJWK)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	ks := newKeySet(ts.Client(), ts.URL, clock)
	ctx := context.Background()
	if _, err := ks.load(ctx); err != nil {
		t.Fatal(err)
	}

	if _, err := ks.VerifySignature(ctx, sign(t, oldKey, "old")); err != nil {
		t.Fatalf("known kid: %v", err)
	}
	if srv.fetches.Load() != 1 {
		t.Fatalf("a known kid refetched the JWKS")
	}
	// Rotation: the IdP now signs with "new".
	srv.publish(oldJWK, newJWK)
	now = now.Add(minRefetchInterval)
	if _, err := ks.VerifySignature(ctx, sign(t, newPriv, "new")); err != nil {
		t.Fatalf("rotated kid: %v", err)
	}
	if srv.fetches.Load() != 2 {
		t.Fatalf("fetches = %d, want one refetch for the new kid", srv.fetches.Load())
	}
	// A storm of unknown kids: at most one refetch per interval.
	stranger, _ := newKey(t, "x")
	for i := range 50 {
		if _, err := ks.VerifySignature(ctx, sign(t, stranger, "random-"+string(rune('a'+i%26)))); err == nil {
			t.Fatal("a token signed by an unknown key verified")
		}
	}
	if srv.fetches.Load() != 2 {
		t.Fatalf("fetches = %d after 50 unknown kids within the interval, want no more refetches", srv.fetches.Load())
	}
	// A wrong signature under a known kid fails without refetching.
	if _, err := ks.VerifySignature(ctx, sign(t, stranger, "old")); err == nil {
		t.Fatal("a forged signature under a known kid verified")
	}
}

func TestSigningAlgsNeverSymmetricOrNone(t *testing.T) {
	got := signingAlgs([]string{"none", "HS256", "RS256", "ES256"})
	if len(got) != 2 || got[0] != "RS256" || got[1] != "ES256" {
		t.Fatalf("signingAlgs: got %v, want [RS256 ES256]", got)
	}
	if got := signingAlgs([]string{"HS256"}); len(got) != 1 || got[0] != "RS256" {
		t.Fatalf("signingAlgs(HS256 only): got %v, want the RS256 default", got)
	}
}

// An ID token from our own token request gets its refetch even right after
// the last one; concurrent refetches, trusted or not, share one request.
func TestKeySetTrustedRefetchAndCoalescing(t *testing.T) {
	_, oldJWK := newKey(t, "old")
	newPriv, newJWK := newKey(t, "new")
	gate := make(chan struct{})
	var arrived atomic.Int64
	srv := &jwksServer{}
	srv.publish(oldJWK)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if arrived.Add(1) > 1 {
			<-gate // hold refetches until every caller waits on one
		}
		srv.ServeHTTP(w, r)
	}))
	defer ts.Close()
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	defer release()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	ks := newKeySet(ts.Client(), ts.URL, func() time.Time { return now })
	ctx := context.Background()
	if _, err := ks.load(ctx); err != nil {
		t.Fatal(err)
	}
	srv.publish(oldJWK, newJWK)
	// Within the interval: untrusted input is refused, a trusted token not.
	if _, err := ks.VerifySignature(ctx, sign(t, newPriv, "new")); err == nil {
		t.Fatal("an untrusted unknown kid refetched within the interval")
	}
	jws := sign(t, newPriv, "new")
	errs := make(chan error, 20)
	for range 10 {
		go func() { _, err := ks.VerifySignature(trustedKeys(ctx), jws); errs <- err }()
	}
	// Untrusted callers join the fetch in flight instead of being refused.
	testkit.Eventually(t, 5*time.Second, "a refetch to start", func() bool { return arrived.Load() >= 2 })
	for range 10 {
		go func() { _, err := ks.VerifySignature(ctx, jws); errs <- err }()
	}
	release()
	for range 20 {
		if err := <-errs; err != nil {
			t.Errorf("verify after the rotation: %v", err)
		}
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want the first load and one shared refetch", n)
	}
}
