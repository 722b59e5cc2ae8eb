package idjwt

import (
	"encoding/json"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Ring holds the keys in force, which a reload replaces (a cookie secret
// rotated, a key file changed), and publishes them in a JWKS together with
// the keys it retired until every assertion they signed has expired.
type Ring struct {
	now     func() time.Time
	mu      sync.Mutex
	keys    Keys
	retired []retired
	jwks    []byte
}

type retired struct {
	key   Key
	until time.Time
}

// NewRing starts with keys (now: the clock, for retirement).
func NewRing(keys Keys, now func() time.Time) *Ring {
	r := &Ring{now: now, keys: keys}
	r.render()
	return r
}

// Set replaces the keys in force; a key no longer among them stays in the
// JWKS for Lifetime.
func (r *Ring) Set(keys Keys) {
	r.mu.Lock()
	defer r.mu.Unlock()
	until := r.now().Add(Lifetime)
	for _, k := range r.keys {
		if !slices.ContainsFunc(keys, func(n Key) bool { return n.ID == k.ID }) {
			r.retired = append(r.retired, retired{k, until})
		}
	}
	r.retired = slices.DeleteFunc(r.retired, func(old retired) bool {
		return slices.ContainsFunc(keys, func(n Key) bool { return n.ID == old.key.ID })
	})
	r.keys = keys
	r.render()
}

// Sign mints an assertion with the signing key in force.
func (r *Ring) Sign(c *Claims) (string, error) {
	r.mu.Lock()
	keys := r.keys
	r.mu.Unlock()
	return keys.Sign(c)
}

// JWKS is the key set as JSON: the keys in force, then the retired ones
// not yet past their time.
func (r *Ring) JWKS() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	if slices.ContainsFunc(r.retired, func(old retired) bool { return !now.Before(old.until) }) {
		r.retired = slices.DeleteFunc(r.retired, func(old retired) bool { return !now.Before(old.until) })
		r.render()
	}
	return r.jwks
}

// render rebuilds the JWKS; the caller holds mu.
func (r *Ring) render() {
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, 0, len(r.keys)+len(r.retired))}
	for _, k := range r.keys {
		set.Keys = append(set.Keys, k.public())
	}
	for _, old := range r.retired {
		set.Keys = append(set.Keys, old.key.public())
	}
	r.jwks, _ = json.Marshal(set)
}
