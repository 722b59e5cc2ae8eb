package integration_test

import (
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stallProxy forwards TCP to a backend until Stall: from then on it accepts
// and reads but never answers, like a Redis or an IdP that hangs.
type stallProxy struct {
	ln      net.Listener
	stalled atomic.Bool
	mu      sync.Mutex
	conns   []net.Conn
}

func startStallProxy(t *testing.T, backend string) *stallProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln}
	t.Cleanup(p.close)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c)
			p.mu.Unlock()
			go p.serve(c, backend)
		}
	}()
	return p
}

func (p *stallProxy) Addr() string { return p.ln.Addr().String() }

// Stall makes every connection, open or new, hang from now on.
func (p *stallProxy) Stall() { p.stalled.Store(true) }

func (p *stallProxy) serve(c net.Conn, backend string) {
	b, err := net.Dial("tcp", backend)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns = append(p.conns, b)
	p.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if err != nil {
				dst.Close()
				return
			}
			if p.stalled.Load() {
				io.Copy(io.Discard, src) // swallow, never answer
				return
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
	}
	go pipe(b, c)
	pipe(c, b)
}

func (p *stallProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// answeredWithin checks an answer came from us (not Envoy's own
// status_on_error after its deadline): the wanted status, a retry-after for
// 503s, within the filter timeout.
func answeredWithin(t *testing.T, what string, r *response, took, timeout time.Duration, status int) {
	t.Helper()
	if r.StatusCode != status || took >= timeout {
		t.Fatalf("%s: %s after %s, want our %d within Envoy's %s deadline", what, describe(r), took, status, timeout)
	}
	if status == http.StatusServiceUnavailable && r.Header.Get("Retry-After") == "" {
		t.Fatalf("%s: a 503 without retry-after is Envoy's status_on_error, not ours: %s", what, describe(r))
	}
}

// Envoy's Check deadline bounds a Redis that stalls: the Check answers our
// 503 with retry-after before Envoy gives up, with bearer tokens on and off.
func TestStalledRedisAnswersWithinTheDeadline(t *testing.T) {
	for _, bearer := range []bool{false, true} {
		t.Run(map[bool]string{false: "bearer tokens off", true: "bearer tokens on"}[bearer], func(t *testing.T) {
			rd := startRedis(t)
			proxy := startStallProxy(t, rd.addr)
			const timeout = time.Second // Envoy's filter timeout; the store's own bound is 2 s
			st := startStack(t, stackOptions{timeout: timeout, config: map[string]any{
				"session_store_type": "redis", "redis_url": "redis://" + proxy.Addr(),
				"session_cache_max_bytes": 0, // no L1: every Check reads Redis
				"skip_jwt_bearer_tokens":  bearer,
			}})
			b := newBrowser(t, "alice", "alice-password")
			upstreamSaw(t, st.login(t, b, "/"))
			proxy.Stall()
			start := time.Now()
			r := b.get(st.Front.URL + "/while-redis-hangs")
			answeredWithin(t, "a Check while Redis hangs", r, time.Since(start), timeout, http.StatusServiceUnavailable)
		})
	}
}

// Envoy's Check deadline bounds a refresh that stalls at the IdP, however
// long idp_timeout is: the session's access token is still valid, so the
// request is allowed (README "Failure"), before Envoy gives up; with bearer
// tokens on and off (idp_timeout bounds the shared refresh call either way).
func TestStalledRefreshAnswersWithinTheDeadline(t *testing.T) {
	for _, bearer := range []bool{false, true} {
		t.Run(map[bool]string{false: "bearer tokens off", true: "bearer tokens on"}[bearer], func(t *testing.T) {
			const timeout = time.Second
			st := startStack(t, stackOptions{timeout: timeout, config: map[string]any{
				"cookie_refresh": "1ms", "refresh_grace_period": "0s", // every Check refreshes
				"idp_timeout":            "30s",
				"skip_jwt_bearer_tokens": bearer,
			}})
			b := newBrowser(t, "alice", "alice-password")
			upstreamSaw(t, st.login(t, b, "/"))
			st.IdP.HangToken()
			defer st.IdP.Release()
			start := time.Now()
			r := b.get(st.Front.URL + "/while-the-idp-hangs")
			answeredWithin(t, "a refreshing Check while the IdP hangs", r, time.Since(start), timeout, http.StatusOK)
		})
	}
}
