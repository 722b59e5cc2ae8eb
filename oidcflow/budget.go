package oidcflow

import (
	"sync"
	"time"
)

// budget bounds the introspections of tokens the cache doesn't know: a
// token bucket of rate per second, holding at most rate. Anyone can send
// made-up opaque tokens, none of them cached yet, so without it a flood of
// them is a flood of IdP calls.
type budget struct {
	mu     sync.Mutex
	rate   float64 // per second
	tokens float64
	last   time.Time
}

// newBudget is a budget of perSecond; nil (unbounded) for 0 or less.
func newBudget(perSecond int) *budget {
	if perSecond <= 0 {
		return nil
	}
	return &budget{rate: float64(perSecond), tokens: float64(perSecond)}
}

// take spends one introspection at now; false when the budget is spent.
func (b *budget) take(now time.Time) bool {
	if b == nil {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() && now.After(b.last) {
		b.tokens = min(b.rate, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	if now.After(b.last) {
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
