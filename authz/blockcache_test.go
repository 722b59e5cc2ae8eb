package authz

import (
	"fmt"
	"testing"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
)

// Without a decoded-session cache, a session in use keeps its rendered
// block (and signed assertion) however many other sign-ins fill the block
// cache, which stays within its bound and lets go of the unused ones.
func TestBlockCacheKeepsTheBlocksInUse(t *testing.T) {
	c := &blockCache{}
	slot := func(login string) memo {
		return c.slot(&sessionpb.Session{LoginId: login, RefreshedAt: 1_700_000_000, IdToken: "header.payload.signature-of-" + login})
	}
	inUse := slot("in-use")
	inUse.SetMemo("block in use")
	const others = 3 * blockCacheMax
	for i := range others {
		slot(fmt.Sprint("other-", i)).SetMemo(i)
		if n := c.len(); n > blockCacheMax {
			t.Fatalf("after %d sign-ins the cache keeps %d blocks, bound %d", i+1, n, blockCacheMax)
		}
		if i%100 == 99 {
			if got := inUse.Memo(); got != "block in use" {
				t.Fatalf("after %d other sign-ins the session in use lost its block (got %v): it would be rendered and signed again", i+1, got)
			}
		}
	}
	if got := slot("other-0").Memo(); got != nil {
		t.Errorf("a block unused for %d sign-ins is still kept: %v", others, got)
	}
	if got := slot(fmt.Sprint("other-", others-1)).Memo(); got != others-1 {
		t.Errorf("the newest block: got %v", got)
	}
	// A refresh is a new entry: the block from before it is never answered.
	refreshed := c.slot(&sessionpb.Session{LoginId: "in-use", RefreshedAt: 1_700_000_600, IdToken: "header.payload.signature-after-refresh"})
	if got := refreshed.Memo(); got != nil {
		t.Errorf("a refreshed session got the block from before its refresh: %v", got)
	}
}
