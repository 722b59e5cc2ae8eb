package integration_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
)

// oauth2-proxy's own keys (issue "A drop-in for oauth2-proxy's
// configuration"), each shown end to end through the real Envoy.

// OAUTH2_PROXY_* variables and oauth2-proxy's flags, singular repeatable
// ones included, configure the server as they configure oauth2-proxy.
func TestOAuth2ProxyEnvironmentAndFlags(t *testing.T) {
	idp := devidp.StartT(t, devidp.Options{})
	c := devidp.DefaultClient()
	env := []string{
		"OAUTH2_PROXY_PROVIDER=oidc", "OAUTH2_PROXY_OIDC_ISSUER_URL=" + idp.Issuer,
		"OAUTH2_PROXY_CLIENT_ID=" + c.ID, "OAUTH2_PROXY_CLIENT_SECRET=" + c.Secret,
		"OAUTH2_PROXY_COOKIE_SECRET=" + testCookieSecret, "OAUTH2_PROXY_COOKIE_SECURE=false",
		"OAUTH2_PROXY_EMAIL_DOMAINS=example.com", "OAUTH2_PROXY_SKIP_PROVIDER_BUTTON=true",
		"OAUTH2_PROXY_UPSTREAMS=http://127.0.0.1:8080",
	}
	cmd := exec.Command(serverBin, "serve", "--grpc-address", "127.0.0.1:0", "--http-address", "127.0.0.1:0", "--log-format", "json",
		// oauth2-proxy's singular flags, repeated.
		"--skip-auth-route", "GET=^/public", "--skip-auth-route", "^/health$", "--whitelist-domain", ".example.com", "--email-domain", "other.org")
	cmd.Env = append(os.Environ(), env...)
	srv := startCmd(t, cmd)
	srv.waitReady(t)
	st := frontFor(t, srv)
	st.IdP = idp
	upstreamSaw(t, newBrowser(t, "", "").get(st.Front.URL+"/public/page"))
	upstreamSaw(t, newBrowser(t, "", "").get(st.Front.URL+"/health"))
	// The flag's email domain wins over the variable's, as flags do.
	if r := st.login(t, newBrowser(t, "eve", "eve-password"), "/"); r.StatusCode != http.StatusOK {
		t.Errorf("eve (other.org, the flag's domain): %s", describe(r))
	}
	if r := st.login(t, newBrowser(t, "alice", "alice-password"), "/"); r.StatusCode != http.StatusForbidden {
		t.Errorf("alice (example.com, only in the variable): %s, want 403", describe(r))
	}
	if !strings.Contains(srv.Logs(), "upstreams: Envoy's job: ignored") {
		t.Errorf("no warning for OAUTH2_PROXY_UPSTREAMS:\n%s", srv.Logs())
	}

	// Both prefixes: ours wins, and check-config says so.
	cfg := baseConfig(idp.Issuer)
	delete(cfg, "client_secret")
	code, stdout, stderr := runCLI(t, []string{"OAUTH2_PROXY_CLIENT_SECRET=" + c.Secret, "ZITADEL_EXT_AUTHZ_CLIENT_SECRET=" + c.Secret},
		"check-config", "--config", writeConfig(t, cfg))
	if code != 0 || !strings.Contains(stderr, "ZITADEL_EXT_AUTHZ_CLIENT_SECRET and OAUTH2_PROXY_CLIENT_SECRET are both set: ZITADEL_EXT_AUTHZ_CLIENT_SECRET wins") ||
		!strings.Contains(stdout, "client_secret (OAUTH2_PROXY_CLIENT_SECRET): used") {
		t.Errorf("check-config with both: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// skip_auth_preflight: a CORS preflight passes without login; other
// methods don't.
func TestSkipAuthPreflight(t *testing.T) {
	st := startStack(t, stackOptions{config: map[string]any{"skip_auth_preflight": true}})
	b := newBrowser(t, "", "")
	got := upstreamSaw(t, b.do(http.MethodOptions, st.Front.URL+"/api/items", http.Header{"Origin": {"https://spa.example"}, "Access-Control-Request-Method": {"POST"}}))
	if got.Method != http.MethodOptions {
		t.Errorf("upstream saw %s", got.Method)
	}
	if r := b.get(st.Front.URL + "/api/items"); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET without login: %s, want 401", describe(r))
	}
}

// trusted_ips: the source address Envoy saw (127.0.0.1 here) passes
// without login; with reverse_proxy, real_client_ip_header decides.
func TestTrustedIPs(t *testing.T) {
	st := startStack(t, stackOptions{config: map[string]any{"trusted_ips": []string{"127.0.0.1"}}})
	got := upstreamSaw(t, newBrowser(t, "", "").get(st.Front.URL+"/from-localhost"))
	if got.Headers["x-forwarded-user"] != "" {
		t.Errorf("a trusted request got an identity: %v", got.Headers)
	}
	other := startStack(t, stackOptions{config: map[string]any{"trusted_ips": []string{"10.0.0.0/8"}}})
	if r := newBrowser(t, "", "").get(other.Front.URL + "/"); r.StatusCode != http.StatusFound {
		t.Errorf("an untrusted source: %s, want the login redirect", describe(r))
	}
	proxied := startStack(t, stackOptions{config: map[string]any{"trusted_ips": []string{"10.0.0.0/8"}, "reverse_proxy": true, "real_client_ip_header": "X-Real-IP"}})
	upstreamSaw(t, newBrowser(t, "", "").do(http.MethodGet, proxied.Front.URL+"/", http.Header{"X-Real-IP": {"10.1.2.3"}}))
	if r := newBrowser(t, "", "").do(http.MethodGet, proxied.Front.URL+"/", http.Header{"X-Real-IP": {"192.0.2.1"}}); r.StatusCode != http.StatusFound {
		t.Errorf("X-Real-IP outside trusted_ips: %s, want the login redirect", describe(r))
	}
}

// authenticated_emails_file: those addresses pass besides email_domains,
// and an edit applies without a restart.
func TestAuthenticatedEmailsFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "emails.txt")
	if err := os.WriteFile(file, []byte("# allowed\nBob@Example.com\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	st := startStack(t, stackOptions{config: map[string]any{"email_domains": []string{}, "authenticated_emails_file": file}})
	upstreamSaw(t, st.login(t, newBrowser(t, "bob", "bob-password"), "/"))
	alice := newBrowser(t, "alice", "alice-password")
	if r := st.login(t, alice, "/"); r.StatusCode != http.StatusForbidden {
		t.Fatalf("alice, not in the file: %s, want 403", describe(r))
	}
	if err := os.WriteFile(file, []byte("bob@example.com\nalice@example.com\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "alice to be let in after the file changed", func() bool {
		r, _ := newBrowser(t, "alice", "alice-password").follow(st.Front.URL + "/")
		return r != nil && r.StatusCode == http.StatusOK
	})
}

// backend_logout_url is called at sign-out with the session's ID token.
func TestBackendLogoutURL(t *testing.T) {
	var mu sync.Mutex
	var got []string
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.URL.Query().Get("id_token"))
		mu.Unlock()
	}))
	t.Cleanup(backend.Close)
	st := startStack(t, stackOptions{config: map[string]any{"backend_logout_url": backend.URL + "/logout?id_token={id_token}"}})
	alice := newBrowser(t, "alice", "alice-password")
	upstreamSaw(t, st.login(t, alice, "/"))
	if r := alice.get(st.Front.URL + "/oauth2/sign_out"); r.StatusCode != http.StatusFound {
		t.Fatalf("sign-out: %s", describe(r))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || strings.Count(got[0], ".") != 2 {
		t.Fatalf("the backend logout got %q, want one call with the ID token", got)
	}
}

// prompt, approval_prompt and acr_values go on the authorization request.
func TestPromptAndACRValues(t *testing.T) {
	for _, tc := range []struct {
		cfg  map[string]any
		want url.Values
	}{
		{map[string]any{"prompt": "login", "acr_values": "urn:zitadel:mfa"}, url.Values{"prompt": {"login"}, "acr_values": {"urn:zitadel:mfa"}}},
		{map[string]any{"approval_prompt": "force"}, url.Values{"prompt": {"consent"}}},
		{map[string]any{"approval_prompt": "auto"}, url.Values{"prompt": nil}},
	} {
		st := startStack(t, stackOptions{config: tc.cfg})
		r := newBrowser(t, "", "").get(st.Front.URL + "/")
		loc, err := url.Parse(r.Header.Get("Location"))
		if r.StatusCode != http.StatusFound || err != nil {
			t.Fatalf("%v: %s", tc.cfg, describe(r))
		}
		for k, v := range tc.want {
			if got := loc.Query()[k]; strings.Join(got, ",") != strings.Join(v, ",") {
				t.Errorf("%v: %s = %q, want %q", tc.cfg, k, got, v)
			}
		}
	}
}

// proxy_prefix moves every endpoint of ours, the callback included.
func TestProxyPrefix(t *testing.T) {
	c := devidp.DefaultClient()
	c.RedirectURIGlobs = []string{"http://127.0.0.1:*/auth/callback"}
	st := startStack(t, stackOptions{config: map[string]any{"proxy_prefix": "/auth", "redirect_url": nil}, clients: []devidp.Client{c}})
	alice := newBrowser(t, "alice", "alice-password")
	r := alice.get(st.Front.URL + "/")
	if loc := r.Header.Get("Location"); !strings.Contains(loc, url.QueryEscape(st.Front.URL+"/auth/callback")) {
		t.Fatalf("the login's redirect_uri: %s", loc)
	}
	upstreamSaw(t, st.login(t, alice, "/"))
	if r := alice.get(st.Front.URL + "/auth/userinfo"); r.StatusCode != http.StatusOK || !strings.Contains(r.Body, "alice@example.com") {
		t.Errorf("/auth/userinfo: %s", describe(r))
	}
	// /oauth2/… is an ordinary path now.
	if got := upstreamSaw(t, alice.get(st.Front.URL+"/oauth2/sign_out")); got.Path != "/oauth2/sign_out" {
		t.Errorf("upstream saw %s", got.Path)
	}
	if r := alice.get(st.Front.URL + "/auth/sign_out"); r.StatusCode != http.StatusFound {
		t.Fatalf("/auth/sign_out: %s", describe(r))
	}
	if r := alice.get(st.Front.URL + "/after"); r.StatusCode != http.StatusFound {
		t.Errorf("after /auth/sign_out: %s, want the login redirect", describe(r))
	}
}

// session_cookie_minimal: the cookie keeps the identity only: smaller,
// no token headers possible (refused with pass_access_token).
func TestSessionCookieMinimal(t *testing.T) {
	full := startStack(t, stackOptions{})
	minimal := startStack(t, stackOptions{config: map[string]any{"session_cookie_minimal": true}})
	sizes := map[string]int{}
	for name, st := range map[string]*stack{"full": full, "minimal": minimal} {
		b := newBrowser(t, "alice", "alice-password")
		if got := upstreamSaw(t, st.login(t, b, "/")); got.Headers["x-forwarded-user"] != "user-alice" {
			t.Fatalf("%s: %v", name, got.Headers)
		}
		sizes[name] = len(cookieHeader(b, st.Front.URL))
	}
	if sizes["minimal"]*2 > sizes["full"] {
		t.Errorf("cookie sizes: %v, want the minimal one less than half", sizes)
	}
	t.Logf("cookie bytes: %v", sizes)
	cfg := baseConfig(full.IdP.Issuer)
	cfg["session_cookie_minimal"], cfg["pass_access_token"] = true, true
	if code, _, stderr := runCLI(t, nil, "check-config", "--config", writeConfig(t, cfg)); code != 2 || !strings.Contains(stderr, "session_cookie_minimal") {
		t.Errorf("minimal with pass_access_token: exit %d %s", code, stderr)
	}
}

// pass_basic_auth with basic_auth_password and prefer_email_to_user: the
// upstream gets Basic credentials and the e-mail as the user;
// set_authorization_header is pass_authorization_header.
func TestBasicAuthEmailUserAndAuthorizationHeader(t *testing.T) {
	st := startStack(t, stackOptions{config: map[string]any{"pass_basic_auth": true, "basic_auth_password": "upstream-pw", "prefer_email_to_user": true}})
	got := upstreamSaw(t, st.login(t, newBrowser(t, "alice", "alice-password"), "/"))
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice@example.com:upstream-pw"))
	if got.Headers["authorization"] != want || got.Headers["x-forwarded-user"] != "alice@example.com" {
		t.Errorf("upstream saw authorization %q, user %q; want %q and the e-mail", got.Headers["authorization"], got.Headers["x-forwarded-user"], want)
	}
	bearer := startStack(t, stackOptions{config: map[string]any{"set_authorization_header": true}})
	got = upstreamSaw(t, bearer.login(t, newBrowser(t, "alice", "alice-password"), "/"))
	if a := got.Headers["authorization"]; !strings.HasPrefix(a, "Bearer ") || strings.Count(a, ".") != 2 {
		t.Errorf("set_authorization_header: upstream saw %q, want the ID token", a)
	}
}

// skip_oidc_discovery with login_url, redeem_url, oidc_jwks_url and
// profile_url: an IdP without a discovery document.
func TestIdPWithoutDiscovery(t *testing.T) {
	st := startStack(t, stackOptions{
		idpSetup: func(idp *devidp.Server) {
			idp.SetTamper(func(r *http.Request, status int, body []byte) (int, []byte) {
				if r.URL.Path == "/.well-known/openid-configuration" {
					return http.StatusNotFound, []byte("no discovery here")
				}
				return status, body
			})
		},
		config: map[string]any{"skip_oidc_discovery": true},
		configFor: func(issuer string) map[string]any {
			return map[string]any{"login_url": issuer + "/auth", "redeem_url": issuer + "/oauth/token",
				"oidc_jwks_url": issuer + "/keys", "profile_url": issuer + "/userinfo"}
		},
	})
	got := upstreamSaw(t, st.login(t, newBrowser(t, "alice", "alice-password"), "/"))
	if got.Headers["x-forwarded-email"] != "alice@example.com" {
		t.Errorf("upstream saw %v", got.Headers)
	}
	if st.IdP.Calls("/.well-known/openid-configuration") != 0 {
		t.Error("discovery was asked for")
	}
}

// provider_ca_files: a ZITADEL behind a private CA; without it the IdP
// isn't trusted; ssl_insecure_skip_verify works too, with a loud warning.
func TestProviderCAFiles(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, caFile := writeTLSFiles(t, dir)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := os.ReadFile(caFile)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	idp := devidp.StartT(t, devidp.Options{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	trustingBrowser := func(user string) *browser {
		b := newBrowser(t, user, user+"-password")
		b.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
		return b
	}
	for name, extra := range map[string]map[string]any{
		"provider_ca_files":        {"provider_ca_files": []string{caFile}},
		"ssl_insecure_skip_verify": {"ssl_insecure_skip_verify": true},
	} {
		cfg := baseConfig(idp.Issuer)
		for k, v := range extra {
			cfg[k] = v
		}
		srv := startServer(t, cfg)
		srv.waitReady(t)
		st := frontFor(t, srv)
		st.IdP = idp
		upstreamSaw(t, st.login(t, trustingBrowser("alice"), "/"))
		if name == "ssl_insecure_skip_verify" && !strings.Contains(srv.Logs(), "is NOT verified") {
			t.Errorf("no warning for ssl_insecure_skip_verify:\n%s", srv.Logs())
		}
	}
	untrusting := startServer(t, baseConfig(idp.Issuer))
	waitFor(t, "discovery to fail on the unknown CA", func() bool {
		return strings.Contains(untrusting.Logs(), "certificate signed by unknown authority")
	})
}

// extra_jwt_issuers: bearer JWTs of another issuer, for the audience
// paired with it, with keys from that issuer's discovery.
func TestExtraJWTIssuers(t *testing.T) {
	other := devidp.StartT(t, devidp.Options{Clients: []devidp.Client{jwtClient}})
	tok, err := other.Tokens(t.Context(), jwtClient, "bob", "bob-password")
	if err != nil {
		t.Fatal(err)
	}
	for aud, want := range map[string]int{jwtClient.ID: http.StatusOK, "someone-else": http.StatusUnauthorized} {
		st := startStack(t, stackOptions{config: map[string]any{"skip_jwt_bearer_tokens": true, "extra_jwt_issuers": []string{other.Issuer + "=" + aud}}})
		r := apiCall(t, st, "/api/items", tok.AccessToken)
		if r.StatusCode != want {
			t.Errorf("audience %s: %s, want %d", aud, describe(r), want)
		}
		if want == http.StatusOK && upstreamSaw(t, r).Headers["x-forwarded-user"] != "user-bob" {
			t.Errorf("the other issuer's user: %v", upstreamSaw(t, r).Headers)
		}
	}
}

// banner, footer, custom_sign_in_logo and custom_templates_dir change the
// sign-in and error pages; the page's CSP lets the embedded logo show.
func TestSignInPageCustomisation(t *testing.T) {
	dir := t.TempDir()
	logo := filepath.Join(dir, "logo.png")
	os.WriteFile(logo, []byte("\x89PNG\r\n\x1a\nfake"), 0o600)
	st := startStack(t, stackOptions{config: map[string]any{"skip_provider_button": false, "banner": "<b>Acme staff only</b>", "footer": "Need help? Call 555",
		"custom_sign_in_logo": logo}})
	r := newBrowser(t, "", "").get(st.Front.URL + "/")
	for _, want := range []string{"<b>Acme staff only</b>", "Need help? Call 555", `src="data:image/png;base64,`} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("sign-in page lacks %q:\n%s", want, r.Body)
		}
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "img-src data:") {
		t.Errorf("CSP %q doesn't allow the embedded logo", csp)
	}
	templates := t.TempDir()
	os.WriteFile(filepath.Join(templates, "sign_in.html"), []byte(`<html><body><h1>Acme portal</h1><a href="{{.StartURL}}">Go</a></body></html>`), 0o600)
	custom := startStack(t, stackOptions{config: map[string]any{"skip_provider_button": false, "custom_templates_dir": templates}})
	r = newBrowser(t, "", "").get(custom.Front.URL + "/somewhere")
	if !strings.Contains(r.Body, "<h1>Acme portal</h1>") || !strings.Contains(r.Body, "/oauth2/start?rd=%2Fsomewhere") {
		t.Errorf("custom sign_in.html: %s", describe(r))
	}
}

// cookie_secret_file, metrics_address, ping_path and ready_path.
func TestCookieSecretFileMetricsAddressAndProbePaths(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "cookie-secret")
	os.WriteFile(secret, []byte(testCookieSecret+"\n"), 0o600)
	metricsPort, err := testkit.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	st := startStack(t, stackOptions{config: map[string]any{"cookie_secret": nil, "cookie_secret_file": secret,
		"metrics_address": fmt.Sprintf("127.0.0.1:%d", metricsPort), "ping_path": "/ping", "ready_path": "/ready"}})
	upstreamSaw(t, st.login(t, newBrowser(t, "alice", "alice-password"), "/"))
	for _, u := range []string{fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort), "http://" + st.Server.HTTPAddr + "/ping", "http://" + st.Server.HTTPAddr + "/ready"} {
		resp, err := http.Get(u)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %v %v", u, resp, err)
			continue
		}
		resp.Body.Close()
	}
}

// oauth2-proxy's Redis names: redis_connection_url is redis_url.
func TestRedisConnectionURL(t *testing.T) {
	r := startRedis(t)
	st := startStack(t, stackOptions{config: map[string]any{"session_store_type": "redis", "redis_connection_url": "redis://" + r.addr}})
	alice := newBrowser(t, "alice", "alice-password")
	upstreamSaw(t, st.login(t, alice, "/"))
	if c := cookieHeader(alice, st.Front.URL); len(c) > 400 {
		t.Errorf("a %d-byte cookie: sessions are not in Redis", len(c))
	}
	if n := keysOn(t, r, "zea:s:*"); n != 1 {
		t.Errorf("%d sessions in Redis, want 1", n)
	}
}

// cookie_csrf_expire: how long a login may take, the state cookie's
// lifetime.
func TestCookieCSRFExpire(t *testing.T) {
	st := startStack(t, stackOptions{config: map[string]any{"cookie_csrf_expire": "5m"}})
	r := newBrowser(t, "", "").get(st.Front.URL + "/")
	var maxAge []string
	for _, c := range r.Header.Values("Set-Cookie") {
		if parsed, err := http.ParseSetCookie(c); err == nil {
			maxAge = append(maxAge, fmt.Sprint(parsed.MaxAge))
		}
	}
	if r.StatusCode != http.StatusFound || strings.Join(maxAge, ",") != "300" {
		t.Errorf("login redirect: %s, state cookie Max-Age %v, want 300", describe(r), maxAge)
	}
}
