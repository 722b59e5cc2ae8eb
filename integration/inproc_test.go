package integration_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/config"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/telemetry"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/wiring"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/echo"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
)

// inproc is the stack with zitadel-ext-authz built in-process by the same
// wiring as the binary (cmd/zitadel-ext-authz/wiring) but with a fake
// clock, behind the front proxy over gRPC.
type inproc struct {
	IdP      *devidp.Server
	Provider *oidcflow.Provider
	Jar      *session.Jar
	Clock    *testkit.Clock
	Front    string
	Logs     *syncBuffer
}

type inprocOptions struct {
	idp     *devidp.Server // shared IdP (secret rotation), else a new one
	clock   *testkit.Clock
	config  map[string]any     // overrides of baseConfig, as in a config file
	tracing *telemetry.Tracing // nil: no tracing
	metrics *telemetry.Metrics // nil: none
}

func startInProcess(t *testing.T, o inprocOptions) *inproc {
	t.Helper()
	ip := &inproc{IdP: o.idp, Clock: o.clock, Logs: &syncBuffer{}}
	if ip.IdP == nil {
		ip.IdP = devidp.StartT(t, devidp.Options{})
	}
	if ip.Clock == nil {
		ip.Clock = testkit.NewClock(time.Now())
	}
	values := baseConfig(ip.IdP.Issuer)
	for k, v := range o.config {
		values[k] = v
	}
	cfg, _, err := config.Load([]string{"--config", writeConfig(t, values)}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	deps := wiring.Deps{Logger: newTestLogger(ip.Logs), Metrics: o.metrics, Clock: ip.Clock.Now}
	var interceptors []grpc.UnaryServerInterceptor
	if o.tracing != nil {
		deps.Transport = o.tracing.Transport
		interceptors = append(interceptors, o.tracing.UnaryInterceptor())
	}
	// The binary's graph and gRPC server (cmd/zitadel-ext-authz composes
	// the same two units), with this test's clock.
	built, err := wiring.Build(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := built.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { built.Stop(context.Background()) })
	def := built.App(config.DefaultAppName)
	ip.Provider, ip.Jar = def.Provider, def.Jar
	waitFor(t, "the provider ready", ip.Provider.Ready)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := wiring.NewGRPCServer(built.Router, health.NewServer(), interceptors...)
	go wiring.ServeGRPC(gs, ln)
	t.Cleanup(gs.Stop)
	upstream := httptest.NewServer(echo.Handler())
	t.Cleanup(upstream.Close)
	// Envoy sends the headers this configuration reads, and with tracing
	// the trace context (the binary's otlp_endpoint).
	read := config.HeaderNames(cfg.RequestHeaders())
	if o.tracing != nil {
		read = append(read, config.TraceHeaders...)
	}
	ip.Front = startFront(t, frontOptions{grpcAddr: ln.Addr().String(), upstream: upstream.URL, config: envoyWith(t, nil, read)}).URL
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
	s, _, err := ip.Jar.Load(t.Context(), session.CookieMap(cookies))
	if err != nil {
		t.Fatalf("the browser holds no valid session: %v", err)
	}
	return s.Session
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
	resp, err := testkit.NoRedirects().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}
