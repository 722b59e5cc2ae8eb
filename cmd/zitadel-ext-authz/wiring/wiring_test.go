package wiring

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/config"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/telemetry"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
)

const baseTOML = `
oidc_issuer_url = "https://acme.zitadel.cloud"
client_id = "web@acme"
client_secret = "s3cret"
cookie_secret = "0123456789!bcdef0123456789!bcdef"
cookie_secure = false
email_domains = ["*"]
pass_access_token = true
`

// appsTOML is baseTOML with n apps; app "target" serves app.example.com.
func appsTOML(n int) string {
	var b strings.Builder
	b.WriteString(baseTOML)
	for i := range n {
		host := fmt.Sprintf("app%d.example.com", i)
		if i == n/2 {
			host = "app.example.com"
		}
		fmt.Fprintf(&b, "\n[[apps]]\nname = \"app%d\"\nhosts = [%q, \"*.app%d.example.org\"]\nclient_id = \"app%d@acme\"\n", i, host, i, i)
	}
	return b.String()
}

func build(tb testing.TB, toml string) *Built {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "c.toml")
	if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
		tb.Fatal(err)
	}
	cfg, _, err := config.Load([]string{"--config", path}, func(string) string { return "" })
	if err != nil {
		tb.Fatal(err)
	}
	b, err := Build(cfg, Deps{Logger: slog.New(slog.DiscardHandler), Metrics: telemetry.NewMetrics("test")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.Close)
	return b
}

// cookieFor seals a session with app's own jar, as its callback would.
func cookieFor(tb testing.TB, a *App) string {
	tb.Helper()
	now := time.Now()
	s := &sessionpb.Session{
		Subject: "user-alice", User: "user-alice", Email: "alice@example.com", EmailVerified: true, Groups: []string{"admin", "reader"},
		AccessToken: strings.Repeat("A", 600), IdToken: strings.Repeat("I", 500), AccessTokenExpiresAt: now.Add(time.Hour).Unix(),
		CreatedAt: now.Unix(), CreatedAtMs: now.UnixMilli(), ExpiresAt: now.Add(time.Hour).Unix(), LoginId: "0123456789abcdef0123456789abcdef",
	}
	cookies, err := a.Jar.Save(context.Background(), s, "app.example.com", session.CookieMap(nil))
	if err != nil {
		tb.Fatal(err)
	}
	name, value, _ := strings.Cut(strings.SplitN(cookies[0], ";", 2)[0], "=")
	return name + "=" + value
}

func request(cookie string) *authv3.CheckRequest {
	h := map[string]string{
		":authority": "app.example.com", ":method": "GET", ":path": "/dashboard", ":scheme": "https",
		"accept": "text/html", "cookie": "theme=dark; " + cookie, "x-request-id": "r1",
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
		Id: "1", Method: "GET", Path: "/dashboard", Host: "app.example.com", Scheme: "https", Headers: h, Protocol: "HTTP/1.1",
	}}}}
}

func allowed(tb testing.TB, b *Built, req *authv3.CheckRequest) {
	tb.Helper()
	resp, err := b.Router.Check(context.Background(), req)
	if err != nil || resp.GetOkResponse() == nil {
		tb.Fatalf("not allowed: %v %v", resp, err)
	}
}

// The same session on one app, and on one app of 50 (found by its exact
// host): what the apps cost per Check.
func BenchmarkCheckThroughRouter(b *testing.B) {
	for _, n := range []int{0, 50} {
		built := build(b, appsTOML(n))
		name := config.DefaultAppName
		if n > 0 {
			name = fmt.Sprintf("app%d", n/2)
		}
		req := request(cookieFor(b, built.App(name)))
		allowed(b, built, req)
		time.Sleep(10 * time.Millisecond) // ristretto applies its sets asynchronously
		b.Run(fmt.Sprintf("%d_apps", max(n, 1)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				allowed(b, built, req)
			}
		})
	}
}

func loadConfig(tb testing.TB, toml string) *config.Config {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "c.toml")
	os.WriteFile(path, []byte(toml), 0o600)
	cfg, _, err := config.Load([]string{"--config", path}, func(string) string { return "" })
	if err != nil {
		tb.Fatal(err)
	}
	return cfg
}

// SetApps adds, removes, rebuilds and changes in place as the reload
// documentation says, and a session survives its app's rebuild.
func TestSetAppsReportsWhatChanged(t *testing.T) {
	built := build(t, appsTOML(2)) // app0, app1 (app.example.com)
	req := request(cookieFor(t, built.App("app1")))
	allowed(t, built, req)
	app1 := built.App("app1")

	next := strings.Replace(appsTOML(2), `client_id = "app0@acme"`, `client_id = "app0@acme"
allowed_groups = ["admin"]`, 1)
	next = strings.Replace(next, `client_id = "app1@acme"`, `client_id = "app1-new@acme"`, 1)
	next += "\n[[apps]]\nname = \"extra\"\nclient_id = \"extra@acme\"\n"
	report, err := built.SetApps(loadConfig(t, next))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"app0: allowed_groups applied", "app1: rebuilt (client_id changed)", "extra: added"}
	if strings.Join(report, "|") != strings.Join(want, "|") {
		t.Fatalf("report %q, want %q", report, want)
	}
	if built.App("app1") == app1 {
		t.Error("app1 was not rebuilt")
	}
	allowed(t, built, req) // the session made before the rebuild

	report, err = built.SetApps(loadConfig(t, baseTOML))
	if err != nil || strings.Join(report, "|") == "" || built.App("app1") != nil || built.App("extra") != nil {
		t.Fatalf("removing the apps: %q %v", report, err)
	}
	resp, _ := built.Router.Check(context.Background(), req)
	if resp.GetOkResponse() != nil {
		t.Error("a removed app's session still works (on the default app)")
	}
}
