package integration_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/envoy"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
)

// The edges an attacker probes, through the real Envoy and the shipped
// envoy.yaml (SECURITY.md "Peers' advisories, replayed"). Each failed
// before its fix.

// rawHTTP sends one HTTP/1.1 request exactly as written (a Host header
// no net/http client would send) and returns the status and body.
func rawHTTP(t *testing.T, front, request string) (int, string) {
	t.Helper()
	resp, body := rawRequest(t, front, request)
	return resp.StatusCode, body
}

// rawRequest is rawHTTP with the whole response ("\n" in request is CRLF).
func rawRequest(t *testing.T, front, request string) (*http.Response, string) {
	t.Helper()
	conn := dialFront(t, front)
	defer conn.Close()
	if _, err := conn.Write([]byte(strings.ReplaceAll(request, "\n", "\r\n"))); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%q: %v", request, err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	_, _ = bufio.NewReader(resp.Body).WriteTo(&b)
	return resp, b.String()
}

// dialFront opens a connection to the front proxy, closed within 10 s.
func dialFront(t *testing.T, front string) net.Conn {
	t.Helper()
	u, _ := url.Parse(front)
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	return conn
}

// A session of app1 reaches only app1's upstream: a Host that Envoy routes
// to another virtual host (the catch-all) is judged by that virtual host's
// app, whatever the Host spells. bob is a reader the default app refuses.
func TestOneAppsSessionNeverReachesAnotherAppsUpstream(t *testing.T) {
	app1 := appEntry("app1", "app1.localhost")
	app1["allowed_groups"] = []string{"reader"}
	st := appsStack(t, map[string]any{
		"allowed_groups": []string{"admin"}, // the default app: admins only
		"apps":           []map[string]any{app1},
	})
	b := newBrowser(t, "bob", "bob-password")
	resp, _ := b.follow(st.appURL("app1") + "/")
	if saw := upstreamSaw(t, resp); saw.Headers["x-forwarded-user"] != "user-bob" {
		t.Fatalf("bob on app1: %+v", saw)
	}
	cookie := cookieHeader(b, st.appURL("app1"))
	port := strings.TrimPrefix(st.Front.URL[strings.LastIndex(st.Front.URL, ":"):], ":")
	for _, tc := range []struct {
		host string
		want int // 200: app1 judged it (its upstream); 401: the default app did
	}{
		{"app1.localhost:" + port, 200},
		{"app1.localhost", 200},
		{"APP1.LocalHost:" + port, 200},  // Envoy lower-cases, so do we
		{"app1.localhost.:" + port, 200}, // strip_trailing_host_dot: app1's virtual host
		{"app1.localhost.", 200},
		{"app1.localhost:", 401},              // no virtual host of app1 matches: the catch-all
		{"app1.localhost:x", 200},             // app1.localhost:* matches any port text in Envoy, so app1's
		{"xn--app1-9ta.localhost", 401},       // punycode is another name
		{"app1.localhost.evil.example", 401},  // a suffix is no match
		{"evil.app1.localhost:" + port, 401},  // nor a subdomain
		{"app1.localhost:" + port + "0", 200}, // any port: app1.localhost:*
	} {
		req := fmt.Sprintf("GET /secret HTTP/1.1\nHost: %s\nCookie: %s\nAccept: application/json\nConnection: close\n\n", tc.host, cookie)
		status, body := rawHTTP(t, st.Front.URL, req)
		if status != tc.want {
			t.Errorf("Host %q with app1's cookie: %d, want %d (%.200s)", tc.host, status, tc.want, body)
		}
	}
}

// trusted_ips with reverse_proxy: Envoy (use_remote_address) appends the
// peer it saw to X-Forwarded-For, and we read that entry, so a client that
// writes a trusted address itself gets the login like anyone else.
func TestTrustedIPsCantBeClaimedInXForwardedFor(t *testing.T) {
	st := startStack(t, stackOptions{config: map[string]any{
		"trusted_ips": []string{"10.0.0.0/8"}, "reverse_proxy": true, "real_client_ip_header": "X-Forwarded-For",
	}})
	b := newBrowser(t, "", "")
	for _, xff := range [][]string{{"10.9.9.9"}, {"10.9.9.9, 10.1.1.1"}, {"10.9.9.9", "10.1.1.1"}} {
		r := b.do(http.MethodGet, st.Front.URL+"/secret", http.Header{"X-Forwarded-For": xff, "Accept": {"application/json"}})
		if r.StatusCode != http.StatusUnauthorized {
			t.Errorf("X-Forwarded-For: %q from 127.0.0.1: %s, want 401", xff, describe(r))
		}
	}
	// Control: Envoy appended exactly one entry (for a loopback peer its
	// own address, not 127.0.0.1), so with trusted_proxy_hops 2, as behind
	// a load balancer that appends, the entry left of it is what counts.
	st2 := startStack(t, stackOptions{config: map[string]any{
		"trusted_ips": []string{"10.0.0.0/8"}, "reverse_proxy": true, "real_client_ip_header": "X-Forwarded-For", "trusted_proxy_hops": 2,
	}})
	r := b.do(http.MethodGet, st2.Front.URL+"/secret", http.Header{"X-Forwarded-For": {"10.9.9.9"}, "Accept": {"application/json"}})
	if saw := upstreamSaw(t, r); !strings.HasPrefix(saw.Headers["x-forwarded-for"], "10.9.9.9,") {
		t.Errorf("upstream's X-Forwarded-For: %q, want the client's entry and Envoy's", saw.Headers["x-forwarded-for"])
	}
}

// x_forwarded_user is X-Forwarded-User to CGI, WSGI, PHP and Rails
// (oauth2-proxy GHSA-vjrc-mh2v-45x6): the shipped envoy.yaml refuses such
// headers, on routes without ext_authz too.
func TestUnderscoreIdentityHeadersAreRefused(t *testing.T) {
	st := startStack(t, stackOptions{config: map[string]any{"skip_auth_routes": []string{"^/open$"}}})
	for _, path := range []string{"/open", "/public/x", "/secret"} {
		status, body := rawHTTP(t, st.Front.URL, "GET "+path+" HTTP/1.1\nHost: 127.0.0.1\nx_forwarded_user: admin\nConnection: close\n\n")
		if status != http.StatusBadRequest {
			t.Errorf("%s with x_forwarded_user: %d, want 400 (%.200s)", path, status, body)
		}
	}
}

// A token the IdP vouches for is still not for us unless it names us: an
// ID token is no access token (item 6), and an introspected token of
// another client of the project is another app's (item 7), also with
// introspect_jwt_bearer_tokens.
func TestBearerTokensMustBeAccessTokensForUs(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	api := devidp.Client{ID: "api-introspect@zitadel-ext-authz", APIKey: key, KeyID: "302917284616765475"}
	web := devidp.AppClient("shop") // another app of the project, opaque tokens
	web.RedirectURIGlobs = append(web.RedirectURIGlobs, "http://127.0.0.1:1/oauth2/callback")
	other := jwtClient // JWT access tokens, not in extra_jwt_audiences here
	for _, force := range []bool{false, true} {
		t.Run(fmt.Sprintf("introspect_jwt_bearer_tokens=%v", force), func(t *testing.T) {
			st := startStack(t, stackOptions{
				config:  map[string]any{"skip_jwt_bearer_tokens": true, "introspection_key_file": writeKeyFile(t, api), "introspect_jwt_bearer_tokens": force},
				clients: []devidp.Client{devidp.DefaultClient(), api, web, other},
			})
			ours, err := st.IdP.Tokens(t.Context(), devidp.DefaultClient(), "alice", "alice-password")
			if err != nil {
				t.Fatal(err)
			}
			if r := apiCall(t, st, "/api/items", ours.AccessToken); r.StatusCode != http.StatusOK {
				t.Fatalf("our client's access token: %s", describe(r))
			}
			idToken, _ := ours.Extra("id_token").(string)
			if idToken == "" {
				t.Fatal("no ID token from the IdP")
			}
			for name, tok := range map[string]string{
				"our client's ID token":      idToken,
				"another app's opaque token": st.accessToken(t, web, "alice"),
				"another client's JWT":       st.accessToken(t, other, "alice"),
			} {
				r := apiCall(t, st, "/api/items", tok)
				if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Header.Get("Www-Authenticate"), "invalid_token") {
					t.Errorf("%s: %s, want 401 invalid_token", name, describe(r))
				}
			}
		})
	}
}

// No token, code, cookie or secret reaches the log at any level: a whole
// walk (login, refreshes, bearer calls, a sign-out whose backend_logout_url
// call fails, a back-channel logout) at debug level, then every secret the
// walk saw is looked for in the server's log.
func TestNoSecretInAnyLogLine(t *testing.T) {
	st := startStack(t, stackOptions{config: map[string]any{
		"skip_jwt_bearer_tokens": true, "pass_access_token": true, "pass_authorization_header": true,
		"cookie_refresh": "1ms", "backend_logout_url": "http://127.0.0.1:1/logout?id_token={id_token}",
		"log_level": "debug",
	}})
	var secrets []string
	saw := func(s string) {
		if len(s) >= 8 {
			secrets = append(secrets, s)
		}
	}
	saw(testCookieSecret)
	saw(devidp.DefaultClient().Secret)

	walk := func(user string) *browser {
		b := newBrowser(t, user, user+"-password")
		resp, hops := b.follow(st.Front.URL + "/page")
		for _, h := range hops {
			if u, err := url.Parse(h); err == nil {
				saw(u.Query().Get("code"))
				saw(u.Query().Get("state"))
				saw(u.Query().Get("code_challenge"))
			}
		}
		for range 3 { // cookie_refresh 1ms: each Check refreshes
			resp = b.get(st.Front.URL + "/page")
		}
		got := upstreamSaw(t, resp)
		saw(got.Headers["x-forwarded-access-token"])
		saw(strings.TrimPrefix(got.Headers["authorization"], "Bearer "))
		for _, c := range b.jar.Cookies(mustParse(t, st.Front.URL)) {
			saw(c.Value)
		}
		return b
	}
	alice := walk("alice")
	bob := walk("bob")

	tok := st.accessToken(t, devidp.DefaultClient(), "alice")
	saw(tok)
	if r := apiCall(t, st, "/api/items", tok); r.StatusCode != http.StatusOK {
		t.Fatalf("bearer: %s", describe(r))
	}
	if r := apiCall(t, st, "/api/items", tok+"x"); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad bearer: %s", describe(r))
	}
	saw(tok + "x")

	if r := alice.get(st.Front.URL + "/oauth2/sign_out"); r.StatusCode != http.StatusFound {
		t.Fatalf("sign-out: %s", describe(r))
	}
	waitFor(t, "the failed backend logout's log line", func() bool { return strings.Contains(st.Server.Logs(), "backend") })
	lt := logoutToken(t, st.IdP, func(c map[string]any) { c["sub"] = "user-bob" })
	saw(lt)
	if code, body := postLogout(t, st.Server, lt); code != http.StatusOK {
		t.Fatalf("back-channel logout: %d %s", code, body)
	}
	_ = bob

	logs := st.Server.Logs()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Errorf("the log holds a secret the walk saw: %.12s… (%d bytes)", s, len(s))
		}
		// A token's signature or payload alone is as bad as the token.
		for _, part := range strings.Split(s, ".") {
			if len(part) >= 24 && strings.Contains(logs, part) {
				t.Errorf("the log holds part of a secret the walk saw: %.12s…", part)
			}
		}
	}
	if len(secrets) < 12 {
		t.Fatalf("the walk saw only %d secrets; it didn't run as meant", len(secrets))
	}
}

func mustParse(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// skip_auth_routes and api_routes see Envoy's normalised path and nothing
// else: not the query (oauth2-proxy GHSA-7rh7-c77v-6434), not a fragment
// (GHSA-pxq7-h93f-9jrg), not X-Forwarded-Uri and its kin
// (GHSA-7x63-xv5r-3p2x), not a dot segment with parameters (Envoy
// CVE-2026-73551); doubled slashes and encoded ones as the shipped
// envoy.yaml leaves them.
func TestRoutesSeeOnlyEnvoysPath(t *testing.T) {
	st := startStack(t, stackOptions{config: map[string]any{
		"skip_auth_routes": []string{"^/api/.*/status$", "^/foo/.*/bar$", "GET=^/health$", "^/assets/"},
		"api_routes":       []string{"^/api/"},
	}})
	for _, tc := range []struct {
		request string
		want    int // 200: skipped (the upstream answered); else the status we expect instead
	}{
		{"GET /api/x/status", 200},
		{"GET /api/private/sensitive?path=/status", 401},
		{"GET /health", 200},
		{"GET /health?x=/health", 200},
		{"GET /healthz?/health", 302},
		{"GET /health;x=1", 302},
		{"GET /secret\nX-Forwarded-Uri: /health", 302},
		{"GET /secret\nX-Original-URL: /health", 302},
		{"GET /secret\nX-Rewrite-URL: /health", 302},
		{"GET /secret\nX-Forwarded-Prefix: /assets/", 302},
		{"GET /foo/secret#/x/bar", 400}, // Envoy refuses a fragment in the path
		{"GET /assets//app.css", 200},   // merge_slashes
		{"GET /assets/../admin", 302},   // normalize_path: /admin
		{"GET /assets/..;/admin", 302},  // a dot segment with parameters is no skip
		{"GET /assets/%2e%2e/admin", 302},
		{"GET /assets/%2Fadmin", 307}, // UNESCAPE_AND_REDIRECT: Envoy redirects to the unescaped path
		{"GET /x?y=/api/", 302},       // api_routes read the path, not the query
	} {
		line, extra, _ := strings.Cut(tc.request, "\n")
		if extra != "" {
			extra += "\n"
		}
		req := line + " HTTP/1.1\nHost: 127.0.0.1\nAccept: text/html\n" + extra + "Connection: close\n\n"
		status, body := rawHTTP(t, st.Front.URL, req)
		if status != tc.want {
			t.Errorf("%q: %d, want %d (%.120s)", tc.request, status, tc.want, body)
		}
	}
}

// CSRF: a state-changing request with the session cookie from another
// site is refused by us, with Envoy's shipped configuration unchanged.
func TestCSRFOriginThroughEnvoy(t *testing.T) {
	st := startStack(t, stackOptions{})
	b := newBrowser(t, "alice", "alice-password")
	st.login(t, b, "/")
	post := func(origin string) *response {
		h := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Accept": {"text/html"}}
		if origin != "" {
			h.Set("Origin", origin)
		}
		return b.do(http.MethodPost, st.Front.URL+"/things", h)
	}
	if r := post("https://evil.example"); r.StatusCode != http.StatusForbidden || !strings.Contains(r.Body, "another site") {
		t.Fatalf("POST from another site: %s, want 403 with our page", describe(r))
	}
	if r := post(""); r.StatusCode != http.StatusForbidden {
		t.Fatalf("POST with neither Origin nor Referer: %s, want 403", describe(r))
	}
	if saw := upstreamSaw(t, post(st.Front.URL)); saw.Method != http.MethodPost || saw.Headers["x-forwarded-user"] != "user-alice" {
		t.Fatalf("POST from our own origin: %+v", saw)
	}
	if m := scrape(t, st.Server); !strings.Contains(m, `reason="csrf_origin"} 2`) {
		t.Errorf("metrics lack two csrf_origin refusals")
	}
}

// withVirtualHostMarkers is the shipped envoy.yaml with two more wildcard
// virtual hosts (*.localhost.test names app2, *.eu.localhost.test app1)
// and every virtual host marking its responses with x-vhost, so a test
// sees which virtual host Envoy routed a request to.
func withVirtualHostMarkers(t *testing.T) []byte {
	t.Helper()
	cfg, err := envoy.WithVirtualHosts(envoy.VirtualHost{Name: "wild", Domains: []string{"*.localhost.test"}, App: "app2"},
		envoy.VirtualHost{Name: "eu-wild", Domains: []string{"*.eu.localhost.test"}, App: "app1"})
	if err != nil {
		t.Fatal(err)
	}
	out := string(cfg)
	// Mark each virtual host: a response_headers_to_add after its domains.
	var b strings.Builder
	name := ""
	for _, line := range strings.SplitAfter(out, "\n") {
		b.WriteString(line)
		trimmed := strings.TrimSpace(line)
		if n, ok := strings.CutPrefix(trimmed, "- name: "); ok && strings.HasPrefix(line, "            - name: ") {
			name = n
		}
		if strings.HasPrefix(trimmed, "domains:") && name != "" {
			b.WriteString("              response_headers_to_add: [{ header: { key: x-vhost, value: " + name + " } }]\n")
			name = ""
		}
	}
	return []byte(b.String())
}

// h2Get sends one HTTP/2 (cleartext, prior knowledge) GET with the given
// pseudo-headers and headers exactly, and returns the status and x-vhost.
func h2Get(t *testing.T, front string, headers [][2]string) (int, string) {
	t.Helper()
	conn := dialFront(t, front)
	defer conn.Close()
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	var block bytes.Buffer
	enc := hpack.NewEncoder(&block)
	for _, h := range headers {
		_ = enc.WriteField(hpack.HeaderField{Name: h[0], Value: h[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block.Bytes(), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("HTTP/2 %v: %v", headers, err)
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.RSTStreamFrame:
			return -1, "" // refused as a malformed stream
		case *http2.GoAwayFrame:
			return -1, ""
		case *http2.MetaHeadersFrame:
			status, vhost := 0, ""
			for _, hf := range f.Fields {
				switch hf.Name {
				case ":status":
					status, _ = strconv.Atoi(hf.Value)
				case "x-vhost":
					vhost = hf.Value
				}
			}
			return status, vhost
		}
	}
}

// The app that judges a request is the one whose virtual host Envoy routed
// it to, however the request names its host: a Host header and a URL or
// :authority that disagree (HTTP/1.1 absolute form, HTTP/2), and a host
// that two wildcard virtual hosts match (the longer wins, in Envoy and so
// for us). bob may use app1 (readers), not the default app (admins only).
func TestTheAppJudgingIsTheAppEnvoyRoutesTo(t *testing.T) {
	app1 := appEntry("app1", "app1.localhost")
	app1["allowed_groups"] = []string{"reader"}
	st := appsStack(t, map[string]any{"allowed_groups": []string{"admin"}, "apps": []map[string]any{app1, appEntry("app2")}}, withVirtualHostMarkers(t))
	b := newBrowser(t, "bob", "bob-password")
	resp, _ := b.follow(st.appURL("app1") + "/")
	upstreamSaw(t, resp)
	cookie := cookieHeader(b, st.appURL("app1"))
	port := mustParse(t, st.Front.URL).Port()
	// check: a 200 must have come through a virtual host that names
	// app1 (app1's or eu-wild): any other judged bob with its own app.
	check := func(what string, status int, vhost string) {
		t.Helper()
		if status == http.StatusOK && vhost != "app1" && vhost != "eu-wild" {
			t.Errorf("%s: app1's session reached the upstream through virtual host %q", what, vhost)
		}
		t.Logf("%s: %d via %q", what, status, vhost)
	}
	for _, tc := range []struct{ what, request string }{
		{"HTTP/1.1 absolute URL of app1, Host of the catch-all", "GET http://app1.localhost:" + port + "/secret HTTP/1.1\nHost: 127.0.0.1:" + port},
		{"HTTP/1.1 absolute URL of the catch-all, Host of app1", "GET http://127.0.0.1:" + port + "/secret HTTP/1.1\nHost: app1.localhost:" + port},
		{"two Host headers", "GET /secret HTTP/1.1\nHost: 127.0.0.1:" + port + "\nHost: app1.localhost:" + port},
	} {
		r, _ := rawRequest(t, st.Front.URL, tc.request+"\nCookie: "+cookie+"\nAccept: application/json\nConnection: close\n\n")
		check(tc.what, r.StatusCode, r.Header.Get("X-Vhost"))
	}
	for _, tc := range []struct {
		what      string
		authority string
		host      string
	}{
		{"HTTP/2 :authority of app1, host header of the catch-all", "app1.localhost:" + port, "127.0.0.1:" + port},
		{"HTTP/2 :authority of the catch-all, host header of app1", "127.0.0.1:" + port, "app1.localhost:" + port},
	} {
		status, vhost := h2Get(t, st.Front.URL, [][2]string{{":method", "GET"}, {":scheme", "http"}, {":authority", tc.authority}, {":path", "/secret"},
			{"host", tc.host}, {"cookie", cookie}, {"accept", "application/json"}})
		check(tc.what, status, vhost)
	}
	// Two wildcards: x.eu.localhost.test is *.eu.localhost.test's (app1),
	// x.localhost.test is *.localhost.test's (app2): the login redirect's
	// client says which app judged the request.
	for _, tc := range []struct{ host, wantClient string }{
		// No port: Envoy can't write a domain with a wildcard and a port.
		{"x.eu.localhost.test", appClient("app1").ID},
		{"X.EU.localhost.test", appClient("app1").ID},
		{"a.b.eu.localhost.test", appClient("app1").ID},
		{"x.eu.localhost.test.", appClient("app1").ID}, // strip_trailing_host_dot
		{"x.localhost.test", appClient("app2").ID},
		{"eu.localhost.test", appClient("app2").ID},
		{"localhost.test", devidp.DefaultClient().ID},
		{"x.eu.localhost.test:" + port, devidp.DefaultClient().ID}, // with a port neither wildcard matches: the catch-all
	} {
		r, _ := rawRequest(t, st.Front.URL, "GET /secret HTTP/1.1\nHost: "+tc.host+"\nAccept: text/html\nConnection: close\n\n")
		loc, _ := url.Parse(r.Header.Get("Location"))
		if r.StatusCode != http.StatusFound || loc.Query().Get("client_id") != tc.wantClient {
			t.Errorf("Host %s: %d to client %q, want the login of %s", tc.host, r.StatusCode, loc.Query().Get("client_id"), tc.wantClient)
		}
	}
}
