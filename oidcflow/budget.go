package oidcflow

import (
	"sync"
	"time"
)

// budget bounds the introspections of tokens the cache doesn't know: a
// token bucket of rate per second, holding at most rate. Anyone can send
// made-up opaque tokens, and without it each would cost an IdP call
// (1,000 random tokens in 5 s made 999 calls).
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

// maxTokenBytes bounds a bearer token we verify at all: JWTs with many
// roles run to a few KiB; Envoy's own header limit is 60 KiB.
const maxTokenBytes = 16 << 10

// plausibleToken: RFC 6750 §2.1's b64token, ALPHA / DIGIT / "-" / "." /
// "_" / "~" / "+" / "/" followed by "=" padding, of a sane length. Anything
// else can't be an access token of any IdP and is refused without a call.
func plausibleToken(token string) bool {
	if len(token) < 8 || len(token) > maxTokenBytes {
		return false
	}
	padding := false
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case c == '=':
			padding = true
		case padding:
			return false // only "=" after the first "="
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}
