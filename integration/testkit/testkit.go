// Package testkit is the small kit the tests share: a fake clock for code
// that takes a now func, polling to a deadline instead of sleeping for
// synchronisation, and an HTTP client that shows redirects instead of
// following them. The dev IdP's StartT (integration/devidp) belongs with
// it. Product code never imports this tree.
package testkit

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Clock is a fake clock: Now stays until Add moves it.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock starts a clock at t0.
func NewClock(t0 time.Time) *Clock { return &Clock{now: t0} }

// Now is the clock's time; pass it where code takes a now func.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Add moves the clock.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Eventually polls cond every 10 ms until it holds, and fails the test
// naming what it waited for once within has passed.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond) // polling to a deadline
	}
}

// NoRedirects is a client that returns redirects to the caller (to look at
// a Location and its cookies) instead of following them.
//
// Its transport connects every NAME.localhost to 127.0.0.1, as browsers do
// (RFC 6761 §6.3; Go's resolver asks DNS), so tests reach apps by host name.
func NoRedirects() *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: localhostTransport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

var localhostTransport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if host, port, err := net.SplitHostPort(addr); err == nil && strings.HasSuffix(host, ".localhost") {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return dialer.DialContext(ctx, network, addr)
	}
	return t
}()

// Buffer collects output written from several goroutines (a process's
// stdout and stderr, a logger).
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// FreePort is a TCP port on 127.0.0.1 that was free a moment ago (for
// processes that take a port number rather than a listener).
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// WaitHTTP polls url until it answers 200, the process behind it exits
// (exited closes) or within passes.
func WaitHTTP(url string, exited <-chan struct{}, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("exited before %s answered", url)
		case <-time.After(50 * time.Millisecond): // polling to a deadline
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer 200 within %s", url, within)
		}
	}
}

// RedisPing reports whether a plain-text Redis at addr answers PING (or
// asks for a password: it is up).
func RedisPing(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	fmt.Fprint(c, "PING\r\n")
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH")
}
