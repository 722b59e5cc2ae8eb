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
	"golang.org/x/sync/singleflight"
)

// minRefetchInterval limits JWKS refetches caused by unknown kids, so tokens
// with random kids can't turn into a request storm against the IdP.
const minRefetchInterval = 10 * time.Second

// keySet is the IdP's JWKS: cached, refetched on an unknown kid (ZITADEL
// rotates keys without notice), at most once per minRefetchInterval, with
// concurrent refetches collapsed into one call. It implements oidc.KeySet.
type keySet struct {
	client *http.Client
	url    string
	now    func() time.Time

	keys      atomic.Pointer[[]jose.JSONWebKey]
	fetches   singleflight.Group
	mu        sync.Mutex
	lastFetch time.Time
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
	if !k.mayRefetch() {
		return nil, fmt.Errorf("no key %q in the JWKS (refetch rate-limited)", keyID)
	}
	keys, err := k.fetch(ctx)
	if err != nil {
		return nil, err
	}
	key, err := oidc.FindMatchingKey(keyID, oidc.KeyUseSignature, alg, keys...)
	if err != nil {
		return nil, fmt.Errorf("no key %q in the JWKS: %w", keyID, err)
	}
	return jws.Verify(&key)
}

func (k *keySet) mayRefetch() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.lastFetch.IsZero() && k.now().Sub(k.lastFetch) < minRefetchInterval {
		return false
	}
	k.lastFetch = k.now()
	return true
}

// fetch loads the JWKS. Concurrent callers share one request; it runs
// detached from any one caller's cancellation, bounded by the client timeout.
func (k *keySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	ch := k.fetches.DoChan("jwks", func() (any, error) {
		return k.load(context.WithoutCancel(ctx))
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("fetch jwks: %w: %w", ErrIdPUnavailable, ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.([]jose.JSONWebKey), nil
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
