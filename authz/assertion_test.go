package authz

import (
	"encoding/json"
	"regexp"
	"slices"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/idjwt"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// assertingServer is a test server that signs assertions, on clk.
func assertingServer(t *testing.T, cfg Config, clk *testkit.Clock) (*Server, *idjwt.Ring, string) {
	s, ring, cookie, _ := assertingServerCached(t, cfg, clk)
	return s, ring, cookie
}

// assertingServerCached is assertingServer with its session cache's Wait.
func assertingServerCached(t *testing.T, cfg Config, clk *testkit.Clock) (*Server, *idjwt.Ring, string, func()) {
	t.Helper()
	if cfg.IdentityJWT.Header == "" {
		cfg.IdentityJWT.Header = DefaultIdentityJWTHeader
	}
	cache, err := ristretto.NewCache(&ristretto.Config[string, *session.Entry]{KeyToHash: session.KeyToHash, NumCounters: 1000, MaxCost: 1 << 20, BufferItems: 64})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	s, jar := newTestServer(t, cfg, &stubIdP{}, cache)
	keys, err := idjwt.FromSecrets([][]byte{[]byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	ring := idjwt.NewRing(keys, clk.Now)
	s.signer, s.now = ring, clk.Now
	return s, ring, sessionCookie(t, jar, alice()), cache.Wait
}

// verifyAssertion checks token as an upstream does, with a standard JOSE
// library and the JWKS PREFIX/jwks serves, and returns its claims.
func verifyAssertion(t *testing.T, s *Server, token string) map[string]any {
	t.Helper()
	resp, _ := s.Check(t.Context(), envoyRequest("GET", "/oauth2/jwks", nil))
	d := resp.GetDeniedResponse()
	if d.GetStatus().GetCode() != 200 {
		t.Fatalf("/oauth2/jwks: %v", resp)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(d.GetBody()), &set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("JWKS %q: %v", d.GetBody(), err)
	}
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("assertion %q: %v", token, err)
	}
	keys := set.Key(parsed.Headers[0].KeyID)
	if len(keys) == 0 {
		t.Fatalf("kid %q not in the JWKS", parsed.Headers[0].KeyID)
	}
	var claims map[string]any
	if err := parsed.Claims(keys[0].Key, &claims); err != nil {
		t.Fatalf("signature: %v", err)
	}
	return claims
}

// A session's allowed answer carries an assertion the upstream can verify,
// minted once and reused until half its life has passed.
func TestSessionAnswerCarriesAVerifiableAssertion(t *testing.T) {
	clk := testkit.NewClock(t0)
	s, _, cookie, cacheWait := assertingServerCached(t, Config{}, clk)
	req := envoyRequest("GET", "/x", map[string]string{"cookie": cookie, DefaultIdentityJWTHeader: "forged"})
	resp, _ := s.Check(t.Context(), req)
	token := upstreamHeader(resp, DefaultIdentityJWTHeader)
	if token == "" || token == "forged" {
		t.Fatalf("no assertion of ours: %q (%v)", token, resp)
	}
	// Ristretto may drop a Set: check until the decoded session (and the
	// block with the assertion kept with it) is cached.
	testkit.Eventually(t, 5*time.Second, "the session cached with its assertion", func() bool {
		cacheWait()
		resp, _ := s.Check(t.Context(), req)
		again := upstreamHeader(resp, DefaultIdentityJWTHeader)
		same := again == token
		token = again
		return same
	})
	c := verifyAssertion(t, s, token)
	if c["sub"] != "user-alice" || c["email"] != "alice@example.com" || c["email_verified"] != true || c["preferred_username"] != "alice" ||
		c["iss"] != "https://app.example.com" || !slices.Equal(asStrings(c["aud"]), []string{"default", "app.example.com"}) ||
		!slices.Equal(asStrings(c["groups"]), []string{"admin", "reader"}) {
		t.Errorf("claims: %v", c)
	}
	if iat, exp := c["iat"].(float64), c["exp"].(float64); iat != float64(t0.Unix()) || exp-iat != idjwt.Lifetime.Seconds() {
		t.Errorf("iat %v exp %v, want now and now+%s", iat, exp, idjwt.Lifetime)
	}

	clk.Add(idjwt.Lifetime/2 - time.Second)
	resp, _ = s.Check(t.Context(), req)
	if again := upstreamHeader(resp, DefaultIdentityJWTHeader); again != token {
		t.Error("a new assertion before half its life: a cached session signs once")
	}
	clk.Add(time.Second)
	resp, _ = s.Check(t.Context(), req)
	if fresh := upstreamHeader(resp, DefaultIdentityJWTHeader); fresh == token || fresh == "" {
		t.Error("the same assertion past half its life")
	} else if c := verifyAssertion(t, s, fresh); c["iat"].(float64) != float64(clk.Now().Unix()) {
		t.Errorf("fresh iat %v", c["iat"])
	}
}

func asStrings(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// An assertion never outlives the session or the token it speaks for.
func TestAssertionEndsWithTheSessionOrToken(t *testing.T) {
	clk := testkit.NewClock(t0)
	s, _, _ := assertingServer(t, Config{}, clk)
	end := t0.Add(90 * time.Second)
	s.bearerAuth = stubBearer{b: &oidcflow.Bearer{Identity: oidcflow.Identity{Subject: "svc", User: "svc"}, Expiry: end, Via: "jwt"}}
	resp, _ := s.Check(t.Context(), envoyRequest("GET", "/api", map[string]string{"authorization": "Bearer t"}))
	token := upstreamHeader(resp, DefaultIdentityJWTHeader)
	if token == "" {
		t.Fatalf("bearer answer without an assertion: %v", resp)
	}
	if c := verifyAssertion(t, s, token); c["exp"].(float64) != float64(end.Unix()) || c["sub"] != "svc" {
		t.Errorf("exp %v, want the token's %d; claims %v", c["exp"], end.Unix(), c)
	}
}

// A client-sent assertion never reaches the upstream: overwritten on a
// user's answer, removed where we send none (skip_auth_routes), and with
// identity_jwt_header "" nothing is signed.
func TestClientSentAssertionsNeverPass(t *testing.T) {
	clk := testkit.NewClock(t0)
	s, _, _ := assertingServer(t, Config{SkipAuthRoutes: []Route{{Path: regexp.MustCompile("^/public")}}}, clk)
	resp, _ := s.Check(t.Context(), envoyRequest("GET", "/public/x", map[string]string{DefaultIdentityJWTHeader: "forged", "x_zitadel_ext_authz_jwt": "forged"}))
	if resp.GetStatus().GetCode() != 0 || !slices.Contains(resp.GetOkResponse().GetHeadersToRemove(), DefaultIdentityJWTHeader) ||
		!slices.Contains(resp.GetOkResponse().GetHeadersToRemove(), "x_zitadel_ext_authz_jwt") {
		t.Errorf("skip_auth_route: the client's assertion isn't removed (either spelling): %v", resp)
	}

	off, _, cookie := assertingServer(t, Config{IdentityJWT: IdentityJWT{Header: "x-other-jwt"}}, clk)
	off.cfg.Load().IdentityJWT.Header = ""
	resp, _ = off.Check(t.Context(), envoyRequest("GET", "/x", map[string]string{"cookie": cookie}))
	if upstreamHeader(resp, "x-other-jwt") != "" || resp.GetStatus().GetCode() != 0 {
		t.Errorf("identity_jwt_header \"\": %v", resp)
	}
}

// iss and aud as configured.
func TestAssertionIssuerAndAudience(t *testing.T) {
	clk := testkit.NewClock(t0)
	s, _, cookie := assertingServer(t, Config{IdentityJWT: IdentityJWT{Issuer: "https://authz.example.com", Audience: []string{"billing"}}}, clk)
	resp, _ := s.Check(t.Context(), envoyRequest("GET", "/x", map[string]string{"cookie": cookie}))
	token := upstreamHeader(resp, DefaultIdentityJWTHeader)
	if c := verifyAssertion(t, s, token); c["iss"] != "https://authz.example.com" || !slices.Equal(asStrings(c["aud"]), []string{"billing"}) {
		t.Errorf("claims: %v", c)
	}
}

// A cached session's Check with the assertion on: the assertion is part
// of the cached block, so it costs no signature and no allocation (compare
// BenchmarkCheck/session_cache_hit).
func BenchmarkCheckWithAssertion(b *testing.B) {
	cache, err := ristretto.NewCache(&ristretto.Config[string, *session.Entry]{KeyToHash: session.KeyToHash, NumCounters: 10000, MaxCost: 1 << 26, BufferItems: 64})
	if err != nil {
		b.Fatal(err)
	}
	defer cache.Close()
	s, jar := newTestServer(b, Config{PassAccessToken: true, IdentityJWT: IdentityJWT{Header: DefaultIdentityJWTHeader}}, &stubIdP{}, cache)
	keys, _ := idjwt.FromSecrets([][]byte{[]byte(secret)})
	s.signer = idjwt.NewRing(keys, time.Now)
	req := realisticRequest(sessionCookie(b, jar, benchSession()))
	ctx := b.Context()
	if resp, _ := s.Check(ctx, req); upstreamHeader(resp, DefaultIdentityJWTHeader) == "" {
		b.Fatalf("setup: no assertion: %v", resp)
	}
	cache.Wait()
	b.ReportAllocs()
	for b.Loop() {
		if resp, _ := s.Check(ctx, req); resp.GetStatus().GetCode() != 0 {
			b.Fatal("denied")
		}
	}
}

// Without a decoded-session cache (session_cache_max_bytes = 0) the
// assertion is still minted once per sign-in, and anew after a refresh.
func TestAssertionWithoutSessionCache(t *testing.T) {
	clk := testkit.NewClock(t0)
	s, jar := newTestServer(t, Config{IdentityJWT: IdentityJWT{Header: DefaultIdentityJWTHeader}}, &stubIdP{}, nil)
	keys, _ := idjwt.FromSecrets([][]byte{[]byte(secret)})
	s.signer, s.now = idjwt.NewRing(keys, clk.Now), clk.Now
	sess := alice()
	sess.LoginId = "login-1"
	check := func(cookie string) string {
		resp, _ := s.Check(t.Context(), envoyRequest("GET", "/x", map[string]string{"cookie": cookie}))
		return upstreamHeader(resp, DefaultIdentityJWTHeader)
	}
	cookie := sessionCookie(t, jar, sess)
	first := check(cookie)
	if first == "" || check(cookie) != first {
		t.Fatal("without a session cache, each Check signs anew")
	}
	sess.RefreshedAt, sess.IdToken, sess.Groups = t0.Unix(), "idt-refreshed", []string{"admin"}
	after := check(sessionCookie(t, jar, sess))
	if after == first || after == "" {
		t.Fatal("a refreshed session is answered with the assertion of before")
	}
	if c := verifyAssertion(t, s, after); !slices.Equal(asStrings(c["groups"]), []string{"admin"}) {
		t.Errorf("groups after the refresh: %v", c["groups"])
	}
}

// A session seen on two hosts (a cookie for a parent domain): with the
// assertion's issuer and audience configured nothing in it depends on
// the host, so the one minted is reused there, not signed again; with
// the defaults its aud names the host, so each host gets its own.
func TestAssertionAcrossHosts(t *testing.T) {
	onHost := func(s *Server, cookie, host string) string {
		req := envoyRequest("GET", "/x", map[string]string{"cookie": cookie, ":authority": host})
		req.Attributes.Request.Http.Host = host
		resp, _ := s.Check(t.Context(), req)
		return upstreamHeader(resp, DefaultIdentityJWTHeader)
	}
	for _, tc := range []struct {
		name  string
		cfg   IdentityJWT
		reuse bool
	}{
		{"issuer and audience configured", IdentityJWT{Issuer: "https://authz.example.com", Audience: []string{"billing"}}, true},
		{"the defaults", IdentityJWT{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, cookie, wait := assertingServerCached(t, Config{IdentityJWT: tc.cfg}, testkit.NewClock(t0))
			onHost(s, cookie, "app.example.com")
			wait() // the session is cached, with its assertion, from the next Check on
			first := onHost(s, cookie, "app.example.com")
			second := onHost(s, cookie, "other.example.com")
			if first == "" || second == "" {
				t.Fatalf("no assertion: %q %q", first, second)
			}
			if (first == second) != tc.reuse {
				t.Errorf("the same assertion on both hosts: %v, want %v", first == second, tc.reuse)
			}
		})
	}
}
