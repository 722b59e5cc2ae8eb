package integration_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/envoy"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
)

// One server, several apps behind the real Envoy and its shipped
// envoy.yaml: app1 is chosen by its host, app2 by the context_extensions
// key "app" its virtual host sets, anything else goes to the default app
// (when there is one).

// appClient is AppClient with JWT access tokens, so bearer tests can read
// their audience.
func appClient(name string) devidp.Client {
	c := devidp.AppClient(name)
	c.JWTAccessTokens = true
	// devidp.Tokens logs in with this redirect URI.
	c.RedirectURIGlobs = append(c.RedirectURIGlobs, "http://127.0.0.1:1/oauth2/callback")
	return c
}

func appEntry(name string, hosts ...string) map[string]any {
	c := appClient(name)
	e := map[string]any{"name": name, "client_id": c.ID, "client_secret": c.Secret}
	if len(hosts) > 0 {
		e["hosts"] = hosts
	}
	return e
}

func appsStack(t *testing.T, config map[string]any, envoyConfig ...[]byte) *stack {
	t.Helper()
	o := stackOptions{
		config:  config,
		clients: []devidp.Client{devidp.DefaultClient(), appClient("app1"), appClient("app2"), appClient("app3")},
	}
	if len(envoyConfig) > 0 {
		o.envoy = envoyConfig[0]
	}
	return startStack(t, o)
}

// withAppVirtualHost is the shipped envoy.yaml with one more virtual host,
// for NAME.localhost, naming app NAME as the shipped ones do: Envoy sends
// a host without a virtual host of its own to the catch-all, the default
// app's.
func withAppVirtualHost(t *testing.T, name string) []byte {
	t.Helper()
	cfg, err := envoy.WithVirtualHosts(envoy.VirtualHost{Name: name, Domains: []string{name + ".localhost", name + ".localhost:*"}, App: name})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// appURL is the front proxy reached under host name NAME.localhost.
func (st *stack) appURL(name string) string {
	u, _ := url.Parse(st.Front.URL)
	return "http://" + name + ".localhost:" + u.Port()
}

// loginClient is the client_id of the IdP authorization request that a
// browser without a session is sent to.
func loginClient(t *testing.T, r *response) string {
	t.Helper()
	if r.StatusCode != http.StatusFound {
		t.Fatalf("want a login redirect, got %s", describe(r))
	}
	loc, _ := url.Parse(r.Header.Get("Location"))
	return loc.Query().Get("client_id")
}

func TestAppsLogInIndependentlyInOneBrowser(t *testing.T) {
	// app1 claims app2's host too: the route's context_extensions (app:
	// app2 on that virtual host) must win over it.
	st := appsStack(t, map[string]any{"apps": []map[string]any{
		appEntry("app1", "app1.localhost", "app2.localhost"),
		appEntry("app2"),
	}})
	app1, app2 := st.appURL("app1"), st.appURL("app2")
	b := newBrowser(t, "alice", "alice-password")

	if got := loginClient(t, b.get(app1+"/")); got != appClient("app1").ID {
		t.Fatalf("app1.localhost logs in with client %q", got)
	}
	if got := loginClient(t, b.get(app2+"/")); got != appClient("app2").ID {
		t.Fatalf("app2.localhost (context_extensions app=app2) logs in with client %q", got)
	}
	if got := loginClient(t, b.get(st.Front.URL+"/")); got != devidp.DefaultClient().ID {
		t.Fatalf("another host logs in with client %q, want the default app's", got)
	}

	resp, _ := b.follow(app1 + "/one")
	if saw := upstreamSaw(t, resp); saw.Headers["x-forwarded-user"] != "user-alice" || saw.Path != "/one" {
		t.Fatalf("app1 login: %+v", saw)
	}
	// Signed in to app1 is not signed in to app2.
	if got := loginClient(t, b.get(app2+"/")); got != appClient("app2").ID {
		t.Fatalf("app2 after app1's login: client %q", got)
	}
	// app1's cookie (same name, _oauth2_proxy, as app2's) replayed on
	// app2's host: no session there.
	value, ok := b.cookie(app1+"/", "_oauth2_proxy")
	if !ok {
		t.Fatalf("no app1 session cookie; have %v", b.cookieNames(app1+"/"))
	}
	for _, target := range []string{app2 + "/", st.Front.URL + "/"} {
		r := rawGet(t, target, "_oauth2_proxy="+value, "application/json")
		r.Body.Close()
		if r.StatusCode != http.StatusUnauthorized {
			t.Errorf("app1's cookie on %s: %d, want 401", target, r.StatusCode)
		}
	}
	if r := rawGet(t, app1+"/", "_oauth2_proxy="+value, "application/json"); r.StatusCode != http.StatusOK {
		t.Errorf("app1's cookie on app1: %d", r.StatusCode)
	}

	resp, _ = b.follow(app2 + "/two")
	if saw := upstreamSaw(t, resp); saw.Headers["x-forwarded-user"] != "user-alice" || saw.Path != "/two" {
		t.Fatalf("app2 login: %+v", saw)
	}
	upstreamSaw(t, b.get(app1+"/again")) // both sessions live side by side

	// Sign-out ends the app it is sent to, not the other.
	if r := b.get(app2 + "/oauth2/sign_out"); r.StatusCode != http.StatusFound {
		t.Fatalf("sign-out: %s", describe(r))
	}
	if got := loginClient(t, b.get(app2+"/")); got != appClient("app2").ID {
		t.Fatalf("app2 after its sign-out: client %q", got)
	}
	upstreamSaw(t, b.get(app1+"/still"))

	m := scrape(t, st.Server)
	for _, want := range []string{
		`zitadel_ext_authz_logins_completed_total{app="app1"} 1`,
		`zitadel_ext_authz_logins_completed_total{app="app2"} 1`,
		`zitadel_ext_authz_checks_total{app="app1",decision="allow",reason="session"}`,
		`zitadel_ext_authz_checks_total{app="default",decision="redirect",reason="login_redirect"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Three apps on one issuer: one discovery for all of them.
	if n := st.IdP.Calls("/.well-known/openid-configuration"); n != 1 {
		t.Errorf("discovery fetched %d times for three apps on one issuer, want once", n)
	}
	for _, line := range strings.Split(m, "\n") {
		if strings.HasPrefix(line, "zitadel_ext_authz_checks_total{") || strings.HasPrefix(line, "zitadel_ext_authz_logins_") {
			t.Log(line)
		}
	}
}

func TestAppsWithoutDefaultAppRefuseUnknownHosts(t *testing.T) {
	st := appsStack(t, map[string]any{
		"client_id": "", "client_secret": "",
		"apps": []map[string]any{appEntry("app1", "app1.localhost")},
	})
	b := newBrowser(t, "alice", "alice-password")
	r := b.get(st.Front.URL + "/somewhere")
	if r.StatusCode != http.StatusForbidden || !strings.Contains(r.Body, "No application is configured for this host name") {
		t.Fatalf("unknown host: %s", describe(r))
	}
	waitFor(t, "a log line naming the host", func() bool {
		return strings.Contains(st.Server.Logs(), `"reason":"unknown_host","host":"127.0.0.1:`)
	})
	// app2's virtual host names an app that isn't configured: a
	// misconfigured route, not a login.
	if r := b.get(st.appURL("app2") + "/"); r.StatusCode != http.StatusInternalServerError {
		t.Errorf("route naming a missing app: %s", describe(r))
	}
	resp, _ := b.follow(st.appURL("app1") + "/")
	upstreamSaw(t, resp)
	if m := scrape(t, st.Server); !strings.Contains(m, `zitadel_ext_authz_checks_total{app="none",decision="forbidden",reason="unknown_host"} 1`) {
		t.Errorf("metrics lack the unknown host:\n%s", m)
	}
}

func TestAppsBearerTokensKeepToTheirAudience(t *testing.T) {
	st := appsStack(t, map[string]any{
		"skip_jwt_bearer_tokens": true,
		"apps":                   []map[string]any{appEntry("app1", "app1.localhost"), appEntry("app2", "app2.localhost")},
	})
	token := st.accessToken(t, appClient("app1"), "alice")
	call := func(base string) *response {
		return newBrowser(t, "", "").do(http.MethodGet, base+"/data", http.Header{"Authorization": {"Bearer " + token}, "Accept": {"application/json"}})
	}
	if r := call(st.appURL("app1")); r.StatusCode != http.StatusOK {
		t.Fatalf("app1's token on app1: %s", describe(r))
	}
	// Twice: the second answer comes from the shared token cache, which
	// must not hand app1's verdict to app2.
	for range 2 {
		if r := call(st.appURL("app2")); r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Header.Get("Www-Authenticate"), "invalid_token") {
			t.Fatalf("app1's token on app2: %s", describe(r))
		}
	}
	if r := call(st.Front.URL); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("app1's token on the default app: %s", describe(r))
	}
}

// A reload adds app3 and removes app2 while Checks for app1 run: none of
// them fails, app1's session survives, app3 serves at once and app2's
// route is left naming an app that is gone.
func TestAppsReloadAddsAndRemovesAppsWhileChecksRun(t *testing.T) {
	cfg := map[string]any{"apps": []map[string]any{appEntry("app1", "app1.localhost"), appEntry("app2")}}
	st := appsStack(t, cfg, withAppVirtualHost(t, "app3"))
	app1 := st.appURL("app1")
	b := newBrowser(t, "alice", "alice-password")
	resp, _ := b.follow(app1 + "/")
	upstreamSaw(t, resp)
	resp, _ = b.follow(st.appURL("app2") + "/")
	upstreamSaw(t, resp)
	app2Cookie, _ := b.cookie(st.appURL("app2")+"/", "_oauth2_proxy")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var checks, failures atomic.Int64
	cookie := cookieHeader(b, app1)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				r := rawGet(t, app1+"/", cookie, "application/json")
				r.Body.Close()
				checks.Add(1)
				if r.StatusCode != http.StatusOK {
					failures.Add(1)
				}
			}
		}()
	}
	next := baseConfig(st.IdP.Issuer)
	next["apps"] = []map[string]any{appEntry("app1", "app1.localhost"), appEntry("app3", "app3.localhost")}
	rewrite(t, st.Server.ConfigPath, next)
	waitFor(t, "app3 served", func() bool {
		r := b.get(st.appURL("app3") + "/")
		return r.StatusCode == http.StatusFound && strings.Contains(r.Header.Get("Location"), url.QueryEscape(appClient("app3").ID))
	})
	close(stop)
	wg.Wait()
	if checks.Load() == 0 || failures.Load() != 0 {
		t.Fatalf("%d of %d Checks for app1 failed during the reload", failures.Load(), checks.Load())
	}
	upstreamSaw(t, b.get(app1+"/after"))
	if r := rawGet(t, st.appURL("app2")+"/", "_oauth2_proxy="+app2Cookie, "application/json"); r.StatusCode != http.StatusInternalServerError {
		t.Errorf("removed app2's session: %d, want the misconfigured-route 500", r.StatusCode)
	}
	waitFor(t, "the reload's log line", func() bool {
		return strings.Contains(st.Server.Logs(), `"apps":["app3: added","app2: removed"]`)
	})
	t.Logf("%d Checks for app1 during the reload, none failed", checks.Load())

	// A changed client (id and secret) rebuilds app1: the next login uses
	// it, the sessions made before live on.
	changed := appEntry("app1", "app1.localhost")
	changed["client_id"], changed["client_secret"] = appClient("app3").ID, appClient("app3").Secret
	next["apps"] = []map[string]any{changed, appEntry("app3", "app3.localhost")}
	rewrite(t, st.Server.ConfigPath, next)
	waitFor(t, "app1's new client", func() bool {
		r := newBrowser(t, "", "").get(app1 + "/")
		return r.StatusCode == http.StatusFound && strings.Contains(r.Header.Get("Location"), url.QueryEscape(appClient("app3").ID))
	})
	upstreamSaw(t, b.get(app1+"/old-session"))
	waitFor(t, "the reload's log line saying app1 was rebuilt", func() bool {
		return strings.Contains(st.Server.Logs(), "app1: rebuilt (client_id, client_secret changed)")
	})
}

// A back-channel logout token is for one app (its aud): that app's sessions
// of the user end, the same user's sessions of the other apps stay; in
// both session stores.
func TestAppsBackchannelLogoutEndsOnlyItsApp(t *testing.T) {
	for _, mode := range []string{"cookie", "redis"} {
		t.Run(mode, func(t *testing.T) {
			cfg := map[string]any{"apps": []map[string]any{appEntry("app1", "app1.localhost"), appEntry("app2", "app2.localhost")}}
			if mode == "redis" {
				cfg["session_store_type"] = "redis"
				cfg["redis_url"] = "redis://" + startRedis(t).addr
			}
			st := appsStack(t, cfg)
			b := newBrowser(t, "alice", "alice-password")
			for _, u := range []string{st.appURL("app1"), st.appURL("app2"), st.Front.URL} {
				resp, _ := b.follow(u + "/")
				upstreamSaw(t, resp)
			}
			token := logoutToken(t, st.IdP, func(c map[string]any) { c["aud"] = []string{appClient("app1").ID} })
			if code, body := postLogoutTo(t, st.Front.URL, token); code != http.StatusOK {
				t.Fatalf("logout: %d %s", code, body)
			}
			if got := loginClient(t, b.get(st.appURL("app1")+"/after")); got != appClient("app1").ID {
				t.Errorf("app1 after its logout: login client %q", got)
			}
			upstreamSaw(t, b.get(st.appURL("app2")+"/after"))
			upstreamSaw(t, b.get(st.Front.URL+"/after"))
			// A token for no configured app is refused.
			stranger := logoutToken(t, st.IdP, func(c map[string]any) { c["aud"] = []string{"someone-else"} })
			if code, _ := postLogoutTo(t, st.Front.URL, stranger); code != http.StatusBadRequest {
				t.Errorf("logout token for another client: %d, want 400", code)
			}
			waitFor(t, "the logout's log line naming app1", func() bool {
				return strings.Contains(st.Server.Logs(), `"msg":"back-channel logout","app":"app1"`)
			})
		})
	}
}

// check-config prints each app's effective settings (its own keys marked,
// secrets masked) and checks each issuer once, naming the app whose issuer
// fails.
func TestCheckConfigWithApps(t *testing.T) {
	idp := devidp.StartT(t, devidp.Options{})
	other := devidp.StartT(t, devidp.Options{})
	cfg := baseConfig(idp.Issuer)
	app2 := appEntry("app2", "app2.localhost")
	app2["oidc_issuer_url"] = other.Issuer
	cfg["apps"] = []map[string]any{appEntry("app1", "app1.localhost"), app2}
	code, stdout, stderr := runCLI(t, nil, "check-config", "--config", writeConfig(t, cfg))
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	for _, want := range []string{
		"# app app1: ", "hosts = [app1.localhost]", "client_id = " + appClient("app1").ID + "   # this app's",
		"# app app2: ", "oidc_issuer_url = " + other.Issuer + "   # this app's",
		"# discovery of " + idp.Issuer + " and its JWKS: ok", "# discovery of " + other.Issuer + " and its JWKS: ok",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Count(stdout, "# discovery of "+idp.Issuer) != 1 {
		t.Error("an issuer shared by two apps was checked twice")
	}
	if strings.Contains(stdout+stderr, appClient("app1").Secret) {
		t.Error("check-config printed an app's secret")
	}
	issuer := other.Issuer
	other.Close()
	if code, _, stderr := runCLI(t, nil, "check-config", "--config", writeConfig(t, cfg)); code != 1 || !strings.Contains(stderr, issuer+" (app app2)") {
		t.Errorf("app2's IdP down: exit %d, %q", code, stderr)
	}
}

// /readyz waits for every app's issuer and names the ones not discovered
// yet with their apps.
func TestAppsReadinessNamesTheIssuerNotReached(t *testing.T) {
	idp := devidp.StartT(t, devidp.Options{Clients: []devidp.Client{devidp.DefaultClient(), appClient("app1")}})
	cfg := baseConfig(idp.Issuer)
	down := appEntry("app1", "app1.localhost")
	down["oidc_issuer_url"] = "http://127.0.0.1:1"
	cfg["apps"] = []map[string]any{down}
	srv := startServer(t, cfg)
	waitFor(t, "/readyz naming the unreachable issuer and its app", func() bool {
		resp, err := http.Get("http://" + srv.HTTPAddr + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(body), "http://127.0.0.1:1 (apps app1)") && !strings.Contains(string(body), idp.Issuer)
	})
}
