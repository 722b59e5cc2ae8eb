package authz

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// The edges an attacker probes (SECURITY.md "Peers' advisories, replayed"):
// each test here failed before its fix.

// loginWith walks /oauth2/start and the callback with the stub IdP handing
// out id; it returns the callback's answer.
func loginWith(t *testing.T, s *Server, idp *stubIdP, id oidcflow.Identity) *authv3.CheckResponse {
	t.Helper()
	idp.exchange = func(context.Context, string) (*oidcflow.Tokens, error) {
		return &oidcflow.Tokens{AccessToken: "at", IDToken: "idt", Identity: id}, nil
	}
	start, _ := s.Check(t.Context(), envoyRequest("GET", "/page", map[string]string{"accept": "text/html"}))
	var stateCookie string
	for _, h := range start.GetDeniedResponse().GetHeaders() {
		if h.GetHeader().GetKey() == "set-cookie" {
			c, _ := http.ParseSetCookie(h.GetHeader().GetValue())
			stateCookie = c.Name + "=" + c.Value
		}
	}
	if stateCookie == "" {
		t.Fatalf("no state cookie from the login redirect: %v", start)
	}
	resp, err := s.Check(t.Context(), envoyRequest("GET", "/oauth2/callback?code=c&state="+strings.Repeat("s", 43), map[string]string{"cookie": stateCookie}))
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// deniedWith asserts a Denied answer with status and reason (dynamic
// metadata) and no session cookie.
func deniedWith(t *testing.T, what string, resp *authv3.CheckResponse, status int, reason Reason) {
	t.Helper()
	d := resp.GetDeniedResponse()
	if d == nil {
		t.Fatalf("%s: allowed, want %d %s", what, status, reason)
	}
	got := reasonOf(t, resp)
	if int(d.GetStatus().GetCode()) != status || got != string(reason) || hasSessionCookie(d.GetHeaders()) {
		t.Fatalf("%s: got %d reason=%q (session cookie: %v), want %d reason=%q without a session", what, d.GetStatus().GetCode(), got, hasSessionCookie(d.GetHeaders()), status, reason)
	}
}

// An e-mail claim with more than one '@' is no address of any domain
// (oauth2-proxy GHSA-c5c4-8r6x-56w3): refused at login, for a stored
// session and for a bearer token, email_domains or authenticated_emails_file.
func TestEmailWithSeveralAtSignsIsNoAddress(t *testing.T) {
	for _, email := range []string{"mallory@evil.example@corp.example", "mallory@@corp.example", "@corp.example"} {
		for _, cfg := range []Config{
			{EmailDomains: []string{"corp.example"}},
			{EmailDomains: []string{".corp.example"}},
			{EmailDomains: []string{"other.example"}, AuthenticatedEmails: map[string]bool{strings.ToLower(email): true}},
		} {
			cfg.SkipProviderButton = true
			idp := &stubIdP{}
			s, jar := newTestServer(t, cfg, idp, nil)
			id := oidcflow.Identity{Subject: "mallory", User: "mallory", Email: email, EmailVerified: true}
			deniedWith(t, "login as "+email, loginWith(t, s, idp, id), http.StatusForbidden, ReasonEmailDomain)

			sess := alice()
			sess.Email = email
			resp, _ := s.Check(t.Context(), envoyRequest("GET", "/page", map[string]string{"cookie": sessionCookie(t, jar, sess), "accept": "text/html"}))
			deniedWith(t, "session of "+email, resp, http.StatusForbidden, ReasonEmailDomain)

			s.bearerAuth = stubBearer{b: &oidcflow.Bearer{Identity: id, Via: "jwt"}}
			resp, _ = s.Check(t.Context(), envoyRequest("GET", "/api/x", map[string]string{"authorization": "Bearer t"}))
			deniedWith(t, "bearer of "+email, resp, http.StatusForbidden, ReasonEmailDomain)
		}
	}
}

// email_domains = ["*"] (ZITADEL's guide) still refuses an address the IdP
// marks unverified: it would reach the upstream as x-forwarded-email.
// insecure_oidc_allow_unverified_email lets it in, as in oauth2-proxy.
func TestUnverifiedEmailRefusedWhateverTheDomains(t *testing.T) {
	id := oidcflow.Identity{Subject: "u", User: "u", Email: "ceo@example.com", EmailVerified: false, EmailUnverified: true}
	idp := &stubIdP{}
	s, _ := newTestServer(t, Config{EmailDomains: []string{"*"}, SkipProviderButton: true}, idp, nil)
	resp := loginWith(t, s, idp, id)
	deniedWith(t, "login with an unverified address", resp, http.StatusForbidden, ReasonEmailUnverified)
	if body := resp.GetDeniedResponse().GetBody(); !strings.Contains(body, "not verified") {
		t.Fatalf("the page doesn't say why: %s", body)
	}
	s.bearerAuth = stubBearer{b: &oidcflow.Bearer{Identity: id, Via: "jwt"}}
	r, _ := s.Check(t.Context(), envoyRequest("GET", "/api/x", map[string]string{"authorization": "Bearer t"}))
	deniedWith(t, "a bearer token with an unverified address", r, http.StatusForbidden, ReasonEmailUnverified)

	// No address at all is no false claim, and an IdP that leaves
	// email_verified out (Entra ID) says nothing false: allowed under "*",
	// as in oauth2-proxy; where a domain list decides, the address must be
	// verified.
	for _, other := range []oidcflow.Identity{{Subject: "svc", User: "svc"}, {Subject: "e", User: "e", Email: "e@example.com"}} {
		if r := loginWith(t, s, idp, other); r.GetDeniedResponse().GetStatus().GetCode() != http.StatusFound {
			t.Fatalf("login of %+v under email_domains *: %v, want the redirect back", other, r.GetDeniedResponse().GetStatus())
		}
	}
	strict, _ := newTestServer(t, Config{EmailDomains: []string{"example.com"}, SkipProviderButton: true}, idp, nil)
	deniedWith(t, "no email_verified under a domain list", loginWith(t, strict, idp, oidcflow.Identity{Subject: "e", User: "e", Email: "e@example.com"}), http.StatusForbidden, ReasonEmailUnverified)

	s, _ = newTestServer(t, Config{EmailDomains: []string{"*"}, SkipProviderButton: true, AllowUnverifiedEmail: true}, idp, nil)
	if r := loginWith(t, s, idp, id); r.GetDeniedResponse().GetStatus().GetCode() != http.StatusFound {
		t.Fatalf("insecure_oidc_allow_unverified_email: %v, want the redirect back", r.GetDeniedResponse().GetStatus())
	}
}

// reasonOf is the answer's reason as Envoy reads it.
func reasonOf(t *testing.T, resp *authv3.CheckResponse) string {
	t.Helper()
	return metadataOf(t, resp)["reason"].GetStringValue()
}

// metadataOf is the answer's dynamic metadata as Envoy reads it: it
// travels as raw bytes (Decision.Response), so the answer is decoded
// again.
func metadataOf(t *testing.T, resp *authv3.CheckResponse) map[string]*structpb.Value {
	t.Helper()
	raw, err := proto.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	var decoded authv3.CheckResponse
	if err := proto.Unmarshal(raw, &decoded); err != nil {
		t.Fatal(err)
	}
	return decoded.GetDynamicMetadata().GetFields()
}

// trusted_ips with reverse_proxy reads the entry the nearest trusted proxy
// appended, never the client's own first entry (oauth2-proxy took the
// first: curl -H 'X-Forwarded-For: 10.9.9.9' passed trusted_ips 10/8).
func TestTrustedIPsReadTheEntryTheProxyAppended(t *testing.T) {
	ten := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		name   string
		hops   int
		header string // x-forwarded-for as Envoy passes it (repeated lines joined with ',')
		want   bool
	}{
		{"client wrote a trusted address first", 1, "10.9.9.9, 203.0.113.7", false},
		{"client wrote it in a line of its own", 1, "10.9.9.9,203.0.113.7", false},
		{"the proxy appended a trusted address", 1, "203.0.113.7, 10.1.1.1", true},
		{"only the client's entry, one hop expected", 1, "10.9.9.9", true}, // one entry is the proxy's when it appends
		{"two hops: the second from the right", 2, "10.9.9.9, 10.2.2.2, 192.0.2.1", true},
		{"two hops: the client's entry left of it", 2, "10.9.9.9, 203.0.113.7, 10.2.2.2", false},
		{"fewer entries than hops", 3, "10.1.1.1, 10.2.2.2", false},
		{"not an address", 1, "203.0.113.7, nonsense", false},
		{"no header", 1, "", false},
	} {
		s, _ := newTestServer(t, Config{TrustedIPs: ten, ReverseProxy: true, RealClientIPHeader: "x-forwarded-for", TrustedProxyHops: tc.hops}, &stubIdP{}, nil)
		h := map[string]string{"accept": "application/json"}
		if tc.header != "" {
			h["x-forwarded-for"] = tc.header
		}
		resp, _ := s.Check(t.Context(), envoyRequest("GET", "/page", h))
		if allowed := resp.GetOkResponse() != nil; allowed != tc.want {
			t.Errorf("Check(%s, X-Forwarded-For: %s, hops %d): allowed=%v, want %v", tc.name, tc.header, tc.hops, allowed, tc.want)
		}
	}
}

// x_forwarded_user (an underscore spelling) from a client never reaches
// the upstream: frameworks read it as X-Forwarded-User.
func TestUnderscoreSpellingsOfIdentityHeadersAreRemoved(t *testing.T) {
	s, _ := newTestServer(t, Config{SkipAuthRoutes: []Route{{Path: regexp.MustCompile("^/public/")}}}, &stubIdP{}, nil)
	spoofed := map[string]string{"x_forwarded_user": "admin", "x_auth_request_email": "ceo@example.com", "x_forwarded_groups": "admin"}
	resp, _ := s.Check(t.Context(), envoyRequest("GET", "/public/x", spoofed))
	removed := resp.GetOkResponse().GetHeadersToRemove()
	for name := range spoofed {
		if !slices.Contains(removed, name) {
			t.Errorf("skip-auth route: %s not removed (removed: %v)", name, removed)
		}
	}
}

// revokedLogins is a Revocations that knows signed-out logins.
type revokedLogins map[string]bool

func (r revokedLogins) Revoked(string, string, int64) bool { return false }
func (r revokedLogins) SignedOut(id string) bool           { return r[id] }
func (r revokedLogins) SignOut(context.Context, string, time.Time) error {
	return nil
}

// /oauth2/userinfo answers only for a session Check would accept: not for
// one signed out, idle past session_idle_timeout or expired.
func TestUserinfoNeedsALiveSession(t *testing.T) {
	s, jar := newTestServer(t, Config{IdleTimeout: time.Hour}, &stubIdP{}, nil)
	s.revocations = revokedLogins{"signed-out-login": true}
	live := alice()
	live.LoginId, live.LastSeenAt = "live-login", t0.Unix()
	live.AccessToken, live.IdToken, live.RefreshToken = "the-access-token", "the-id-token", "the-refresh-token"
	signedOut := alice()
	signedOut.LoginId, signedOut.LastSeenAt = "signed-out-login", t0.Unix()
	idle := alice()
	idle.LoginId, idle.LastSeenAt = "idle-login", t0.Add(-2*time.Hour).Unix()
	expired := alice()
	expired.LoginId, expired.LastSeenAt, expired.AccessTokenExpiresAt = "expired-login", t0.Unix(), t0.Add(-time.Minute).Unix()
	for _, tc := range []struct {
		name string
		sess *sessionpb.Session
		want int
	}{
		{"live", live, http.StatusOK},
		{"signed out", signedOut, http.StatusUnauthorized},
		{"idle", idle, http.StatusUnauthorized},
		{"expired without refresh", expired, http.StatusUnauthorized},
	} {
		resp, err := s.Check(t.Context(), envoyRequest("GET", "/oauth2/userinfo", map[string]string{"cookie": sessionCookie(t, jar, tc.sess), "accept": "application/json"}))
		if err != nil {
			t.Fatal(err)
		}
		if got := int(resp.GetDeniedResponse().GetStatus().GetCode()); got != tc.want {
			t.Errorf("userinfo for a %s session: %d, want %d", tc.name, got, tc.want)
		}
		// Identity only, never the session's tokens (Pomerium
		// GHSA-rrqr-7w59-637v: a page script could fetch them).
		if body := resp.GetDeniedResponse().GetBody(); strings.Contains(body, "the-") {
			t.Errorf("userinfo shows a token: %s", body)
		}
	}
}

// A group name with a comma can't pass for two groups upstream: ',' is
// sent as %2C (and '%' as %25).
func TestGroupsWithCommasAreEscaped(t *testing.T) {
	s, jar := newTestServer(t, Config{}, &stubIdP{}, nil)
	sess := alice()
	sess.Groups = []string{"reader", "admin,x", "50%"}
	resp, _ := s.Check(t.Context(), envoyRequest("GET", "/", map[string]string{"cookie": sessionCookie(t, jar, sess)}))
	if got := upstreamHeader(resp, "x-forwarded-groups"); got != "reader,admin%2Cx,50%25" {
		t.Fatalf("x-forwarded-groups = %q, want reader,admin%%2Cx,50%%25", got)
	}
}

// The callback's error page says what we know, never the IdP's (or an
// attacker's) error_description.
func TestCallbackErrorPageShowsOurText(t *testing.T) {
	s, _ := newTestServer(t, Config{}, &stubIdP{}, nil)
	lure := "Your+account+is+locked.+Call+%2B1-555-0100+to+unlock+it"
	resp, _ := s.Check(t.Context(), envoyRequest("GET", "/oauth2/callback?error=access_denied&error_description="+lure+"&state=x", nil))
	body := resp.GetDeniedResponse().GetBody()
	if strings.Contains(body, "locked") || strings.Contains(body, "555") || !strings.Contains(body, "cancelled or refused") || !strings.Contains(body, "access_denied") {
		t.Fatalf("callback error page: %s", body)
	}
	resp, _ = s.Check(t.Context(), envoyRequest("GET", "/oauth2/callback?error=Call%20us%20at%20evil.example&state=x", nil))
	if body := resp.GetDeniedResponse().GetBody(); strings.Contains(body, "evil.example") {
		t.Fatalf("a made-up error code is shown: %s", body)
	}
}

// A state-changing request carried by the session cookie comes from the
// app's own origin or csrf_allowed_origins, else 403 csrf_origin; bearer
// requests, GET and routes with csrf: off are not checked.
func TestCSRFOriginCheckForCookieSessions(t *testing.T) {
	s, jar := newTestServer(t, Config{CSRFAllowedOrigins: []string{"https://admin.example.org", "https://*.apps.example.net"}}, &stubIdP{}, nil)
	s.bearerAuth = stubBearer{b: &oidcflow.Bearer{Identity: oidcflow.Identity{Subject: "u", User: "u", Email: "u@example.com", EmailVerified: true}, Via: "jwt"}}
	cookie := sessionCookie(t, jar, alice())
	for _, tc := range []struct {
		name    string
		method  string
		headers map[string]string
		ext     map[string]string
		want    int // 0: allowed
		reason  Reason
	}{
		{"same origin", "POST", map[string]string{"origin": "https://app.example.com"}, nil, 0, ""},
		{"same origin, default port spelled", "PUT", map[string]string{"origin": "https://app.example.com:443"}, nil, 0, ""},
		{"same origin, upper case", "DELETE", map[string]string{"origin": "https://APP.example.com"}, nil, 0, ""},
		{"another site", "POST", map[string]string{"origin": "https://evil.example"}, nil, 403, ReasonCSRFOrigin},
		{"a look-alike suffix", "POST", map[string]string{"origin": "https://app.example.com.evil.example"}, nil, 403, ReasonCSRFOrigin},
		{"same host, other scheme (TLS ended before Envoy)", "POST", map[string]string{"origin": "http://app.example.com"}, nil, 0, ""},
		{"same host, other port", "PATCH", map[string]string{"origin": "https://app.example.com:8443"}, nil, 403, ReasonCSRFOrigin},
		{"opaque origin", "POST", map[string]string{"origin": "null"}, nil, 403, ReasonCSRFOrigin},
		{"opaque origin with our own Referer", "POST", map[string]string{"origin": "null", "referer": "https://app.example.com/form"}, nil, 403, ReasonCSRFOrigin},
		// Fetch Metadata: what the browser itself says of the request.
		{"Referrer-Policy no-referrer page: Origin null, same-origin", "POST", map[string]string{"origin": "null", "sec-fetch-site": "same-origin"}, nil, 0, ""},
		{"the user's own navigation", "POST", map[string]string{"sec-fetch-site": "none"}, nil, 0, ""},
		{"cross-site from an allowed origin", "POST", map[string]string{"origin": "https://admin.example.org", "sec-fetch-site": "cross-site"}, nil, 0, ""},
		{"cross-site", "POST", map[string]string{"origin": "https://evil.example", "sec-fetch-site": "cross-site"}, nil, 403, ReasonCSRFOrigin},
		{"a sibling subdomain (same-site)", "POST", map[string]string{"origin": "https://blog.example.com", "sec-fetch-site": "same-site"}, nil, 403, ReasonCSRFOrigin},
		{"cross-site without an Origin", "POST", map[string]string{"referer": "https://app.example.com/x", "sec-fetch-site": "cross-site"}, nil, 403, ReasonCSRFOrigin},
		{"no origin, own referer", "POST", map[string]string{"referer": "https://app.example.com/form"}, nil, 0, ""},
		{"no origin, foreign referer", "POST", map[string]string{"referer": "https://evil.example/app.example.com"}, nil, 403, ReasonCSRFOrigin},
		{"neither header", "POST", nil, nil, 403, ReasonCSRFOrigin},
		{"an allowed origin", "POST", map[string]string{"origin": "https://admin.example.org"}, nil, 0, ""},
		{"an allowed wildcard", "POST", map[string]string{"origin": "https://a.apps.example.net"}, nil, 0, ""},
		{"the wildcard's own domain", "POST", map[string]string{"origin": "https://apps.example.net"}, nil, 403, ReasonCSRFOrigin},
		{"csrf: off on the route", "POST", map[string]string{"origin": "https://evil.example"}, map[string]string{"csrf": "off"}, 0, ""},
		{"csrf: a typo fails closed", "POST", map[string]string{"origin": "https://app.example.com"}, map[string]string{"csrf": "of"}, 500, "bad_route_config"},
		{"GET from anywhere", "GET", map[string]string{"origin": "https://evil.example"}, nil, 0, ""},
		{"a bearer token from anywhere", "POST", map[string]string{"origin": "https://evil.example", "authorization": "Bearer t"}, nil, 0, ""},
	} {
		h := map[string]string{"cookie": cookie}
		for k, v := range tc.headers {
			h[k] = v
		}
		req := envoyRequest(tc.method, "/things", h)
		req.Attributes.ContextExtensions = tc.ext
		resp, err := s.Check(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		if tc.want == 0 {
			if resp.GetOkResponse() == nil {
				t.Errorf("Check(%s): %v, want allowed", tc.name, resp.GetDeniedResponse().GetStatus())
			}
			continue
		}
		deniedWith(t, tc.name, resp, tc.want, tc.reason)
	}
}

// Every open-redirect payload class of our peers' advisories ends at a
// local path or is refused: oauth2-proxy GHSA-jm34-xm8m-w958 (//evil),
// GHSA-qqxw-m5fj-f7gv (/\evil), GHSA-j7px-6hwj-hpjg (whitespace between the
// slashes), GHSA-5m6c-jp6f-2vcv (dot segments and encoded slashes),
// GHSA-4mf2-f3wh-gvf2 (a whitelist domain's partial suffix), userinfo and
// scheme-relative tricks.
func TestOpenRedirectPayloadsStayLocal(t *testing.T) {
	s, _ := newTestServer(t, Config{WhitelistDomains: []string{".bar.foo"}}, &stubIdP{}, nil)
	r := &Request{Scheme: "https", Host: "app.example.com"}
	for _, rd := range []string{
		"//evil.com", "///evil.com", "////evil.com", "/\\evil.com", "\\\\evil.com", "/%5Cevil.com", "/%5cevil.com",
		"/\t/evil.com", "/%09/evil.com", "/ /evil.com", "/\v/evil.com", "/\n/evil.com", "/\r\n/evil.com",
		"/\t\t/\t/evil.com", "/./\\evil.com", "/./../../\\evil.com", "/%2f%2fevil.com", "/%2F%2Fevil.com", "/..//evil.com",
		"https:evil.com", "https:/evil.com", "http:\\\\evil.com", "https://evil.com", "javascript:alert(1)", "data:text/html,x",
		"https://app.example.com@evil.com/", "https://app.example.com:443@evil.com/", "https://evil.com\\@app.example.com/",
		"https://evilbar.foo/", "https://bar.foo.evil.com/", "//app.example.com@evil.com", "/\u3002evil.com", "\x00/evil.com",
	} {
		out, ok := s.returnURL(r, rd)
		if !ok {
			continue
		}
		u, err := url.Parse(out)
		if err != nil || u.Host != "app.example.com" || strings.ContainsAny(out, "\\\t\r\n\x00") {
			t.Errorf("returnURL(%q) = %q: leaves the site", rd, out)
			continue
		}
		// What a browser would do with the Location: resolve it against
		// our URL; the path must not start a scheme-relative URL.
		if strings.HasPrefix(u.Path, "//") || strings.HasPrefix(u.EscapedPath(), "//") {
			t.Errorf("returnURL(%q) = %q: a path a browser may read as another host", rd, out)
		}
	}
	if out, ok := s.returnURL(r, "https://app.bar.foo/x"); !ok || out != "https://app.bar.foo/x" {
		t.Errorf("a whitelisted subdomain: %q %v", out, ok)
	}
}

// What only a client says never decides: a health checker's User-Agent
// (oauth2-proxy GHSA-5hvv-m4w4-gf6v), X-Forwarded-Host or -Proto (#964),
// an empty allowed group; a scheme in capitals is still https.
func TestClientClaimsThatDecideNothing(t *testing.T) {
	s, _ := newTestServer(t, Config{SkipProviderButton: true}, &stubIdP{}, nil)
	for _, ua := range []string{"GoogleHC/1.0", "kube-probe/1.29", "ELB-HealthChecker/2.0", "Envoy/HC"} {
		resp, _ := s.Check(t.Context(), envoyRequest("GET", "/secret", map[string]string{"user-agent": ua, "accept": "application/json"}))
		deniedWith(t, "User-Agent "+ua, resp, http.StatusUnauthorized, "no_session")
	}
	resp, _ := s.Check(t.Context(), envoyRequest("GET", "/secret", map[string]string{"x-forwarded-host": "evil.example", "x-forwarded-proto": "http", "accept": "text/html"}))
	loc := ""
	for _, h := range resp.GetDeniedResponse().GetHeaders() {
		if h.GetHeader().GetKey() == "location" {
			loc = h.GetHeader().GetValue()
		}
	}
	if u, _ := url.Parse(loc); !strings.Contains(u.Query().Get("redirect_uri"), "https://app.example.com/") {
		t.Errorf("X-Forwarded-Host/Proto changed the callback: %s", loc)
	}
	req := envoyRequest("GET", "/secret", map[string]string{"accept": "text/html"})
	req.Attributes.Request.Http.Scheme = "HTTPS"
	if r, err := ParseRequest(req); err != nil || r.Scheme != "https" {
		t.Errorf("scheme HTTPS read as %q (%v)", r.Scheme, err)
	}
	s, jar := newTestServer(t, Config{AllowedGroups: []string{"", "admin"}}, &stubIdP{}, nil)
	sess := alice()
	sess.Groups = []string{""}
	resp, _ = s.Check(t.Context(), envoyRequest("GET", "/", map[string]string{"cookie": sessionCookie(t, jar, sess), "accept": "application/json"}))
	deniedWith(t, "an empty group against an empty allowed_groups entry", resp, http.StatusForbidden, ReasonNotInGroup)
}
