package integration_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
)

// TestContractWalk walks every row of the contract (CONTRACT.md §3) as a
// browser and as an API client, behind the real Envoy and behind the
// emulator, over HTTP/1.1 and HTTP/2 downstream. Each row asserts what the
// contract promises, and records what the client and the upstream saw;
// the emulator's record must equal Envoy's row by row, so any behaviour in
// which the two front proxies differ fails this test.
func TestContractWalk(t *testing.T) {
	records := map[string][]observation{}
	for _, kind := range []frontKind{realEnvoy, emulator} {
		for _, proto := range []string{"HTTP/1.1", "HTTP/2"} {
			name := string(kind) + " " + proto
			t.Run(name, func(t *testing.T) {
				records[name] = walkContract(t, kind, proto == "HTTP/2")
			})
		}
	}
	for _, proto := range []string{"HTTP/1.1", "HTTP/2"} {
		real, emu := records["envoy "+proto], records["emulator "+proto]
		if real == nil || emu == nil {
			continue // that walk failed already
		}
		if diff := cmp.Diff(real, emu); diff != "" {
			t.Errorf("%s: the emulator differs from the real Envoy (-envoy +emulator):\n%s", proto, diff)
		}
	}
}

// observation is what one row showed, with per-run values (ports, tokens,
// random state) masked.
type observation struct {
	Row    string
	Fields map[string]string
}

// walker holds one walk's stacks and clients.
type walker struct {
	t      *testing.T
	h2     bool
	main   *stack // pass_access_token, set_xauthrequest, JWT bearer tokens
	renew  *stack // sign-in page, refresh on every Check, a user with a chunked session
	record []observation
}

// carol has enough long role names for a session of about 10 cookie chunks
// (a Cookie header of about 40 KB, two thirds of Envoy's default 60 KiB
// request header limit), refreshed on every Check.
func carol() devidp.User {
	var roles []string
	for i := range 100 {
		roles = append(roles, fmt.Sprintf("role-with-a-rather-long-descriptive-name-%03d", i))
	}
	return devidp.User{ID: "user-carol", Username: "carol", Password: "carol-password", Email: "carol@example.com", Name: "Carol Many", Roles: roles}
}

func walkContract(t *testing.T, kind frontKind, h2 bool) []observation {
	users := append(devidp.DefaultUsers(), carol())
	w := &walker{t: t, h2: h2}
	w.main = startStack(t, stackOptions{front: kind, users: users, clients: []devidp.Client{devidp.DefaultClient(), jwtClient}, config: map[string]any{
		"pass_access_token": true, "set_xauthrequest": true,
		"skip_jwt_bearer_tokens": true, "extra_jwt_audiences": []string{jwtClient.ID},
	}})
	w.renew = startStack(t, stackOptions{front: kind, users: users, config: map[string]any{
		"skip_provider_button": false, "cookie_refresh": "1ms", "refresh_grace_period": "0s",
	}})

	alice := w.browser("alice")
	for _, row := range []struct {
		name string
		run  func(*walker, *browser) map[string]string
	}{
		{"browser without a session: 302 to the IdP with a state cookie", rowLoginRedirect},
		{"XHR without a session: 401", rowXHR},
		{"API route (context_extensions auth=bearer-only) without a token: 401", rowAPIRoute},
		{"route with ext_authz disabled: upstream without Check, forged identity removed", rowPublic},
		{"callback: 302 to the original URL with the session cookie, state cleared", rowCallback},
		{"session: identity headers, forged ones overwritten, our cookies stripped", rowSession},
		{"userinfo: 200 JSON local reply", rowUserinfo},
		{"admin route (context_extensions allowed_groups=admin), member: OK", rowAdminAllowed},
		{"admin route, non-member: 403 page", rowAdminDenied},
		{"callback with error=access_denied: 403 page, no session", rowCallbackError},
		{"JWT bearer on the API route: OK with identity", rowBearer},
		{"invalid bearer: 401 with www-authenticate", rowBadBearer},
		{"back-channel logout route: our ops listener, not ext_authz", rowBackchannel},
		{"sign-in page (skip_provider_button=false): 200 HTML", rowSignInPage},
		{"chunked session refreshed on every Check: several set-cookie on OK", rowChunkedRefresh},
		{"request headers over Envoy's 60 KiB limit: 431 (HTTP/1.1), stream reset (HTTP/2)", rowHeadersTooLarge},
		{"sign-out: cookies cleared, 302 to end_session", rowSignOut},
		{"after sign-out: no session", rowAfterSignOut},
	} {
		fields := row.run(w, alice)
		w.record = append(w.record, observation{Row: row.name, Fields: fields})
	}
	return w.record
}

// browser is a browser for user that speaks HTTP/2 (prior knowledge,
// cleartext) to the front proxies when the walk does.
func (w *walker) browser(user string) *browser {
	b := newBrowser(w.t, user, user+"-password")
	if w.h2 {
		b.client.Transport = h2cTo(w.main.Front.URL, w.renew.Front.URL)
	}
	return b
}

// h2cTo sends requests for the given origins over cleartext HTTP/2 and all
// others (the IdP) over HTTP/1.1.
func h2cTo(origins ...string) http.RoundTripper {
	h2 := &http.Transport{Protocols: new(http.Protocols)}
	h2.Protocols.SetUnencryptedHTTP2(true)
	hosts := map[string]bool{}
	for _, o := range origins {
		u, _ := url.Parse(o)
		hosts[u.Host] = true
	}
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if hosts[r.URL.Host] {
			return h2.RoundTrip(r)
		}
		return http.DefaultTransport.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// wantProto checks the response came over the walk's protocol.
func (w *walker) wantProto(r *response) {
	want := "HTTP/1.1"
	if w.h2 {
		want = "HTTP/2.0"
	}
	if r.Proto != want {
		w.t.Errorf("response over %s, want %s", r.Proto, want)
	}
}

// mask replaces what differs between runs: the stacks' addresses, tokens,
// random values.
func (w *walker) mask(s string) string {
	for _, st := range []*stack{w.main, w.renew} {
		s = strings.ReplaceAll(s, st.Front.URL, "{front}")
		s = strings.ReplaceAll(s, st.IdP.Issuer, "{idp}")
		s = strings.ReplaceAll(s, url.QueryEscape(st.Front.URL), "{front}")
		s = strings.ReplaceAll(s, url.QueryEscape(st.IdP.Issuer), "{idp}")
		u, _ := url.Parse(st.Front.URL)
		s = strings.ReplaceAll(s, u.Host, "{front-host}")
	}
	return randomValue.ReplaceAllString(s, "{random}")
}

// randomValue matches long base64url/hex runs: state, nonce, tokens, ids.
var randomValue = regexp.MustCompile(`[A-Za-z0-9_\-.~%]{40,}`)

// client summarises a response as the client saw it: status, the headers
// the contract speaks of, the body of our own pages.
func (w *walker) client(r *response) map[string]string {
	w.wantProto(r)
	f := map[string]string{"status": fmt.Sprint(r.StatusCode)}
	for _, h := range []string{"Location", "Content-Type", "Cache-Control", "Www-Authenticate", "Retry-After"} {
		if v := r.Header.Values(h); len(v) > 0 {
			f[strings.ToLower(h)] = w.mask(strings.Join(v, " | "))
		}
	}
	if sc := r.Header.Values("Set-Cookie"); len(sc) > 0 {
		var out []string
		for _, c := range sc {
			out = append(out, cookieShape(c))
		}
		f["set-cookie"] = strings.Join(out, " | ")
	}
	if r.Header.Get("Content-Type") != "" && !strings.Contains(r.Body, "echo-json") {
		f["body"] = w.mask(r.Body)
	}
	return f
}

// cookieShape is a Set-Cookie with its value masked (empty stays empty).
func cookieShape(sc string) string {
	parts := strings.Split(sc, ";")
	name, value, _ := strings.Cut(parts[0], "=")
	if prefix, _, ok := strings.Cut(name, "_csrf_"); ok {
		name = prefix + "_csrf_{id}"
	}
	if value != "" {
		value = "{value}"
	}
	attrs := []string{name + "=" + value}
	for _, a := range parts[1:] {
		a = strings.TrimSpace(a)
		if strings.HasPrefix(a, "Expires=") {
			a = "Expires={date}"
		}
		if n, err := strconv.Atoi(strings.TrimPrefix(a, "Max-Age=")); err == nil && n > 3600 {
			a = fmt.Sprintf("Max-Age≈%dh", (n+1800)/3600) // seconds pass during a walk
		}
		attrs = append(attrs, a)
	}
	return strings.Join(attrs, "; ")
}

// upstream summarises what the upstream received: every header name, and
// the values of those the contract speaks of.
func (w *walker) upstream(r *response) map[string]string {
	w.wantProto(r)
	got := upstreamSaw(w.t, r)
	f := map[string]string{"status": fmt.Sprint(r.StatusCode), "upstream path": got.Method + " " + got.Path}
	names := make([]string, 0, len(got.Headers))
	for k := range got.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	f["upstream header names"] = strings.Join(names, " ")
	for _, k := range names {
		if strings.HasPrefix(k, "x-forwarded-") || strings.HasPrefix(k, "x-auth-request-") || k == "authorization" || k == "cookie" {
			v := got.Headers[k]
			if k == "x-forwarded-groups" || k == "x-auth-request-groups" {
				v = fmt.Sprintf("%d groups: %.60s", len(strings.Split(v, ",")), v)
			}
			f["upstream "+k] = w.mask(v)
		}
	}
	if sc := r.Header.Values("Set-Cookie"); len(sc) > 0 {
		var out []string
		for _, c := range sc {
			out = append(out, cookieShape(c))
		}
		f["set-cookie"] = strings.Join(out, " | ")
	}
	return f
}

var forged = http.Header{
	"X-Forwarded-User":                  {"mallory"},
	"X-Forwarded-Email":                 {"mallory@evil.test"},
	"X-Forwarded-Groups":                {"admin"},
	"X-Forwarded-Preferred-Username":    {"mallory"},
	"X-Forwarded-Access-Token":          {"forged"},
	"X-Auth-Request-User":               {"mallory"},
	"X-Auth-Request-Email":              {"mallory@evil.test"},
	"X-Auth-Request-Groups":             {"admin"},
	"X-Auth-Request-Preferred-Username": {"mallory"},
	"X-Auth-Request-Access-Token":       {"forged"},
}

func rowLoginRedirect(w *walker, b *browser) map[string]string {
	r := b.get(w.main.Front.URL + "/hello?from=walk")
	if r.StatusCode != http.StatusFound || !strings.HasPrefix(r.Header.Get("Location"), w.main.IdP.Issuer+"/auth?") {
		w.t.Errorf("no session: %s, want 302 to the IdP", describe(r))
	}
	if !slices.ContainsFunc(r.Header.Values("Set-Cookie"), func(c string) bool { return strings.HasPrefix(c, "_oauth2_proxy_csrf_") }) {
		w.t.Errorf("no state cookie: %v", r.Header.Values("Set-Cookie"))
	}
	return w.client(r)
}

func rowXHR(w *walker, b *browser) map[string]string {
	r := w.browser("").do(http.MethodGet, w.main.Front.URL+"/app/data", http.Header{"X-Requested-With": {"XMLHttpRequest"}})
	if r.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(r.Header.Get("Www-Authenticate"), "Bearer") {
		w.t.Errorf("XHR without a session: %s, want 401 with www-authenticate", describe(r))
	}
	return w.client(r)
}

func rowAPIRoute(w *walker, b *browser) map[string]string {
	r := w.browser("").get(w.main.Front.URL + "/api/items")
	if r.StatusCode != http.StatusUnauthorized {
		t := w.t
		t.Errorf("/api/ in a browser without a token: %s, want 401 (bearer-only route)", describe(r))
	}
	return w.client(r)
}

func rowPublic(w *walker, b *browser) map[string]string {
	before := w.main.Front.Checks(w.t)
	r := w.browser("").do(http.MethodGet, w.main.Front.URL+"/public/logo.svg", forged)
	f := w.upstream(r)
	if w.main.Front.Checks(w.t) != before {
		w.t.Error("a /public/ request was sent to ext_authz")
	}
	got := upstreamSaw(w.t, r)
	for k := range forged {
		if v, ok := got.Headers[strings.ToLower(k)]; ok {
			w.t.Errorf("forged %s: %q reached the upstream on a route without ext_authz", k, v)
		}
	}
	return f
}

func rowCallback(w *walker, b *browser) map[string]string {
	cb := beginLogin(w.t, w.main, b, "/hello?from=walk")
	r := b.get(cb.String())
	if r.StatusCode != http.StatusFound || r.Header.Get("Location") != w.main.Front.URL+"/hello?from=walk" {
		w.t.Errorf("callback: %s, want 302 to the original URL", describe(r))
	}
	if _, ok := b.cookie(w.main.Front.URL, "_oauth2_proxy"); !ok {
		w.t.Errorf("no session cookie after the callback: %v", r.Header.Values("Set-Cookie"))
	}
	return w.client(r)
}

func rowSession(w *walker, b *browser) map[string]string {
	u, _ := url.Parse(w.main.Front.URL)
	b.jar.SetCookies(u, []*http.Cookie{{Name: "theme", Value: "dark"}})
	r := b.do(http.MethodGet, w.main.Front.URL+"/hello?from=walk", forged)
	got := upstreamSaw(w.t, r)
	want := map[string]string{
		"x-forwarded-user": "user-alice", "x-forwarded-email": "alice@example.com", "x-forwarded-groups": "admin,reader",
		"x-forwarded-preferred-username": "alice", "x-auth-request-user": "user-alice", "x-auth-request-email": "alice@example.com",
		"x-auth-request-groups": "admin,reader", "x-auth-request-preferred-username": "alice", "cookie": "theme=dark",
	}
	for k, v := range want {
		if got.Headers[k] != v {
			w.t.Errorf("upstream %s = %q, want %q", k, got.Headers[k], v)
		}
	}
	if tok := got.Headers["x-forwarded-access-token"]; tok == "" || tok == "forged" || got.Headers["x-auth-request-access-token"] != tok {
		w.t.Errorf("upstream access token headers %q / %q", tok, got.Headers["x-auth-request-access-token"])
	}
	if len(r.Header.Values("Set-Cookie")) != 0 {
		w.t.Errorf("a plain OK set cookies: %v", r.Header.Values("Set-Cookie"))
	}
	return w.upstream(r)
}

func rowUserinfo(w *walker, b *browser) map[string]string {
	r := b.do(http.MethodGet, w.main.Front.URL+"/oauth2/userinfo", http.Header{"Accept": {"application/json"}})
	if r.StatusCode != http.StatusOK || !strings.Contains(r.Body, `"user-alice"`) {
		w.t.Errorf("userinfo: %s", describe(r))
	}
	return w.client(r)
}

func rowAdminAllowed(w *walker, b *browser) map[string]string {
	r := b.get(w.main.Front.URL + "/admin/panel")
	if got := upstreamSaw(w.t, r); got.Headers["x-forwarded-user"] != "user-alice" {
		w.t.Errorf("admin route for alice: upstream user %q", got.Headers["x-forwarded-user"])
	}
	return w.upstream(r)
}

func rowAdminDenied(w *walker, _ *browser) map[string]string {
	bob := w.browser("bob")
	w.main.login(w.t, bob, "/")
	r := bob.get(w.main.Front.URL + "/admin/panel")
	if r.StatusCode != http.StatusForbidden {
		w.t.Errorf("admin route for bob: %s, want 403", describe(r))
	}
	return w.client(r)
}

func rowCallbackError(w *walker, _ *browser) map[string]string {
	b := w.browser("")
	r := b.get(w.main.Front.URL + "/oauth2/callback?error=access_denied&error_description=" + url.QueryEscape("<b>no</b>"))
	if r.StatusCode != http.StatusForbidden || strings.Contains(r.Body, "<b>no") {
		w.t.Errorf("callback error: %s, want an escaped 403 page", describe(r))
	}
	noSession(w.t, b, w.main, r)
	return w.client(r)
}

func rowBearer(w *walker, _ *browser) map[string]string {
	tok := w.main.accessToken(w.t, jwtClient, "alice")
	r := w.browser("").do(http.MethodGet, w.main.Front.URL+"/api/items", http.Header{"Authorization": {"Bearer " + tok}, "Accept": {"application/json"}})
	got := upstreamSaw(w.t, r)
	if got.Headers["x-forwarded-user"] != "user-alice" || got.Headers["authorization"] != "Bearer "+tok {
		w.t.Errorf("bearer: upstream user %q, authorization passed unchanged: %v", got.Headers["x-forwarded-user"], got.Headers["authorization"] == "Bearer "+tok)
	}
	return w.upstream(r)
}

func rowBadBearer(w *walker, _ *browser) map[string]string {
	r := w.browser("").do(http.MethodGet, w.main.Front.URL+"/api/items", http.Header{"Authorization": {"Bearer not.a.jwt"}, "Accept": {"application/json"}})
	if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Header.Get("Www-Authenticate"), "invalid_token") {
		w.t.Errorf("invalid bearer: %s, want 401 invalid_token", describe(r))
	}
	return w.client(r)
}

func rowBackchannel(w *walker, _ *browser) map[string]string {
	before := w.main.Front.Checks(w.t)
	b := w.browser("")
	req, _ := http.NewRequest(http.MethodPost, w.main.Front.URL+"/oauth2/backchannel_logout", strings.NewReader("logout_token=not-a-token"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := b.client.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	r := readResponse(resp)
	if r.StatusCode != http.StatusBadRequest {
		w.t.Errorf("back-channel logout with a bad token: %s, want our 400", describe(r))
	}
	if w.main.Front.Checks(w.t) != before {
		w.t.Error("the back-channel logout route was sent to ext_authz")
	}
	return w.client(r)
}

func rowSignInPage(w *walker, _ *browser) map[string]string {
	r := w.browser("").get(w.renew.Front.URL + "/reports?q=1")
	if r.StatusCode != http.StatusOK || !strings.Contains(r.Body, "/oauth2/start?rd=") {
		w.t.Errorf("sign-in page: %s", describe(r))
	}
	return w.client(r)
}

func rowChunkedRefresh(w *walker, _ *browser) map[string]string {
	b := w.browser("carol")
	resp, _ := b.follow(w.renew.Front.URL + "/oauth2/start?rd=%2Freports")
	upstreamSaw(w.t, resp)
	if _, ok := b.cookie(w.renew.Front.URL, "_oauth2_proxy_1"); !ok {
		w.t.Fatalf("want a chunked session, cookies %v", b.cookieNames(w.renew.Front.URL))
	}
	calls := w.renew.IdP.Calls("/oauth/token")
	r := b.get(w.renew.Front.URL + "/reports")
	got := upstreamSaw(w.t, r)
	if n := len(strings.Split(got.Headers["x-forwarded-groups"], ",")); n != 100 {
		w.t.Errorf("x-forwarded-groups has %d groups, want 100", n)
	}
	if n := len(r.Request.Header.Get("Cookie")); n < 30_000 {
		w.t.Errorf("the browser sent a %d-byte Cookie header, want a session near Envoy's limit", n)
	}
	if w.renew.IdP.Calls("/oauth/token") == calls {
		w.t.Error("no refresh at the IdP")
	}
	if n := len(r.Header.Values("Set-Cookie")); n < 2 {
		w.t.Errorf("refreshed chunked session: %d set-cookie reached the browser, want one per chunk", n)
	}
	return w.upstream(r)
}

func rowHeadersTooLarge(w *walker, _ *browser) map[string]string {
	before := w.main.Front.Checks(w.t)
	req, _ := http.NewRequest(http.MethodGet, w.main.Front.URL+"/hello", nil)
	req.Header.Set("Cookie", "big="+strings.Repeat("x", 62<<10))
	resp, err := w.browser("").client.Do(req)
	if w.main.Front.Checks(w.t) != before {
		w.t.Error("a request over the header limit was sent to ext_authz")
	}
	if w.h2 {
		// HTTP/2: Envoy resets the stream (INTERNAL_ERROR), no response.
		if err == nil || !strings.Contains(err.Error(), "INTERNAL_ERROR") {
			w.t.Errorf("a 62 KiB cookie header over HTTP/2: %v, want the stream reset", err)
		}
		return map[string]string{"result": "stream reset"}
	}
	if err != nil {
		w.t.Fatal(err)
	}
	r := readResponse(resp)
	if r.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		w.t.Errorf("a 62 KiB cookie header: %s, want 431", describe(r))
	}
	return w.client(r)
}

func rowSignOut(w *walker, b *browser) map[string]string {
	r := b.get(w.main.Front.URL + "/oauth2/sign_out")
	if r.StatusCode != http.StatusFound || !strings.Contains(r.Header.Get("Location"), "id_token_hint=") {
		w.t.Errorf("sign-out: %s, want 302 to end_session", describe(r))
	}
	if _, ok := b.cookie(w.main.Front.URL, "_oauth2_proxy"); ok {
		w.t.Error("the session cookie survived sign-out")
	}
	return w.client(r)
}

func rowAfterSignOut(w *walker, b *browser) map[string]string {
	r := b.get(w.main.Front.URL + "/hello")
	if r.StatusCode != http.StatusFound {
		w.t.Errorf("after sign-out: %s, want the login redirect", describe(r))
	}
	return w.client(r)
}

// readResponse reads and closes a response body.
func readResponse(resp *http.Response) *response {
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return &response{Response: resp, Body: string(body)}
}
