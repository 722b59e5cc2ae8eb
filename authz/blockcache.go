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
// never answered from an older block.
//
// Bounded in two generations: when the newer one is full it becomes the
// older and the older is dropped, and a block found in the older moves to
// the newer. A session in use keeps its block, and a full cache never
// sends every session back to be rendered and signed at once (it was
// emptied when full until 2026-12-07). The zero value is ready to use.
type blockCache struct {
	mu           sync.Mutex
	newer, older map[blockKey]any
}

// blockKey is one sign-in as of its last refresh: a struct of the
// session's own strings, so finding a block allocates nothing.
type blockKey struct {
	loginID     string
	refreshedAt int64
	idTokenTail string // the ID token's signature changes with every refresh that brings new claims, even two within one second
}

// blockCacheMax bounds the entries of both generations (a block is
// about 2 KB).
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
	c := s.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.newer[s.key]; ok {
		return v
	}
	v, ok := c.older[s.key]
	if ok {
		delete(c.older, s.key)
		c.put(s.key, v)
	}
	return v
}

func (s blockSlot) SetMemo(v any) {
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	s.c.put(s.key, v)
}

// put keeps v in the newer generation, which, when full, becomes the
// older first (the older's entries are dropped). c.mu is held.
func (c *blockCache) put(k blockKey, v any) {
	if c.newer == nil {
		c.newer, c.older = map[blockKey]any{}, map[blockKey]any{}
	}
	if len(c.newer) >= blockCacheMax/2 {
		clear(c.older)
		c.newer, c.older = c.older, c.newer
	}
	c.newer[k] = v
}

// len is how many blocks c keeps.
func (c *blockCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.newer) + len(c.older)
}
