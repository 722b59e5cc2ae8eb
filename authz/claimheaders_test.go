package authz

import (
	"context"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
	"google.golang.org/protobuf/proto"
)

const (
	rolesClaim  = "urn:zitadel:iam:org:project:roles"
	tenantClaim = "urn:zitadel:iam:user:resourceowner:id"
)

// claimConfig sends three claims and the ID token upstream.
var claimConfig = Config{
	ClaimHeaders:  []ClaimHeader{{"x-roles", rolesClaim}, {"x-teams", "teams"}, {"x-tenant", tenantClaim}},
	IDTokenHeader: "x-id-token",
}

// forged are client-sent copies of every configured header, in both
// spellings.
var forged = map[string]string{
	"x-roles": "superuser", "x_roles": "superuser", "x-teams": "all", "x-tenant": "other-org", "x_tenant": "other-org",
	"x-id-token": "forged", "x_id_token": "forged",
}

// upstreamOf is an allowed answer's upstream headers and removals.
func upstreamOf(t *testing.T, resp *authv3.CheckResponse) (map[string]string, []string) {
	t.Helper()
	ok := resp.GetOkResponse()
	if resp.GetStatus().GetCode() != 0 || ok == nil {
		t.Fatalf("Check: got %v, want allowed", resp)
	}
	set := map[string]string{}
	for _, h := range ok.GetHeaders() {
		if _, dup := set[h.GetHeader().GetKey()]; dup {
			t.Errorf("header %s set twice", h.GetHeader().GetKey())
		}
		set[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	return set, ok.GetHeadersToRemove()
}

// checkClaimHeaders: the configured headers the user has are set (a set
// header overwrites the client's copy), and every client-sent copy of one
// the user lacks is removed, in either spelling.
func checkClaimHeaders(t *testing.T, resp *authv3.CheckResponse, want map[string]string) {
	t.Helper()
	set, removed := upstreamOf(t, resp)
	for _, name := range []string{"x-roles", "x-teams", "x-tenant", "x-id-token"} {
		got, isSet := set[name]
		switch w, ok := want[name]; {
		case ok && got != w:
			t.Errorf("upstream %s: got %q, want %q", name, got, w)
		case !ok && isSet:
			t.Errorf("upstream %s: got %q, want no header", name, got)
		case !ok && !slices.Contains(removed, name):
			t.Errorf("client-sent %s not removed (removed: %v)", name, removed)
		case ok && slices.Contains(removed, name):
			t.Errorf("%s both set and removed: Envoy removes after setting", name)
		}
	}
	for _, under := range []string{"x_roles", "x_tenant", "x_id_token"} {
		if !slices.Contains(removed, under) {
			t.Errorf("client-sent %s not removed (removed: %v)", under, removed)
		}
	}
}

// A session's claim values and ID token go upstream under the configured
// names; a missing claim sends nothing, and no client-sent copy passes.
func TestClaimHeadersOnASession(t *testing.T) {
	s, jar := newTestServer(t, claimConfig, &stubIdP{}, nil)
	sess := alice()
	sess.ClaimValues = map[string]string{rolesClaim: "admin,reader", "teams": "blue,red%2Cgreen", "unconfigured": "x"}
	h := maps.Clone(forged)
	h["cookie"] = sessionCookie(t, jar, sess)
	resp, err := s.Check(t.Context(), envoyRequest("GET", "/x", h))
	if err != nil {
		t.Fatal(err)
	}
	checkClaimHeaders(t, resp, map[string]string{"x-roles": "admin,reader", "x-teams": "blue,red%2Cgreen", "x-id-token": "idt"})
}

// A bearer token's claims go upstream too; it has no ID token, so a
// client-sent x-id-token is removed.
func TestClaimHeadersOnABearerToken(t *testing.T) {
	s, _ := newTestServer(t, claimConfig, &stubIdP{}, nil)
	s.bearerAuth = stubBearer{b: &oidcflow.Bearer{Identity: oidcflow.Identity{Subject: "svc", User: "svc",
		ClaimValues: map[string]string{tenantClaim: "org-1", rolesClaim: "reader"}}, Via: "jwt"}}
	h := maps.Clone(forged)
	h["authorization"] = "Bearer t"
	for range 2 { // rendered, then from the token's memo
		resp, err := s.Check(t.Context(), envoyRequest("GET", "/api/x", h))
		if err != nil {
			t.Fatal(err)
		}
		checkClaimHeaders(t, resp, map[string]string{"x-roles": "reader", "x-tenant": "org-1"})
	}
}

// Requests allowed without a user (skip_auth_routes) get no claim header,
// and no client-sent one either.
func TestClaimHeadersRemovedWithoutAUser(t *testing.T) {
	cfg := claimConfig
	cfg.SkipAuthRoutes = []Route{{Path: regexp.MustCompile("^/public")}}
	s, _ := newTestServer(t, cfg, &stubIdP{}, nil)
	resp, err := s.Check(t.Context(), envoyRequest("GET", "/public", forged))
	if err != nil {
		t.Fatal(err)
	}
	checkClaimHeaders(t, resp, nil)
}

// The values come into the session at login and change with a refresh
// that brings a new ID token.
func TestClaimValuesAtLoginAndRefresh(t *testing.T) {
	idp := &stubIdP{exchange: func(context.Context, string) (*oidcflow.Tokens, error) {
		return &oidcflow.Tokens{AccessToken: "at", IDToken: "idt", RefreshToken: "rt", Expiry: t0.Add(-time.Minute),
			Identity: oidcflow.Identity{Subject: "u1", User: "u1", Email: "u1@example.com", EmailVerified: true,
				ClaimValues: map[string]string{tenantClaim: "org-1", "teams": "blue"}}}, nil
	}, refresh: func(context.Context, string) (*oidcflow.Tokens, error) {
		return &oidcflow.Tokens{AccessToken: "at2", IDToken: "idt2", RefreshToken: "rt2", Expiry: t0.Add(time.Hour),
			Identity: oidcflow.Identity{Subject: "u1", User: "u1", Email: "u1@example.com", EmailVerified: true,
				ClaimValues: map[string]string{tenantClaim: "org-2", rolesClaim: "admin"}}}, nil
	}}
	cfg := claimConfig
	cfg.SkipProviderButton = true
	s, _ := newTestServer(t, cfg, idp, nil)
	h := maps.Clone(forged)
	h["cookie"] = loginCookie(t, s)
	resp, err := s.Check(t.Context(), envoyRequest("GET", "/x", h))
	if err != nil {
		t.Fatal(err)
	}
	// The access token had expired: the Check refreshed.
	checkClaimHeaders(t, resp, map[string]string{"x-tenant": "org-2", "x-roles": "admin", "x-id-token": "idt2"})

	before := &sessionpb.Session{ClaimValues: map[string]string{"teams": "blue"}}
	after := proto.CloneOf(before)
	fromSession(before).refreshed(fromClaims(oidcflow.Identity{ClaimValues: map[string]string{"teams": "red"}})).writeTo(after)
	if got := after.GetClaimValues()["teams"]; got != "red" {
		t.Errorf("refreshed claim value: got %q, want red", got)
	}
}

// loginCookie signs in through the callback (the stub IdP's exchange)
// and returns the session cookie.
func loginCookie(t *testing.T, s *Server) string {
	t.Helper()
	start, _ := s.Check(t.Context(), envoyRequest("GET", "/x", map[string]string{"accept": "text/html"}))
	var state string
	for _, h := range start.GetDeniedResponse().GetHeaders() {
		if h.GetHeader().GetKey() == "set-cookie" {
			c, _ := http.ParseSetCookie(h.GetHeader().GetValue())
			state = c.Name + "=" + c.Value
		}
	}
	resp, err := s.Check(t.Context(), envoyRequest("GET", "/oauth2/callback?code=c&state="+strings.Repeat("s", 43), map[string]string{"cookie": state}))
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, h := range resp.GetDeniedResponse().GetHeaders() {
		if c, err := http.ParseSetCookie(h.GetHeader().GetValue()); err == nil && h.GetHeader().GetKey() == "set-cookie" && c.MaxAge >= 0 && strings.HasPrefix(c.Name, "_oauth2_proxy") && !strings.Contains(c.Name, "csrf") && c.Value != "" {
			parts = append(parts, c.Name+"="+c.Value)
		}
	}
	if len(parts) == 0 {
		t.Fatalf("callback: no session cookie in %v", resp)
	}
	return strings.Join(parts, "; ")
}

// A reload that maps a header to another claim sends that claim's value,
// never the old claim's value under the header (values are kept by claim).
func TestClaimHeadersFollowAReload(t *testing.T) {
	s, jar := newTestServer(t, claimConfig, &stubIdP{}, nil)
	sess := alice()
	sess.ClaimValues = map[string]string{rolesClaim: "admin", tenantClaim: "org-1"}
	h := map[string]string{"cookie": sessionCookie(t, jar, sess)}
	if _, err := s.Check(t.Context(), envoyRequest("GET", "/x", h)); err != nil {
		t.Fatal(err)
	}
	next := claimConfig
	next.PassUserHeaders, next.EmailDomains = true, []string{"*"}
	next.ClaimHeaders = []ClaimHeader{{"x-roles", "teams"}, {"x-tenant", tenantClaim}}
	next.IDTokenHeader = ""
	if err := s.SetConfig(next); err != nil {
		t.Fatal(err)
	}
	resp, err := s.Check(t.Context(), envoyRequest("GET", "/x", h))
	if err != nil {
		t.Fatal(err)
	}
	set, _ := upstreamOf(t, resp)
	if _, ok := set["x-roles"]; ok || set["x-tenant"] != "org-1" || set["x-id-token"] != "" {
		t.Errorf("after the reload: %v", set)
	}
}

// Header names for the upstream: lower-case tokens that are none of ours
// and none that frame, route or authenticate the request.
func TestCheckUpstreamHeader(t *testing.T) {
	for name, ok := range map[string]bool{
		"x-tenant": true, "x-user-locale": true, "x-roles.v2": true,
		"": false, "X-Tenant": false, "x_tenant": false, "x tenant": false, ":path": false, "x-ténant": false,
		"x-forwarded-user": false, "x-auth-request-groups": false, "authorization": false, "cookie": false,
		"host": false, "content-length": false, "transfer-encoding": false, "connection": false, "te": false,
		"x-envoy-original-path": false, "x-forwarded-for": false, strings.Repeat("x", 101): false,
	} {
		if err := CheckUpstreamHeader(name); (err == nil) != ok {
			t.Errorf("CheckUpstreamHeader(%q): got %v, want ok %v", name, err, ok)
		}
	}
}

// realisticClaims are three claim headers' values for a ZITADEL user:
// the organization id, three roles and a locale.
var realisticClaims = map[string]string{
	tenantClaim: "287654321098765432", rolesClaim: "admin,editor,billing.viewer", "locale": "de-CH",
}

// The session cookie grows by the claim values and their claim names
// (README "Claims as headers" quotes these sizes): about 200 bytes for
// three ZITADEL claims.
func TestSessionCookieSizeWithClaimHeaders(t *testing.T) {
	_, jar := newTestServer(t, claimConfig, &stubIdP{}, nil)
	for _, tc := range []struct {
		name    string
		session func() *sessionpb.Session
	}{{"small", benchSession}, {"ZITADEL-sized", benchSessionLarge}} {
		without := len(sessionCookie(t, jar, tc.session()))
		sess := tc.session()
		sess.ClaimValues = realisticClaims
		with := len(sessionCookie(t, jar, sess))
		t.Logf("%s session: cookie %d bytes without claim headers, %d with three", tc.name, without, with)
		if grow := with - without; grow <= 0 || grow > 250 {
			t.Errorf("%s session: three claim values grew the cookie by %d bytes", tc.name, grow)
		}
	}
}

// BenchmarkCheckClaimHeaders is BenchmarkCheck's cached session with
// three claim headers and id_token_header: the headers are rendered into
// the cached identity block, so they cost no allocation per Check; a
// client that sends copies pays for their removal.
func BenchmarkCheckClaimHeaders(b *testing.B) {
	cache, err := ristretto.NewCache(&ristretto.Config[string, *session.Entry]{KeyToHash: session.KeyToHash, NumCounters: 10000, MaxCost: 1 << 26, BufferItems: 64})
	if err != nil {
		b.Fatal(err)
	}
	defer cache.Close()
	cfg := claimConfig
	cfg.ClaimHeaders = append(slices.Clone(cfg.ClaimHeaders), ClaimHeader{"x-user-locale", "locale"})
	cfg.PassAccessToken = true
	srv, jar := newTestServer(b, cfg, &stubIdP{}, cache)
	sess := benchSessionLarge()
	sess.ClaimValues = realisticClaims
	cookie := sessionCookie(b, jar, sess)
	cache.Wait()
	for _, bc := range []struct {
		name   string
		forged bool
	}{{"session_cache_hit", false}, {"session_cache_hit_client_sent_copies", true}} {
		b.Run(bc.name, func(b *testing.B) {
			req := realisticRequest(cookie)
			if bc.forged {
				maps.Copy(req.Attributes.Request.Http.Headers, forged)
			}
			ctx := b.Context()
			if resp, _ := srv.Check(ctx, req); resp.GetStatus().GetCode() != 0 || len(resp.GetOkResponse().GetHeaders()) < 8 {
				b.Fatalf("setup: %v", resp)
			}
			b.ReportAllocs()
			for b.Loop() {
				if resp, _ := srv.Check(ctx, req); resp.GetStatus().GetCode() != 0 {
					b.Fatal("denied")
				}
			}
		})
	}
}
