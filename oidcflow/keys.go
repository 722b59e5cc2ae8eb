package oidcflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// minRefetchInterval limits JWKS refetches caused by unknown kids in
// untrusted input (bearer tokens, logout tokens), so tokens with random kids
// can't turn into a request storm against the IdP.
const minRefetchInterval = 10 * time.Second

// keySet is the IdP's JWKS: cached, refetched on an unknown kid (ZITADEL
// rotates keys without notice). It implements oidc.KeySet.
//
// A refetch is always allowed for an ID token we just received from the
// token endpoint ourselves (a code exchange or a refresh: trustedKeys on the
// context), so a login right after a rotation never fails; these are
// bounded by the logins and refreshes that succeed at the IdP. Untrusted
// input gets at most one refetch per minRefetchInterval. Concurrent
// refetches, of either kind, share one request.
type keySet struct {
	client *http.Client
	url    string
	now    func() time.Time

	keys      atomic.Pointer[[]jose.JSONWebKey]
	mu        sync.Mutex
	lastFetch time.Time
	inflight  *keyFetch // guarded by mu
}

// keyFetch is one JWKS request that concurrent callers wait for.
type keyFetch struct {
	done chan struct{}
	keys []jose.JSONWebKey
	err  error
}

type trustedKeysKey struct{}

// trustedKeys marks ctx as verifying a token that came straight from the
// IdP's token endpoint over our own request.
func trustedKeys(ctx context.Context) context.Context {
	return context.WithValue(ctx, trustedKeysKey{}, true)
}

func newKeySet(client *http.Client, url string, now func() time.Time) *keySet {
	k := &keySet{client: client, url: url, now: now}
	k.keys.Store(&[]jose.JSONWebKey{})
	return k
}

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, jws *jose.JSONWebSignature) ([]byte, error) {
	keyID, alg := oidc.GetKeyIDAndAlg(jws)
	if key, err := oidc.FindMatchingKey(keyID, oidc.KeyUseSignature, alg, *k.keys.Load()...); err == nil {
		return jws.Verify(&key)
	}
	trusted, _ := ctx.Value(trustedKeysKey{}).(bool)
	f := k.refetch(ctx, trusted)
	if f == nil {
		return nil, fmt.Errorf("no key %q in the JWKS (refetch rate-limited)", keyID)
	}
	keys, err := f.wait(ctx)
	if err != nil {
		return nil, err
	}
	key, err := oidc.FindMatchingKey(keyID, oidc.KeyUseSignature, alg, keys...)
	if err != nil {
		return nil, fmt.Errorf("no key %q in the JWKS: %w", keyID, err)
	}
	return jws.Verify(&key)
}

// refetch joins the JWKS request in flight, or starts one when allowed:
// always for trusted callers, at most once per minRefetchInterval for the
// others. nil: not allowed.
func (k *keySet) refetch(ctx context.Context, trusted bool) *keyFetch {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.inflight != nil {
		return k.inflight
	}
	if !trusted && !k.lastFetch.IsZero() && k.now().Sub(k.lastFetch) < minRefetchInterval {
		return nil
	}
	k.lastFetch = k.now()
	f := &keyFetch{done: make(chan struct{})}
	k.inflight = f
	go func() {
		// Detached from any one caller's cancellation (its trace stays),
		// bounded by the client's timeout.
		f.keys, f.err = k.load(context.WithoutCancel(ctx))
		k.mu.Lock()
		k.inflight = nil
		k.mu.Unlock()
		close(f.done)
	}()
	return f
}

func (f *keyFetch) wait(ctx context.Context) ([]jose.JSONWebKey, error) {
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("fetch jwks: %w: %w", ErrIdPUnavailable, ctx.Err())
	case <-f.done:
		return f.keys, f.err
	}
}

func (k *keySet) load(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(withCall(ctx, CallJWKS), http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w", err)
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch jwks: %w: %w", ErrIdPUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch jwks: %w: status %d", ErrIdPUnavailable, resp.StatusCode)
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		return nil, fmt.Errorf("fetch jwks: %w: %w", ErrIdPUnavailable, err)
	}
	keys := make([]jose.JSONWebKey, 0, len(raw.Keys))
	for _, r := range raw.Keys {
		var key jose.JSONWebKey
		// Keys of a type go-jose doesn't know are skipped, not fatal.
		if err := key.UnmarshalJSON(r); err == nil && key.Valid() && key.IsPublic() {
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("fetch jwks: %w: no usable public keys", ErrIdPUnavailable)
	}
	k.keys.Store(&keys)
	k.mu.Lock()
	k.lastFetch = k.now()
	k.mu.Unlock()
	return keys, nil
}

// errNotReady is wrapped onto ErrIdPUnavailable while discovery is pending.
var errNotReady = errors.New("discovery has not completed yet")
