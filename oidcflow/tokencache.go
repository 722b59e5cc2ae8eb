package oidcflow

import "time"

// TokenEntry is one cached verification outcome: a Bearer, or Invalid.
// Cached entries are shared and must not be modified.
type TokenEntry struct {
	Bearer  *Bearer
	Invalid bool      // a negative result (active:false, bad signature, expired, …)
	Until   time.Time // the entry is valid until then (checked with the injected clock)
}

// TokenCache caches verification outcomes keyed by SHA-256 of the token,
// never the token itself. Its methods are ristretto's, so
// *ristretto.Cache[string, *TokenEntry] plugs in directly.
//
// Wait is called after each Set (a miss, already paying for an IdP call or
// a signature check): ristretto applies sets asynchronously, and the next
// Check with the same token must hit, not introspect again.
type TokenCache interface {
	Get(key string) (*TokenEntry, bool)
	SetWithTTL(key string, value *TokenEntry, cost int64, ttl time.Duration) bool
	Wait()
}

// result is the entry as Authenticate answers it.
func (e *TokenEntry) result() (*Bearer, error) {
	if e.Invalid {
		return nil, ErrInvalidToken
	}
	return e.Bearer, nil
}

// remember caches e under key until e.Until.
func (p *Provider) remember(key string, e *TokenEntry) {
	if p.tokens == nil {
		return
	}
	ttl := e.Until.Sub(p.now())
	if ttl <= 0 {
		return
	}
	// The cost is the entry's real memory: the key, our TokenEntry and
	// ristretto's own bookkeeping (store item, map and expiry bucket
	// entries), about 250 bytes measured by make bench's token flood.
	cost := int64(len(key) + entryOverhead)
	if e.Bearer != nil {
		cost += int64(bearerSize(e.Bearer))
	}
	// ristretto drops a Set when its buffer is full (under load): try again,
	// so the next Check with this token hits instead of calling the IdP.
	for range 3 {
		if p.tokens.SetWithTTL(key, e, cost, ttl) {
			break
		}
	}
	p.tokens.Wait()
}

// entryOverhead is the memory of a cached entry beyond its key and Bearer.
const entryOverhead = 224

// bearerSize estimates the memory a cached Bearer holds beyond
// entryOverhead: its strings and their slice headers.
func bearerSize(b *Bearer) int {
	n := 128 + len(b.ClientID) + len(b.Identity.Subject) + len(b.Identity.User) + len(b.Identity.Email) + len(b.Identity.PreferredUsername)
	for _, g := range b.Identity.Groups {
		n += len(g) + 16
	}
	for _, s := range b.Scopes {
		n += len(s) + 16
	}
	for _, a := range b.Audiences {
		n += len(a) + 16
	}
	return n
}
