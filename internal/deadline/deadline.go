// Package deadline bounds the I/O a Check does (the IdP, the session
// store) so that our answer reaches Envoy before Envoy's own deadline
// (the ext_authz filter timeout, sent as the gRPC deadline): a call gets
// at most its own limit and at most the caller's deadline less Margin.
// Without the margin, a stalled IdP or Redis would let Envoy time out and
// answer status_on_error itself, without our page or retry-after.
package deadline

import (
	"context"
	"time"
)

// Margin is kept free before the caller's deadline for our answer to
// travel back.
const Margin = 50 * time.Millisecond

// Within returns ctx bounded by limit (when > 0) and by ctx's deadline
// less Margin, at least 1 ms.
func Within(ctx context.Context, limit time.Duration) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok {
		left := time.Until(dl) - Margin
		if limit <= 0 || left < limit {
			limit = left
		}
	}
	if limit <= 0 {
		if _, ok := ctx.Deadline(); !ok {
			return context.WithCancel(ctx)
		}
		limit = time.Millisecond
	}
	return context.WithTimeout(ctx, limit)
}
