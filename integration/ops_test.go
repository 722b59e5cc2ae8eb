package integration_test

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
)

// /metrics after a login, scraped over HTTP: decisions with reasons,
// logins, IdP calls, caches, build info.
func TestMetrics(t *testing.T) {
	st := startStack(t, stackOptions{})
	b := newBrowser(t, "alice", "alice-password")
	upstreamSaw(t, st.login(t, b, "/"))
	upstreamSaw(t, b.get(st.Front.URL+"/again"))
	body := scrape(t, st.Server)
	for _, want := range []string{
		`zitadel_ext_authz_checks_total{app="default",decision="allow",reason="session"} 2`,
		`zitadel_ext_authz_checks_total{app="default",decision="redirect",reason="login_redirect"} 1`,
		`zitadel_ext_authz_checks_total{app="default",decision="redirect",reason="login_completed"} 1`,
		`zitadel_ext_authz_check_duration_seconds_bucket{app="default",decision="allow"`,
		`zitadel_ext_authz_logins_started_total{app="default"} 1`,
		`zitadel_ext_authz_logins_completed_total{app="default"} 1`,
		`zitadel_ext_authz_cache_hits_total{cache="session"}`,
		`zitadel_ext_authz_build_info{goversion="go`,
		`zitadel_ext_authz_config_reloads_total{outcome="refused"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// Label values are bounded: no user, path or token ever becomes one.
	for _, leak := range []string{"alice", "/again", "user-alice"} {
		if strings.Contains(body, leak) {
			t.Errorf("/metrics contains %q", leak)
		}
	}
}

// The logs of a whole login, use, userinfo and sign-out (at debug level)
// name every non-allowed decision with its request id and reason, and
// never contain a token, cookie, code or secret.
func TestLogsCarryDecisionsButNoSecrets(t *testing.T) {
	st := startStack(t, stackOptions{config: map[string]any{"pass_access_token": true, "pass_authorization_header": true}})
	b := newBrowser(t, "alice", "alice-password")
	cb := beginLogin(t, st, b, "/landing")
	resp := b.get(cb.String())
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("callback: %s", describe(resp))
	}
	up := upstreamSaw(t, b.get(st.Front.URL+"/landing"))
	b.get(st.Front.URL + "/oauth2/userinfo")
	b.get(cb.String()) // a replayed callback: bad_state

	// What must never be logged.
	front, _ := url.Parse(st.Front.URL)
	secrets := map[string]string{
		"authorization code": cb.Query().Get("code"),
		"state":              cb.Query().Get("state"),
		"client secret":      devidp.DefaultClient().Secret,
		"cookie secret":      testCookieSecret,
		"access token":       up.Headers["x-forwarded-access-token"],
		"ID token":           strings.TrimPrefix(up.Headers["authorization"], "Bearer "),
	}
	cookies := map[string]string{}
	for _, c := range b.jar.Cookies(front) {
		cookies[c.Name] = c.Value
		secrets["cookie "+c.Name] = c.Value
	}
	key, _ := session.DecodeSecret(testCookieSecret)
	codec, _ := session.NewCodec(key)
	sess, _, err := session.NewJar(codec, session.Options{}).Load(t.Context(), session.CookieMap(cookies))
	if err != nil {
		t.Fatal(err)
	}
	secrets["refresh token"] = sess.Session.GetRefreshToken()
	b.get(st.Front.URL + "/oauth2/sign_out")

	waitFor(t, "the sign-out's log lines", func() bool {
		return strings.Contains(st.Server.Logs(), `"reason":"sign_out"`)
	})
	logs := st.Server.Logs()
	for what, v := range secrets {
		if len(v) < 8 {
			t.Fatalf("test setup: no %s to look for (%q)", what, v)
		}
		if strings.Contains(logs, v) {
			t.Errorf("the logs contain the %s", what)
		}
	}
	for _, want := range []string{
		`"msg":"not allowed","app":"default","request_id":"`,
		`"decision":"redirect","status":302,"reason":"login_redirect"`,
		`"decision":"redirect","status":302,"reason":"login_completed","sub":"user-alice"`,
		`"decision":"forbidden","status":403,"reason":"bad_state"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s", want)
		}
	}
}

// rewrite replaces the server's config file with cfg, as an editor or a
// ConfigMap update does (write a new file, rename it over the old one).
func rewrite(t *testing.T, path string, cfg map[string]any) {
	t.Helper()
	data, err := toml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(filepath.Dir(path), ".config.toml.new")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond to a 10 s deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, what, cond)
}

// Policy keys apply on a config file change without a restart and without
// dropping in-flight Checks; an invalid file is refused and the running
// configuration keeps serving; keys that need a restart say so.
func TestHotReload(t *testing.T) {
	st := startStack(t, stackOptions{config: map[string]any{"idp_timeout": "20s"}})
	cfg := baseConfig(st.IdP.Issuer)
	cfg["idp_timeout"] = "20s"
	path := st.Server.ConfigPath
	alice := newBrowser(t, "alice", "alice-password")
	upstreamSaw(t, st.login(t, alice, "/"))

	// A login in flight (held at the token endpoint) while policy changes.
	bob := newBrowser(t, "bob", "bob-password")
	cb := beginLogin(t, st, bob, "/bob")
	st.IdP.HangToken()
	inFlight := make(chan *response, 1)
	go func() { inFlight <- bob.get(cb.String()) }()
	waitFor(t, "the callback to reach the token endpoint", func() bool { return st.IdP.Calls("/oauth/token") > 0 })

	// 1. allowed_groups now excludes alice: 403 without a restart.
	cfg["allowed_groups"] = []string{"auditors"}
	rewrite(t, path, cfg)
	waitFor(t, "the new allowed_groups", func() bool { return alice.get(st.Front.URL+"/").StatusCode == http.StatusForbidden })
	waitFor(t, "the log line for the applied reload", func() bool {
		return strings.Contains(st.Server.Logs(), `"msg":"configuration reloaded","trigger":"file changed","applied":["allowed_groups"]`)
	})
	st.IdP.Release()
	if r := <-inFlight; r.StatusCode != http.StatusForbidden {
		t.Errorf("the in-flight callback: %s, want its answer under the new policy (403), not an error", describe(r))
	}

	// 2. An invalid file is refused; the running policy stays.
	bad := map[string]any{}
	for k, v := range cfg {
		bad[k] = v
	}
	bad["cookie_secret"] = "short"
	bad["allowed_groups"] = []string{}
	rewrite(t, path, bad)
	waitFor(t, "the refusal, naming the key", func() bool {
		logs := st.Server.Logs()
		return strings.Contains(logs, `"msg":"configuration reload refused; the running configuration stays"`) && strings.Contains(logs, `"error":"config: cookie_secret:`)
	})
	if r := alice.get(st.Front.URL + "/"); r.StatusCode != http.StatusForbidden {
		t.Errorf("after a refused reload: %s, want the running policy (403)", describe(r))
	}
	if m := scrape(t, st.Server); !strings.Contains(m, `zitadel_ext_authz_config_reloads_total{outcome="refused"} 1`) {
		t.Error("refused reload not counted")
	}

	// 3. Back to a valid file that also moves grpc_address and lowers the
	// log level: the policy applies, the address asks for a restart.
	cfg["allowed_groups"] = []string{"admin"}
	cfg["grpc_address"] = "127.0.0.1:1"
	cfg["log_level"] = "warn"
	rewrite(t, path, cfg)
	waitFor(t, "alice allowed again", func() bool { return alice.get(st.Front.URL+"/").StatusCode == http.StatusOK })
	waitFor(t, "the restart notice", func() bool {
		return strings.Contains(st.Server.Logs(), `"msg":"configuration key changed; restart to apply it","key":"grpc_address"`)
	})
	before := strings.Count(st.Server.Logs(), `"msg":"not allowed"`)
	newBrowser(t, "eve", "eve-password").get(st.Front.URL + "/quiet")
	if after := strings.Count(st.Server.Logs(), `"msg":"not allowed"`); after != before {
		t.Error("log_level warn still logs Info decisions")
	}

	// 4. Cookie secret rotation: new key first keeps old sessions (and
	// re-issues them under the new key); dropping the old key ends cookies
	// sealed with it.
	oldCookie := cookieHeader(alice, st.Front.URL)
	const newSecret = "b1Kq0y3mYJm8cZ3o5Wm7W0Ykq4o3qE8h0sJx0d7g2lA="
	delete(cfg, "cookie_secret")
	cfg["cookie_secrets"] = []string{newSecret, testCookieSecret}
	applied := reloadsApplied(t, st.Server)
	rewrite(t, path, cfg)
	waitFor(t, "the rotation", func() bool { return reloadsApplied(t, st.Server) > applied })
	if r := alice.get(st.Front.URL + "/"); r.StatusCode != http.StatusOK {
		t.Errorf("old session with the old key still listed: %s", describe(r))
	}
	cfg["cookie_secrets"] = []string{newSecret}
	rewrite(t, path, cfg)
	stranger := newBrowser(t, "eve", "eve-password")
	waitFor(t, "cookies under the removed key to end", func() bool {
		return stranger.do(http.MethodGet, st.Front.URL+"/", http.Header{"Cookie": {oldCookie}}).StatusCode == http.StatusFound
	})
	if r := alice.get(st.Front.URL + "/"); r.StatusCode != http.StatusOK {
		t.Errorf("the re-issued session: %s", describe(r))
	}
}

// reloadsApplied reads zitadel_ext_authz_config_reloads_total{outcome="applied"}.
func reloadsApplied(t *testing.T, s *server) int {
	t.Helper()
	const name = `zitadel_ext_authz_config_reloads_total{outcome="applied"} `
	for _, line := range strings.Split(scrape(t, s), "\n") {
		if v, ok := strings.CutPrefix(line, name); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	t.Fatal("no reload counter")
	return 0
}

// check-config validates, runs discovery and prints the effective
// configuration with secrets masked.
func TestCheckConfig(t *testing.T) {
	idp := devidp.StartT(t, devidp.Options{})
	cfg := baseConfig(idp.Issuer)
	code, stdout, stderr := runCLI(t, nil, "check-config", "--config", writeConfig(t, cfg))
	if code != 0 {
		t.Fatalf("valid config: exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"client_secret = ****** (set)", "cookie_secret = ****** (set)", "client_id = " + devidp.DefaultClient().ID, "email_domains = [*]", "# discovery of " + idp.Issuer + " and its JWKS: ok"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	for _, secret := range []string{devidp.DefaultClient().Secret, testCookieSecret} {
		if strings.Contains(stdout+stderr, secret) {
			t.Error("check-config printed a secret")
		}
	}

	cfg["cookie_samesite"] = "sometimes"
	if code, _, stderr := runCLI(t, nil, "check-config", "--config", writeConfig(t, cfg)); code != 2 || !strings.Contains(stderr, "cookie_samesite") {
		t.Errorf("invalid config: exit %d, %q", code, stderr)
	}
	delete(cfg, "cookie_samesite")
	issuer := idp.Issuer
	idp.Close()
	if code, _, stderr := runCLI(t, nil, "check-config", "--config", writeConfig(t, cfg)); code != 1 || !strings.Contains(stderr, issuer) {
		t.Errorf("IdP down: exit %d, %q", code, stderr)
	}
}

// A key the table marks reloadable takes effect without a restart:
// provider_display_name on the sign-in page.
func TestReloadProviderDisplayName(t *testing.T) {
	st := startStack(t, stackOptions{config: map[string]any{"skip_provider_button": false}})
	b := newBrowser(t, "", "")
	if r := b.get(st.Front.URL + "/"); !strings.Contains(r.Body, "Sign in with ZITADEL") {
		t.Fatalf("sign-in page before the reload: %s", describe(r))
	}
	cfg := baseConfig(st.IdP.Issuer)
	cfg["skip_provider_button"] = false
	cfg["provider_display_name"] = "Acme SSO"
	rewrite(t, st.Server.ConfigPath, cfg)
	waitFor(t, "the new display name on the sign-in page", func() bool {
		return strings.Contains(b.get(st.Front.URL+"/").Body, "Sign in with Acme SSO")
	})
}
