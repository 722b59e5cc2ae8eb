package oidcflow

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

// maxResponseBytes bounds every body read from the IdP; a hostile or broken
// IdP can't make us buffer more.
const maxResponseBytes = 1 << 20

// NewHTTPClient returns the one HTTP client for an IdP: pooled connections,
// dial and overall timeouts, and response bodies cut at 1 MiB. Build it once
// and share it (discovery, JWKS, token, userinfo).
func NewHTTPClient(timeout time.Duration) *http.Client {
	return NewHTTPClientDialing(timeout, nil)
}

// NewHTTPClientDialing is NewHTTPClient with connect addresses replaced:
// a connection to a "host:port" key of dial goes to its value instead,
// while URLs, Host headers and TLS names stay as they are. Containers use it
// to reach an IdP whose issuer names a host only the browser can resolve
// (http://localhost:8080 dialled as zitadel:8080).
func NewHTTPClientDialing(timeout time.Duration, dial map[string]string) *http.Client {
	var dm *DialMap
	if len(dial) > 0 {
		dm = &DialMap{}
		dm.Set(dial)
	}
	return NewHTTPClientDialMap(timeout, dm)
}

// DialMap is a dial map that can change while its client is in use (a
// reload adds an app whose issuer is dialled elsewhere).
type DialMap struct {
	m atomic.Pointer[map[string]string]
}

// Set replaces the map.
func (d *DialMap) Set(m map[string]string) { d.m.Store(&m) }

func (d *DialMap) to(addr string) string {
	if m := d.m.Load(); m != nil {
		if to, ok := (*m)[addr]; ok {
			return to
		}
	}
	return addr
}

// NewHTTPClientDialMap is NewHTTPClientDialing with a DialMap (nil: none).
func NewHTTPClientDialMap(timeout time.Duration, dial *DialMap) *http.Client {
	return NewIdPClient(timeout, dial, nil)
}

// NewIdPClient is NewHTTPClientDialMap with the TLS settings for the IdP
// (provider_ca_files, ssl_insecure_skip_verify); nil: the system's.
func NewIdPClient(timeout time.Duration, dial *DialMap, tlsConfig *tls.Config) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	dialContext := dialer.DialContext
	if dial != nil {
		dialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, dial.to(addr))
		}
	}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   32,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: timeout,
		TLSClientConfig:       tlsConfig,
	}
	return &http.Client{
		Timeout:   timeout,
		Transport: limitedTransport{transport},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			// IdP API endpoints never redirect; following one could leak the
			// client's Authorization header to another host.
			return http.ErrUseLastResponse
		},
	}
}

// DialFor is the dial map of NewHTTPClientDialing that sends connections
// for u's host (with the scheme's default port made explicit, as an
// http.Transport dials it) to addr.
func DialFor(u *url.URL, addr string) map[string]string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return map[string]string{net.JoinHostPort(u.Hostname(), port): addr}
}

type limitedTransport struct{ next http.RoundTripper }

func (t limitedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{r: io.LimitReader(resp.Body, maxResponseBytes+1), c: resp.Body}
	return resp, nil
}

// errBodyTooLarge surfaces as a read error, so decoders fail instead of
// parsing a truncated document.
var errBodyTooLarge = errors.New("identity provider response exceeds 1 MiB")

type limitedBody struct {
	r io.Reader
	c io.Closer
	n int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n > maxResponseBytes {
		return 0, errBodyTooLarge
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.c.Close() }
