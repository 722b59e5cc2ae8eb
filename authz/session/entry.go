package session

import (
	"hash/maphash"
	"sync/atomic"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
)

// Cache keeps decoded sessions. Its methods are ristretto's, so
// *ristretto.Cache[string, *Entry] plugs in directly; build it with
// KeyToHash. Keys are cookie values (cookie mode) or ticket ids (the redis
// mode L1). Cached entries are shared and must not be modified.
type Cache interface {
	Get(key string) (*Entry, bool)
	SetWithTTL(key string, value *Entry, cost int64, ttl time.Duration) bool
	Del(key string)
	Clear()
}

// Entry is a decoded session: the key it was decoded from (the cookie
// value or the ticket id), the session, and a memo where the caller keeps
// what it derives from the session (authz keeps the rendered identity
// headers there), so that work is done once per cached session.
type Entry struct {
	key     string
	app     uint64 // the Jar's app (WithApp): one cache serves every app
	Session *sessionpb.Session
	memo    atomic.Value
}

// NewEntry wraps a session that isn't cached (its memo lives as long as it).
func NewEntry(s *sessionpb.Session) *Entry { return &Entry{Session: s} }

// Memo returns what SetMemo stored, or nil.
func (e *Entry) Memo() any { return e.memo.Load() }

// SetMemo stores v; every call must store the same type.
func (e *Entry) SetMemo(v any) { e.memo.Store(v) }

// cacheSeed keys KeyToHash per process: nobody outside can predict which
// keys collide.
var cacheSeed = maphash.MakeSeed()

// KeyToHash is the cache's hash of a key: one pass of a fast keyed hash
// (maphash, seeded per process) over the cookie value, no cryptographic hash
// per Check. A collision can't serve another user's session: the cache
// returns an entry by hash alone (the conflict hash is 0, so ristretto
// doesn't check it), and lookup compares the entry's key with the cookie in
// full; a mismatch is a miss and the cookie is decrypted as usual.
func KeyToHash(key string) (uint64, uint64) {
	return maphash.String(cacheSeed, key), 0
}

// lookup returns the cached session for key, or nil: only an entry
// decoded from exactly key (see KeyToHash) by the Jar of app.
func lookup(c Cache, key string, app uint64) *Entry {
	e, ok := c.Get(key)
	if !ok || e == nil || e.key != key || e.app != app {
		return nil
	}
	return e
}
