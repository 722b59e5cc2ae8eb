package integration_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/telemetry"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/echo"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
	"google.golang.org/grpc"
)

// fakeClock is the clock of an in-process server: tests move time without
// waiting. The dev IdP keeps real time; token lifetimes reach us as
// expires_in, so they are measured on this clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// inproc is the stack with zitadel-ext-authz built in-process (same parts as
// cmd, plus a fake clock), still behind the Envoy emulator over gRPC.
type inproc struct {
	IdP      *devidp.Server
	Provider *oidcflow.Provider
	Jar      *session.Jar
	Clock    *fakeClock
	Front    string
	Logs     *syncBuffer
}

type inprocOptions struct {
	idp     *devidp.Server // shared IdP (secret rotation), else a new one
	clock   *fakeClock
	secrets []string
	cfg     func(*authz.Config)
	tracing *telemetry.Tracing // nil: no tracing
	metrics *telemetry.Metrics // nil: none
}

func startInProcess(t *testing.T, o inprocOptions) *inproc {
	t.Helper()
	ip := &inproc{IdP: o.idp, Clock: o.clock, Logs: &syncBuffer{}}
	if ip.IdP == nil {
		idp, err := devidp.Start(devidp.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { idp.Close() })
		ip.IdP = idp
	}
	if ip.Clock == nil {
		ip.Clock = &fakeClock{now: time.Now()}
	}
	logger := newTestLogger(ip.Logs)
	refreshCache, err := ristretto.NewCache(&ristretto.Config[string, *oidcflow.RefreshEntry]{NumCounters: 1000, MaxCost: 1 << 20, BufferItems: 64})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(refreshCache.Close)
	c := devidp.DefaultClient()
	idpClient := oidcflow.NewHTTPClient(10 * time.Second)
	var grpcOpts []grpc.ServerOption
	var authzOpts []authz.Option
	if o.tracing != nil {
		idpClient.Transport = o.tracing.Transport(idpClient.Transport)
		grpcOpts = append(grpcOpts, grpc.UnaryInterceptor(o.tracing.UnaryInterceptor()))
	}
	if o.metrics != nil {
		authzOpts = append(authzOpts, authz.WithObserver(o.metrics))
	}
	ip.Provider, err = oidcflow.New(oidcflow.Config{Issuer: ip.IdP.Issuer, ClientID: c.ID, ClientSecret: c.Secret, Scopes: []string{"openid", "email", "profile", "offline_access"}},
		oidcflow.WithClock(ip.Clock.Now), oidcflow.WithRefreshCache(refreshCache, time.Minute), oidcflow.WithLogger(logger), oidcflow.WithHTTPClient(idpClient))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ip.Provider.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(10 * time.Second); !ip.Provider.Ready(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("provider not ready")
		}
	}
	secrets := o.secrets
	if len(secrets) == 0 {
		secrets = []string{testCookieSecret}
	}
	var keys [][]byte
	for _, s := range secrets {
		k, err := session.DecodeSecret(s)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	codec, err := session.NewCodec(keys...)
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := ristretto.NewCache(&ristretto.Config[string, *sessionpb.Session]{NumCounters: 1000, MaxCost: 1 << 20, BufferItems: 64})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sessions.Close)
	ip.Jar = session.NewJar(codec, session.Options{}, session.WithCache(sessions), session.WithClock(ip.Clock.Now))
	cfg := authz.Config{EmailDomains: []string{"*"}, SkipProviderButton: true, PassUserHeaders: true, RefreshBeforeExpiry: time.Minute, IDPTimeout: 5 * time.Second}
	if o.cfg != nil {
		o.cfg(&cfg)
	}
	srv, err := authz.New(cfg, ip.Provider, ip.Jar, append(authzOpts, authz.WithClock(ip.Clock.Now), authz.WithLogger(logger))...)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(grpcOpts...)
	authv3.RegisterAuthorizationServer(gs, srv)
	go gs.Serve(ln)
	t.Cleanup(gs.Stop)
	upstream := httptest.NewServer(echo.Handler())
	t.Cleanup(upstream.Close)
	ip.Front = startFront(t, frontOptions{grpcAddr: ln.Addr().String(), upstream: upstream.URL}).URL
	return ip
}

// session decodes the session cookie a browser holds.
func (ip *inproc) session(t *testing.T, b *browser) *sessionpb.Session {
	t.Helper()
	u, _ := url.Parse(ip.Front)
	cookies := map[string]string{}
	for _, c := range b.jar.Cookies(u) {
		cookies[c.Name] = c.Value
	}
	s, _, err := ip.Jar.Load(t.Context(), cookies)
	if err != nil {
		t.Fatalf("the browser holds no valid session: %v", err)
	}
	return s
}

// cookieHeader is the Cookie header a browser would send to the front.
func cookieHeader(b *browser, front string) string {
	u, _ := url.Parse(front)
	var parts []string
	for _, c := range b.jar.Cookies(u) {
		parts = append(parts, c.Name+"="+c.Value)
	}
	return joinCookies(parts)
}

func joinCookies(parts []string) string {
	out := ""
	for i, p := range parts {
		if i > 0 {
			out += "; "
		}
		out += p
	}
	return out
}

// rawGet sends one request with exactly this Cookie header (no jar).
func rawGet(t *testing.T, target, cookie string, accept string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("Cookie", cookie)
	req.Header.Set("Accept", accept)
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}
