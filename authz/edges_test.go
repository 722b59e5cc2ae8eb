package authz

import (
	"context"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
	"google.golang.org/protobuf/proto"
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
func deniedWith(t *testing.T, what string, resp *authv3.CheckResponse, status int, reason string) {
	t.Helper()
	d := resp.GetDeniedResponse()
	if d == nil {
		t.Fatalf("%s: allowed, want %d %s", what, status, reason)
	}
	got := reasonOf(t, resp)
	if int(d.GetStatus().GetCode()) != status || got != reason || hasSessionCookie(d.GetHeaders()) {
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
			deniedWith(t, "login as "+email, loginWith(t, s, idp, id), http.StatusForbidden, reasonEmailDomain)

			sess := alice()
			sess.Email = email
			resp, _ := s.Check(t.Context(), envoyRequest("GET", "/page", map[string]string{"cookie": sessionCookie(t, jar, sess), "accept": "text/html"}))
			deniedWith(t, "session of "+email, resp, http.StatusForbidden, reasonEmailDomain)

			s.bearerAuth = stubBearer{b: &oidcflow.Bearer{Identity: id, Via: "jwt"}}
			resp, _ = s.Check(t.Context(), envoyRequest("GET", "/api/x", map[string]string{"authorization": "Bearer t"}))
			deniedWith(t, "bearer of "+email, resp, http.StatusForbidden, reasonEmailDomain)
		}
	}
}

// email_domains = ["*"] (ZITADEL's guide) still refuses an address the IdP
// marks unverified: it would reach the upstream as x-forwarded-email.
// insecure_oidc_allow_unverified_email lets it in, as in oauth2-proxy.
func TestUnverifiedEmailRefusedWhateverTheDomains(t *testing.T) {
	id := oidcflow.Identity{Subject: "u", User: "u", Email: "ceo@example.com", EmailVerified: false}
	idp := &stubIdP{}
	s, jar := newTestServer(t, Config{EmailDomains: []string{"*"}, SkipProviderButton: true}, idp, nil)
	resp := loginWith(t, s, idp, id)
	deniedWith(t, "login with an unverified address", resp, http.StatusForbidden, reasonUnverifiedEm)
	if body := resp.GetDeniedResponse().GetBody(); !strings.Contains(body, "not verified") {
		t.Fatalf("the page doesn't say why: %s", body)
	}
	sess := alice()
	sess.Email, sess.EmailVerified = "ceo@example.com", false
	r, _ := s.Check(t.Context(), envoyRequest("GET", "/page", map[string]string{"cookie": sessionCookie(t, jar, sess), "accept": "text/html"}))
	deniedWith(t, "session with an unverified address", r, http.StatusForbidden, reasonUnverifiedEm)

	// No address at all is no false claim: allowed under "*".
	r = loginWith(t, s, idp, oidcflow.Identity{Subject: "svc", User: "svc"})
	if r.GetDeniedResponse().GetStatus().GetCode() != http.StatusFound {
		t.Fatalf("login without an e-mail under email_domains *: %v, want the redirect back", r.GetDeniedResponse().GetStatus())
	}

	s, _ = newTestServer(t, Config{EmailDomains: []string{"*"}, SkipProviderButton: true, AllowUnverifiedEmail: true}, idp, nil)
	if r := loginWith(t, s, idp, id); r.GetDeniedResponse().GetStatus().GetCode() != http.StatusFound {
		t.Fatalf("insecure_oidc_allow_unverified_email: %v, want the redirect back", r.GetDeniedResponse().GetStatus())
	}
}

// reasonOf is the answer's reason as Envoy reads it: the dynamic metadata
// travels as raw bytes (Decision.Response), so the answer is decoded again.
func reasonOf(t *testing.T, resp *authv3.CheckResponse) string {
	t.Helper()
	raw, err := proto.Marshal(resp)
	if err != nil {
		t.Fatal(err)
	}
	var decoded authv3.CheckResponse
	if err := proto.Unmarshal(raw, &decoded); err != nil {
		t.Fatal(err)
	}
	return decoded.GetDynamicMetadata().GetFields()["reason"].GetStringValue()
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
