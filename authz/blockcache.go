package authz

import (
	"sync"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
)

// blockCache keeps the rendered identity blocks (and with them the signed
// assertion) of sessions when the Jar caches no decoded sessions
// (session_cache_max_bytes = 0): without it every Check would render the
// headers and sign an assertion (about 50 µs) anew. An entry is one
// sign-in as of its last refresh, so a refresh's new roles or claims are
// never answered from an older block. Bounded: emptied when full.
type blockCache struct {
	mu sync.Mutex
	m  map[blockKey]any
}

// blockKey is one sign-in as of its last refresh: a struct of the
// session's own strings, so finding a block allocates nothing.
type blockKey struct {
	loginID     string
	refreshedAt int64
	idTokenTail string // the ID token's signature changes with every refresh that brings new claims, even two within one second
}

// blockCacheMax bounds the entries (a block is about 2 KB).
const blockCacheMax = 10_000

// slot is sess's place in c, as a memo; nil for a session without a
// sign-in id (written before login ids existed), which is never kept.
func (c *blockCache) slot(sess *sessionpb.Session) memo {
	id := sess.GetLoginId()
	if id == "" {
		return nil
	}
	tok := sess.GetIdToken()
	return blockSlot{c, blockKey{id, sess.GetRefreshedAt(), tok[max(len(tok)-16, 0):]}}
}

type blockSlot struct {
	c   *blockCache
	key blockKey
}

func (s blockSlot) Memo() any {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	return s.c.m[s.key]
}

func (s blockSlot) SetMemo(v any) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	if len(s.c.m) >= blockCacheMax {
		clear(s.c.m)
	}
	s.c.m[s.key] = v
}
