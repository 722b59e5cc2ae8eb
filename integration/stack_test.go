package integration_test

import (
	"fmt"
	"html"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	toml "github.com/pelletier/go-toml/v2"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/echo"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/serverproc"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
)

// serverBin is the zitadel-ext-authz binary built once for all tests.
var serverBin string

func TestMain(m *testing.M) {
	// The dev IdP's example router logs every request through slog.Default.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	dir, err := testkit.TempDir("zitadel-ext-authz-it")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	serverBin = filepath.Join(dir, "zitadel-ext-authz")
	build := exec.Command("go", "build", "-o", serverBin, "../cmd/zitadel-ext-authz")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build zitadel-ext-authz:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const testCookieSecret = "TTG2nDKakipoYsP1Gj00CcrS5ETnFIruu5E_ZPJo53k=" // 32 random bytes, base64url

// baseConfig is a working configuration for issuer.
func baseConfig(issuer string) map[string]any {
	c := devidp.DefaultClient()
	return map[string]any{
		"provider":              "oidc",
		"provider_display_name": "ZITADEL",
		"oidc_issuer_url":       issuer,
		"client_id":             c.ID,
		"client_secret":         c.Secret,
		"cookie_secret":         testCookieSecret,
		"cookie_secure":         false,
		"email_domains":         []string{"*"},
		"skip_provider_button":  true,
		"grpc_address":          "127.0.0.1:0",
		"http_address":          "127.0.0.1:0",
		"log_format":            "json",
		"log_level":             "debug",
	}
}

// server is a running zitadel-ext-authz process with its captured logs.
type server struct {
	*serverproc.Proc
	logs       syncBuffer
	ConfigPath string
}

// Logs is everything the server wrote to stderr so far.
func (s *server) Logs() string { return s.logs.String() }

func writeConfig(t *testing.T, cfg map[string]any) string {
	t.Helper()
	b, err := toml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startServer runs the binary with cfg and waits for its listeners.
func startServer(t *testing.T, cfg map[string]any, env ...string) *server {
	t.Helper()
	path := writeConfig(t, cfg)
	cmd := exec.Command(serverBin, "serve", "--config", path)
	cmd.Env = append(os.Environ(), env...)
	s := startCmd(t, cmd)
	s.ConfigPath = path
	return s
}

// startCmd runs a serve command (JSON logs) and stops it when the test ends;
// a failing test shows the server's logs.
func startCmd(t *testing.T, cmd *exec.Cmd) *server {
	t.Helper()
	s := &server{}
	p, err := serverproc.Start(cmd, &s.logs, 20*time.Second)
	if err != nil {
		t.Fatalf("%v\n%s", err, s.Logs())
	}
	s.Proc = p
	t.Cleanup(func() {
		_ = p.Stop(15 * time.Second)
		if t.Failed() {
			t.Logf("server logs:\n%s", s.Logs())
		}
	})
	return s
}

// waitReady polls /readyz to a deadline.
func (s *server) waitReady(t *testing.T) {
	t.Helper()
	if err := s.WaitReady(15 * time.Second); err != nil {
		t.Fatalf("%v\n%s", err, s.Logs())
	}
}

// stack is IdP + zitadel-ext-authz + front proxy (the real Envoy) + echo
// upstream.
type stack struct {
	IdP      *devidp.Server
	Server   *server
	Front    *front
	Upstream *httptest.Server
}

type stackOptions struct {
	config  map[string]any // overrides of baseConfig
	users   []devidp.User
	clients []devidp.Client
	timeout time.Duration // overrides the ext_authz filter's timeout in envoy.yaml
	envoy   []byte        // the real Envoy's bootstrap; nil: envoy/envoy.yaml as shipped
	// envoyAsIs runs envoy's allowed_headers as given; else the list gets
	// the headers the server says it reads, as check-envoy tells a user.
	envoyAsIs bool
	front     frontKind // "" = defaultFront()
	// idpSetup runs before the server starts (e.g. a tampered discovery).
	idpSetup func(*devidp.Server)
	// configFor adds keys that name the IdP's issuer URL.
	configFor func(issuer string) map[string]any
}

func startStack(t *testing.T, o stackOptions) *stack {
	t.Helper()
	idp := devidp.StartT(t, devidp.Options{Users: o.users, Clients: o.clients})
	if o.idpSetup != nil {
		o.idpSetup(idp)
	}
	cfg := baseConfig(idp.Issuer)
	for k, v := range o.config {
		if v == nil {
			delete(cfg, k) // unset a key of baseConfig
			continue
		}
		cfg[k] = v
	}
	if o.configFor != nil {
		maps.Copy(cfg, o.configFor(idp.Issuer))
	}
	srv := startServer(t, cfg)
	srv.waitReady(t)
	st := &stack{IdP: idp}
	st.attach(t, srv, o)
	return st
}

// frontFor puts a front proxy and an echo upstream in front of a running
// server.
func frontFor(t *testing.T, srv *server) *stack {
	st := &stack{}
	st.attach(t, srv, stackOptions{})
	return st
}

func (st *stack) attach(t *testing.T, srv *server, o stackOptions) {
	t.Helper()
	st.Server = srv
	st.Upstream = httptest.NewServer(echo.Handler())
	t.Cleanup(st.Upstream.Close)
	cfg := o.envoy
	if !o.envoyAsIs {
		cfg = srv.envoyFor(t, cfg)
	}
	st.Front = startFront(t, frontOptions{
		kind: o.front, grpcAddr: srv.GRPCAddr, opsAddr: srv.HTTPAddr, upstream: st.Upstream.URL, timeout: o.timeout, config: cfg,
	})
}

// browser is a cookie-keeping HTTP client that follows redirects itself,
// logging in at the dev IdP's form when it is sent there.
type browser struct {
	t        *testing.T
	jar      *cookiejar.Jar
	client   *http.Client
	user     string
	password string
	header   http.Header // sent with every request to the front proxy
}

func newBrowser(t *testing.T, user, password string) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{
		t:        t,
		jar:      jar,
		user:     user,
		password: password,
		client:   noRedirectsWith(jar),
		header:   http.Header{"Accept": {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}},
	}
}

// response is a finished response with its body read.
type response struct {
	*http.Response
	Body string
}

// do sends one request without following redirects.
func (b *browser) do(method, target string, header http.Header) *response {
	b.t.Helper()
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		b.t.Fatal(err)
	}
	for k, v := range b.header {
		req.Header[k] = v
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, target, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return &response{Response: resp, Body: string(body)}
}

func (b *browser) get(target string) *response { return b.do(http.MethodGet, target, nil) }

// postForm posts a form without following redirects.
func (b *browser) postForm(target string, form url.Values) *response {
	b.t.Helper()
	resp, err := b.client.PostForm(target, form)
	if err != nil {
		b.t.Fatalf("POST %s: %v", target, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return &response{Response: resp, Body: string(body)}
}

// follow GETs target and follows redirects (submitting the IdP login form
// on the way) until a non-redirect answer or a host outside allowHosts.
func (b *browser) follow(target string, allowHosts ...string) (*response, []string) {
	b.t.Helper()
	var hops []string
	for range 20 {
		hops = append(hops, target)
		u, _ := url.Parse(target)
		if len(allowHosts) > 0 && !contains(allowHosts, u.Host) {
			return nil, hops
		}
		// The dev IdP's forms: the password, then for a second factor the
		// current one-time code (and "not now" where it offers to add one).
		var posted *response
		switch {
		case u.Path == "/login/username" && u.Query().Get("authRequestID") != "":
			posted = b.submitLogin(u)
		case u.Path == "/login/otp" && u.Query().Get("id") != "":
			posted = b.postForm(u.Scheme+"://"+u.Host+"/login/otp", devidp.OTPForm(u.Query().Get("id"), b.user, time.Now()))
		}
		if posted != nil {
			next, err := posted.Location()
			if posted.StatusCode != http.StatusFound || err != nil {
				return posted, hops
			}
			target = next.String()
			continue
		}
		resp := b.get(target)
		// Keycloak's login form: post the credentials to its action.
		if m := keycloakForm.FindStringSubmatch(resp.Body); resp.StatusCode == http.StatusOK && m != nil && b.user != "" {
			action := html.UnescapeString(m[1])
			hops = append(hops, action)
			resp = b.postForm(action, url.Values{"username": {b.user}, "password": {b.password}})
		}
		if resp.StatusCode < 300 || resp.StatusCode >= 400 {
			return resp, hops
		}
		next, err := resp.Location()
		if err != nil {
			b.t.Fatalf("redirect without location from %s", target)
		}
		target = next.String()
	}
	b.t.Fatalf("redirect loop: %v", hops)
	return nil, hops
}

// keycloakForm finds Keycloak's login form and its action.
var keycloakForm = regexp.MustCompile(`<form id="kc-form-login"[^>]*action="([^"]+)"`)

func (b *browser) submitLogin(u *url.URL) *response {
	form := url.Values{"id": {u.Query().Get("authRequestID")}, "username": {b.user}, "password": {b.password}}
	req, _ := http.NewRequest(http.MethodPost, u.Scheme+"://"+u.Host+"/login/username", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return &response{Response: resp, Body: string(body)}
}

// cookie returns the value of a cookie the browser holds for target.
func (b *browser) cookie(target, name string) (string, bool) {
	u, _ := url.Parse(target)
	for _, c := range b.jar.Cookies(u) {
		if c.Name == name {
			return c.Value, true
		}
	}
	return "", false
}

func (b *browser) cookieNames(target string) []string {
	u, _ := url.Parse(target)
	var out []string
	for _, c := range b.jar.Cookies(u) {
		out = append(out, c.Name)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// upstreamSaw parses the echo page the upstream answered with.
func upstreamSaw(t *testing.T, r *response) echo.Request {
	t.Helper()
	if r == nil || r.StatusCode != http.StatusOK {
		t.Fatalf("want the upstream's 200 echo page, got %v", describe(r))
	}
	got, err := echo.Parse([]byte(r.Body))
	if err != nil {
		t.Fatalf("not an echo page (%v): %.300s", err, r.Body)
	}
	return got
}

func describe(r *response) string {
	if r == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%d %v %.200q", r.StatusCode, r.Header, r.Body)
}

// login runs a full browser login for path and returns the landing page.
func (st *stack) login(t *testing.T, b *browser, path string) *response {
	t.Helper()
	resp, hops := b.follow(st.Front.URL + path)
	if resp == nil {
		t.Fatalf("login left the stack: %v", hops)
	}
	return resp
}

// noRedirectsWith is the kit's no-redirect client with a cookie jar.
func noRedirectsWith(jar http.CookieJar) *http.Client {
	c := testkit.NoRedirects()
	c.Jar = jar
	return c
}
