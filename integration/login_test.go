package integration_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
)

// Contract row: no valid session, browser navigation → Denied 302 to the
// authorization endpoint with every parameter, and a state cookie.
func TestBrowserIsSentToTheIdP(t *testing.T) {
	st := startStack(t, stackOptions{})
	b := newBrowser(t, "alice", "alice-password")
	resp := b.get(st.Front.URL + "/app/page?x=1")
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET /app/page: got %s, want 302", describe(resp))
	}
	loc, _ := resp.Location()
	if !strings.HasPrefix(loc.String(), st.IdP.Issuer+"/auth?") {
		t.Fatalf("location %s is not the IdP's authorization endpoint", loc)
	}
	q := loc.Query()
	want := map[string]string{
		"response_type":         "code",
		"client_id":             devidp.DefaultClient().ID,
		"redirect_uri":          st.Front.URL + "/oauth2/callback",
		"code_challenge_method": "S256",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("authorization URL %s = %q, want %q", k, q.Get(k), v)
		}
	}
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 43 {
			t.Errorf("authorization URL %s = %q, want 32 random bytes base64url", k, q.Get(k))
		}
	}
	if !slices.Contains(strings.Fields(q.Get("scope")), "openid") {
		t.Errorf("scope %q lacks openid", q.Get("scope"))
	}
	if !slices.ContainsFunc(b.cookieNames(st.Front.URL), func(n string) bool { return strings.HasPrefix(n, "_oauth2_proxy_csrf_") }) {
		t.Errorf("no state cookie set: %v", resp.Header.Values("Set-Cookie"))
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("redirect cache-control %q, want no-store", got)
	}
}

// Contract rows: callback → 302 to the original URL with the session and the
// state cookie cleared; valid session → OK with identity headers, our
// cookies removed from the upstream's cookie header.
func TestLoginReachesTheUpstreamWithIdentity(t *testing.T) {
	st := startStack(t, stackOptions{config: map[string]any{"pass_access_token": true, "set_xauthrequest": true}})
	b := newBrowser(t, "alice", "alice-password")
	u, _ := url.Parse(st.Front.URL)
	b.jar.SetCookies(u, []*http.Cookie{{Name: "theme", Value: "dark"}})

	resp, hops := b.follow(st.Front.URL + "/app/page?x=1")
	if len(hops) < 4 || !strings.HasPrefix(hops[len(hops)-2], st.Front.URL+"/oauth2/callback?") {
		t.Fatalf("hops %v: want … → callback → original URL", hops)
	}
	if hops[len(hops)-1] != st.Front.URL+"/app/page?x=1" {
		t.Fatalf("landed on %s, want the original URL", hops[len(hops)-1])
	}
	got := upstreamSaw(t, resp)
	want := map[string]string{
		"x-forwarded-user":                  "user-alice",
		"x-forwarded-email":                 "alice@example.com",
		"x-forwarded-groups":                "admin,reader",
		"x-forwarded-preferred-username":    "alice",
		"x-auth-request-user":               "user-alice",
		"x-auth-request-email":              "alice@example.com",
		"x-auth-request-groups":             "admin,reader",
		"x-auth-request-preferred-username": "alice",
	}
	for k, v := range want {
		if got.Headers[k] != v {
			t.Errorf("upstream header %s = %q, want %q", k, got.Headers[k], v)
		}
	}
	if got.Headers["x-forwarded-access-token"] == "" || got.Headers["x-auth-request-access-token"] != got.Headers["x-forwarded-access-token"] {
		t.Errorf("access token headers missing: %q", got.Headers["x-forwarded-access-token"])
	}
	if c := got.Headers["cookie"]; c != "theme=dark" {
		t.Errorf("upstream cookie header %q, want only the app's own cookie theme=dark", c)
	}
	for _, n := range b.cookieNames(st.Front.URL) {
		if strings.Contains(n, "_csrf_") {
			t.Errorf("state cookie %s not cleared after the callback", n)
		}
	}

	// The next request rides on the session, no IdP involved.
	tokenCalls := st.IdP.Calls("/oauth/token")
	again := upstreamSaw(t, b.get(st.Front.URL+"/other"))
	if again.Headers["x-forwarded-user"] != "user-alice" || st.IdP.Calls("/oauth/token") != tokenCalls {
		t.Errorf("second request: user %q, token calls %d → %d", again.Headers["x-forwarded-user"], tokenCalls, st.IdP.Calls("/oauth/token"))
	}
}

// Contract row: every identity header the client sent itself is removed or
// overwritten; the client's own authorization header passes unchanged.
func TestClientIdentityHeadersNeverReachTheUpstream(t *testing.T) {
	st := startStack(t, stackOptions{config: map[string]any{"skip_auth_routes": []string{"^/open$"}}})
	forged := http.Header{
		"X-Forwarded-User":            {"evil"},
		"X-Forwarded-Email":           {"evil@example.com"},
		"X-Forwarded-Groups":          {"admin"},
		"X-Forwarded-Access-Token":    {"forged"},
		"X-Auth-Request-User":         {"evil"},
		"X-Auth-Request-Groups":       {"admin"},
		"X-Auth-Request-Access-Token": {"forged"},
		"Authorization":               {"Basic dXNlcjpwdw=="},
	}
	t.Run("anonymous skip_auth_route", func(t *testing.T) {
		b := newBrowser(t, "", "")
		got := upstreamSaw(t, b.do(http.MethodGet, st.Front.URL+"/open", forged))
		for k := range got.Headers {
			if strings.HasPrefix(k, "x-forwarded-user") || strings.HasPrefix(k, "x-forwarded-email") || strings.HasPrefix(k, "x-forwarded-groups") || strings.HasPrefix(k, "x-forwarded-access") || strings.HasPrefix(k, "x-auth-request") {
				t.Errorf("forged header %s = %q reached the upstream", k, got.Headers[k])
			}
		}
		if got.Headers["authorization"] != "Basic dXNlcjpwdw==" {
			t.Errorf("client authorization header changed: %q", got.Headers["authorization"])
		}
	})
	t.Run("logged in", func(t *testing.T) {
		b := newBrowser(t, "bob", "bob-password")
		st.login(t, b, "/")
		got := upstreamSaw(t, b.do(http.MethodGet, st.Front.URL+"/", forged))
		if got.Headers["x-forwarded-user"] != "user-bob" || got.Headers["x-forwarded-groups"] != "reader" || got.Headers["x-forwarded-email"] != "bob@example.com" {
			t.Errorf("identity headers were not overwritten: %v", got.Headers)
		}
		for _, k := range []string{"x-forwarded-access-token", "x-auth-request-user", "x-auth-request-groups", "x-auth-request-access-token"} {
			if v, ok := got.Headers[k]; ok {
				t.Errorf("forged %s = %q reached the upstream", k, v)
			}
		}
		if got.Headers["authorization"] != "Basic dXNlcjpwdw==" {
			t.Errorf("client authorization header changed: %q", got.Headers["authorization"])
		}
	})
	t.Run("pass_authorization_header overwrites authorization", func(t *testing.T) {
		st := startStack(t, stackOptions{config: map[string]any{"pass_authorization_header": true}})
		b := newBrowser(t, "bob", "bob-password")
		st.login(t, b, "/")
		got := upstreamSaw(t, b.do(http.MethodGet, st.Front.URL+"/", forged))
		if a := got.Headers["authorization"]; !strings.HasPrefix(a, "Bearer ey") {
			t.Errorf("authorization = %q, want Bearer <id_token>", a)
		}
	})
}

// Contract row: no valid session, API request → 401 + www-authenticate,
// never a redirect.
func TestAPICallersGet401(t *testing.T) {
	st := startStack(t, stackOptions{config: map[string]any{"api_routes": []string{"^/v1/"}}})
	b := newBrowser(t, "", "")
	cases := []struct {
		name   string
		method string
		path   string
		header http.Header
	}{
		{"api_routes match", http.MethodGet, "/v1/items", nil},
		{"accept without text/html", http.MethodGet, "/page", http.Header{"Accept": {"application/json"}}},
		{"XMLHttpRequest", http.MethodGet, "/page", http.Header{"X-Requested-With": {"XMLHttpRequest"}}},
		{"POST", http.MethodPost, "/page", nil},
		{"DELETE", http.MethodDelete, "/page", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := b.do(tc.method, st.Front.URL+tc.path, tc.header)
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Www-Authenticate") != "Bearer" {
				t.Fatalf("%s %s: got %s, want 401 with www-authenticate: Bearer", tc.method, tc.path, describe(resp))
			}
			if len(resp.Header.Values("Set-Cookie")) != 0 || resp.Header.Get("Location") != "" {
				t.Fatalf("%s: a 401 must not start a login: %v", tc.name, resp.Header)
			}
		})
	}
}

// Contract rows: sign-in page when skip_provider_button=false, and
// /oauth2/start?rd= returning to rd.
func TestSignInPageAndStart(t *testing.T) {
	st := startStack(t, stackOptions{config: map[string]any{"skip_provider_button": false}})
	b := newBrowser(t, "alice", "alice-password")
	page := b.get(st.Front.URL + "/reports?year=2026")
	if page.StatusCode != http.StatusOK || !strings.Contains(page.Body, "Sign in with ZITADEL") {
		t.Fatalf("GET /reports: got %s, want the 200 sign-in page", describe(page))
	}
	link := "/oauth2/start?rd=%2Freports%3Fyear%3D2026"
	if !strings.Contains(page.Body, `href="`+strings.ReplaceAll(link, "&", "&amp;")+`"`) {
		t.Fatalf("sign-in page lacks the start link %s:\n%s", link, page.Body)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options"} {
		if page.Header.Get(h) == "" {
			t.Errorf("sign-in page lacks %s", h)
		}
	}
	resp, hops := b.follow(st.Front.URL + link)
	if hops[len(hops)-1] != st.Front.URL+"/reports?year=2026" || upstreamSaw(t, resp).Headers["x-forwarded-user"] != "user-alice" {
		t.Fatalf("start → login: landed at %v", hops)
	}
}

// Contract row: /oauth2/start?rd= (same host or whitelist_domains only).
func TestReturnTargetsAreChecked(t *testing.T) {
	st := startStack(t, stackOptions{config: map[string]any{"whitelist_domains": []string{".trusted.test:*"}}})
	front, _ := url.Parse(st.Front.URL)
	cases := []struct{ rd, want string }{
		{"/deep/link?q=1", st.Front.URL + "/deep/link?q=1"},
		{"http://evil.example/steal", st.Front.URL + "/"},
		{"//evil.example/steal", st.Front.URL + "/"},
		{"/\\evil.example", st.Front.URL + "/"},
		{"https://user@" + front.Host + "/", st.Front.URL + "/"},
		{"javascript:alert(1)", st.Front.URL + "/"},
		{"http://app.trusted.test:9443/home", "http://app.trusted.test:9443/home"},
		// The payload classes of oauth2-proxy's open-redirect advisories
		// (SECURITY.md): each ends on our own site.
		{"/%5Cevil.example", st.Front.URL + "/"},
		{"/%2f%2fevil.example", st.Front.URL + "/"},
		{"https:evil.example", st.Front.URL + "/"},
		{"/\t/evil.example", st.Front.URL + "/"},
		{"/ /evil.example", st.Front.URL + "/%20/evil.example"}, // a local path
		{"/./\\evil.example", st.Front.URL + "/"},
		{"http://" + front.Host + "@evil.example/", st.Front.URL + "/"},
		{"http://eviltrusted.test/", st.Front.URL + "/"},
	}
	for _, tc := range cases {
		t.Run(tc.rd, func(t *testing.T) {
			b := newBrowser(t, "bob", "bob-password")
			_, hops := b.follow(st.Front.URL+"/oauth2/start?rd="+url.QueryEscape(tc.rd), front.Host, st.IdP.Issuer[len("http://"):])
			if last := hops[len(hops)-1]; last != tc.want {
				t.Fatalf("rd=%s: ended at %s, want %s (hops %v)", tc.rd, last, tc.want, hops)
			}
		})
	}
}

// Contract row: authenticated but not in allowed_groups / email_domains →
// 403, and no session is created at the callback.
func TestForbiddenUsersGetNoSession(t *testing.T) {
	cases := []struct {
		name   string
		config map[string]any
		user   string
		allow  bool
	}{
		{"role admin required, bob is reader", map[string]any{"allowed_groups": []string{"admin"}}, "bob", false},
		{"role admin required, alice is admin", map[string]any{"allowed_groups": []string{"admin"}}, "alice", true},
		{"email domain example.com, eve is other.org", map[string]any{"email_domains": []string{"example.com"}}, "eve", false},
		{"email subdomains of .example.com include example.com", map[string]any{"email_domains": []string{".example.com"}}, "bob", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := startStack(t, stackOptions{config: tc.config})
			b := newBrowser(t, tc.user, tc.user+"-password")
			resp := st.login(t, b, "/")
			_, hasSession := b.cookie(st.Front.URL, "_oauth2_proxy")
			if tc.allow {
				upstreamSaw(t, resp)
				return
			}
			if resp.StatusCode != http.StatusForbidden || hasSession {
				t.Fatalf("%s: got %s, session cookie %v; want 403 and no session", tc.user, describe(resp), hasSession)
			}
		})
	}
}

// Contract row: /oauth2/userinfo.
func TestUserinfo(t *testing.T) {
	st := startStack(t, stackOptions{})
	b := newBrowser(t, "alice", "alice-password")
	if r := b.get(st.Front.URL + "/oauth2/userinfo"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("userinfo without session: got %s, want 401", describe(r))
	}
	st.login(t, b, "/")
	r := b.get(st.Front.URL + "/oauth2/userinfo")
	want := `{"user":"user-alice","email":"alice@example.com","groups":["admin","reader"],"preferred_username":"alice"}`
	if r.StatusCode != http.StatusOK || r.Body != want || r.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("userinfo: got %s, want 200 %s", describe(r), want)
	}
}

// Contract row: /oauth2/sign_out clears the session and sends the browser to
// end_session_endpoint with id_token_hint, client_id and an absolute
// post_logout_redirect_uri.
func TestSignOut(t *testing.T) {
	st := startStack(t, stackOptions{})
	idpHost := st.IdP.Issuer[len("http://"):]
	for _, tc := range []struct{ rd, want string }{
		{"/goodbye", st.Front.URL + "/goodbye"},
		{"http://evil.example/", st.Front.URL + "/"},
	} {
		t.Run(tc.rd, func(t *testing.T) {
			b := newBrowser(t, "alice", "alice-password")
			st.login(t, b, "/")
			resp := b.get(st.Front.URL + "/oauth2/sign_out?rd=" + url.QueryEscape(tc.rd))
			loc, _ := resp.Location()
			if resp.StatusCode != http.StatusFound || loc == nil || loc.Host != idpHost || loc.Path != "/end_session" {
				t.Fatalf("sign_out: got %s, want 302 to the IdP's end_session_endpoint", describe(resp))
			}
			q := loc.Query()
			if q.Get("id_token_hint") == "" || q.Get("client_id") != devidp.DefaultClient().ID || q.Get("post_logout_redirect_uri") != tc.want {
				t.Fatalf("end_session parameters: %v", q)
			}
			if _, ok := b.cookie(st.Front.URL, "_oauth2_proxy"); ok {
				t.Fatal("session cookie not cleared")
			}
			// The IdP accepts the registered post-logout URI and sends the browser back.
			back := b.get(loc.String())
			if l := back.Header.Get("Location"); back.StatusCode != http.StatusFound || !strings.HasPrefix(l, tc.want) {
				t.Fatalf("IdP end_session: got %s, want a redirect to %s", describe(back), tc.want)
			}
			if r := b.get(st.Front.URL + "/"); r.StatusCode != http.StatusFound {
				t.Fatalf("after sign-out: got %s, want the login redirect", describe(r))
			}
		})
	}
}

// Two tabs start logins at once; both complete.
func TestTwoTabsLogInAtOnce(t *testing.T) {
	st := startStack(t, stackOptions{})
	b := newBrowser(t, "alice", "alice-password")
	first := b.get(st.Front.URL + "/tab-one")
	second := b.get(st.Front.URL + "/tab-two")
	l1, _ := first.Location()
	l2, _ := second.Location()
	// Finish the second tab first, then the first.
	r2, hops2 := b.follow(l2.String())
	r1, hops1 := b.follow(l1.String())
	if hops2[len(hops2)-1] != st.Front.URL+"/tab-two" || hops1[len(hops1)-1] != st.Front.URL+"/tab-one" {
		t.Fatalf("tabs landed at %s and %s", hops1[len(hops1)-1], hops2[len(hops2)-1])
	}
	upstreamSaw(t, r1)
	upstreamSaw(t, r2)
}

// skip_auth_routes: METHOD=regex and regex; dot segments never match.
func TestSkipAuthRoutes(t *testing.T) {
	st := startStack(t, stackOptions{config: map[string]any{"skip_auth_routes": []string{"GET=^/health$", "^/assets/"}}})
	b := newBrowser(t, "", "")
	cases := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/health", http.StatusOK},
		{http.MethodPost, "/health", http.StatusUnauthorized},
		{http.MethodGet, "/assets/app.css", http.StatusOK},
		{http.MethodGet, "/assets/%2e%2e/admin", http.StatusFound},
		{http.MethodGet, "/healthz", http.StatusFound},
	}
	for _, tc := range cases {
		if r := b.do(tc.method, st.Front.URL+tc.path, nil); r.StatusCode != tc.want {
			t.Errorf("%s %s: got %d, want %d", tc.method, tc.path, r.StatusCode, tc.want)
		}
	}
}

// A route with ext_authz disabled in envoy.yaml is never checked.
func TestEnvoyRouteWithExtAuthzDisabled(t *testing.T) {
	st := startStack(t, stackOptions{})
	b := newBrowser(t, "", "")
	before := st.Front.Checks(t)
	upstreamSaw(t, b.get(st.Front.URL+"/public/logo.svg"))
	if st.Front.Checks(t) != before {
		t.Fatal("a /public/ request was sent to ext_authz")
	}
}

// A session too large for one cookie is split into NAME_0…n and still works.
func TestLargeSessionIsChunked(t *testing.T) {
	var roles []string
	for i := range 80 { // about 9 cookies: under the cap of 12
		roles = append(roles, "role-with-a-rather-long-descriptive-name-"+strings.Repeat("x", 10)+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	users := append(devidp.DefaultUsers(), devidp.User{ID: "user-carol", Username: "carol", Password: "carol-password", Email: "carol@example.com", Name: "Carol Many", Roles: roles})
	st := startStack(t, stackOptions{users: users})
	b := newBrowser(t, "carol", "carol-password")
	got := upstreamSaw(t, st.login(t, b, "/"))
	if _, ok := b.cookie(st.Front.URL, "_oauth2_proxy_1"); !ok {
		t.Fatalf("want a chunked session, cookies %v", b.cookieNames(st.Front.URL))
	}
	if n := len(strings.Split(got.Headers["x-forwarded-groups"], ",")); n != 80 {
		t.Fatalf("x-forwarded-groups has %d groups, want 80", n)
	}
}
