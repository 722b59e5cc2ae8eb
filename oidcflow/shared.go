package oidcflow

import (
	"context"
	"fmt"
)

// sharedCall runs fn once for every concurrent caller with the same key
// (singleflight). fn runs detached from any one caller's cancellation, so
// the first caller leaving doesn't fail the others, bounded by the call
// timeout (idp_timeout); each caller waits only until its own ctx ends,
// which is then an ErrIdPUnavailable naming what. shared is true when the
// result came from another caller's call.
func (p *Provider) sharedCall(ctx context.Context, what, key string, fn func(ctx context.Context) (any, error)) (v any, shared bool, err error) {
	ch := p.flights.DoChan(key, func() (any, error) {
		callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.CallTimeout)
		defer cancel()
		return fn(callCtx)
	})
	select {
	case <-ctx.Done():
		return nil, false, fmt.Errorf("%s: %w: %w", what, ErrIdPUnavailable, ctx.Err())
	case r := <-ch:
		return r.Val, r.Shared, r.Err
	}
}
