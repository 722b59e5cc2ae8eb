package integration_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	// The second Envoy's jwt_authn filter, for envoy.Decode.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/idjwt"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/echo"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/envoyproc"
)

const (
	assertionHeader = "x-zitadel-ext-authz-jwt"
	assertionIssuer = "https://authz.test"
)

// upstreamEnvoy is an Envoy in front of the upstream, as on the upstream's
// side of a mesh: its jwt_authn filter verifies our assertion against our
// JWKS (remote_jwks: the operations listener's /.well-known/jwks.json) and
// refuses a request without a valid one, audience "default", our issuer.
const upstreamEnvoy = `static_resources:
  listeners:
  - name: upstream
    address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: upstream
          route_config:
            virtual_hosts:
            - name: echo
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: { cluster: echo }
          http_filters:
          - name: envoy.filters.http.jwt_authn
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication
              providers:
                zitadel_ext_authz:
                  issuer: ` + assertionIssuer + `
                  audiences: [default]
                  from_headers: [{ name: ` + assertionHeader + ` }]
                  forward: true
                  remote_jwks:
                    http_uri: { uri: "http://zitadel-ext-authz/.well-known/jwks.json", cluster: jwks, timeout: 5s }
                    cache_duration: 60s
              rules:
              - match: { prefix: "/" }
                requires: { provider_name: zitadel_ext_authz }
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: echo
    type: STATIC
    load_assignment:
      cluster_name: echo
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 1 } } } }] }]
  - name: jwks
    type: STATIC
    load_assignment:
      cluster_name: jwks
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 1 } } } }] }]
`

// assertionStack: the front Envoy and us, then a second real Envoy with
// jwt_authn in front of an echo that verifies the assertion itself (a
// standard JOSE library against PREFIX/jwks through the front).
type assertionStack struct {
	*stack
	Upstream *envoyproc.Proc // the second Envoy
	Verifier *echo.Verifier
}

func startAssertionStack(t *testing.T, extra map[string]any) *assertionStack {
	t.Helper()
	idp := devidp.StartT(t, devidp.Options{})
	cfg := baseConfig(idp.Issuer)
	cfg["identity_jwt_issuer"] = assertionIssuer
	cfg["skip_jwt_bearer_tokens"] = true
	for k, v := range extra {
		cfg[k] = v
	}
	srv := startServer(t, cfg)
	srv.waitReady(t)
	v := echo.NewVerifier(assertionHeader, "")
	v.Issuer, v.Audience = assertionIssuer, "default"
	upstream := httptest.NewServer(echo.Verifying(v))
	t.Cleanup(upstream.Close)
	second, err := envoyproc.Start(envoyproc.Options{Config: []byte(upstreamEnvoy), Logs: io.Discard,
		Clusters: map[string]string{"echo": strings.TrimPrefix(upstream.URL, "http://"), "jwks": srv.HTTPAddr}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(second.Stop)
	st := &stack{IdP: idp, Server: srv}
	st.Front = startFront(t, frontOptions{grpcAddr: srv.GRPCAddr, opsAddr: srv.HTTPAddr, upstream: second.URL})
	v.SetJWKS(st.Front.URL + "/oauth2/jwks")
	return &assertionStack{stack: st, Upstream: second, Verifier: v}
}

// verified is the assertion the echo received, verified; it fails the
// test unless there is one and it verified.
func verified(t *testing.T, got echo.Request) map[string]any {
	t.Helper()
	if got.Assertion == nil || !got.Assertion.Valid {
		t.Fatalf("the upstream got no valid assertion: %+v", got.Assertion)
	}
	return got.Assertion.Claims
}

// End to end through the real Envoy: the upstream verifies our assertion
// on a session's and a bearer token's requests (the echo with go-jose, and
// a second Envoy's jwt_authn before it); a client-sent assertion never
// reaches it; jwt_authn refuses a forged, an expired, a wrong-audience and
// an unsigned assertion sent straight to it.
func TestIdentityAssertionThroughEnvoy(t *testing.T) {
	as := startAssertionStack(t, nil)
	alice := newBrowser(t, "alice", "alice-password")
	alice.header.Set(assertionHeader, "forged-by-the-client")
	c := verified(t, upstreamSaw(t, as.login(t, alice, "/")))
	if c["sub"] != "user-alice" || c["preferred_username"] != "alice" || c["iss"] != assertionIssuer {
		t.Errorf("session assertion claims: %v", c)
	}

	tok, err := as.IdP.Tokens(t.Context(), devidp.DefaultClient(), "bob", "bob-password")
	if err != nil {
		t.Fatal(err)
	}
	got := upstreamSaw(t, newBrowser(t, "", "").do(http.MethodGet, as.Front.URL+"/api", http.Header{
		"Authorization": {"Bearer " + tok.AccessToken}, "Accept": {"application/json"}, assertionHeader: {"forged-by-the-client"}}))
	if c := verified(t, got); c["sub"] != "user-bob" {
		t.Errorf("bearer assertion claims: %v", c)
	}

	// Straight to the upstream's Envoy, past us.
	secret, err := session.DecodeSecret(testCookieSecret)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := idjwt.FromSecrets([][]byte{secret}) // the keys the server derives
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	valid := idjwt.Claims{Issuer: assertionIssuer, Audience: []string{"default"}, Subject: "user-alice", Groups: []string{}, IssuedAt: now.Unix(), Expiry: now.Add(time.Minute).Unix()}
	sign := func(c idjwt.Claims) string {
		s, err := ours.Sign(&c)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	expired, wrongAud := valid, valid
	expired.IssuedAt, expired.Expiry = now.Add(-time.Hour).Unix(), now.Add(-30*time.Minute).Unix()
	wrongAud.Audience = []string{"another-app"}
	for _, tc := range []struct {
		name, token string
		want        int
	}{
		{"ours, valid", sign(valid), http.StatusOK},
		{"none", "", http.StatusUnauthorized},
		{"forged (another key)", forgedAssertion(t, valid), http.StatusUnauthorized},
		{"expired", sign(expired), http.StatusUnauthorized},
		// Envoy answers a valid token for another audience with 403
		// ("Audiences in Jwt are not allowed").
		{"wrong audience", sign(wrongAud), http.StatusForbidden},
		{"unsigned (alg none)", unsignedAssertion(valid), http.StatusUnauthorized},
	} {
		h := http.Header{"Accept": {"application/json"}}
		if tc.token != "" {
			h.Set(assertionHeader, tc.token)
		}
		if r := newBrowser(t, "", "").do(http.MethodGet, as.Upstream.URL+"/straight", h); r == nil || r.StatusCode != tc.want {
			t.Errorf("%s straight to the upstream's Envoy: %s, want %d", tc.name, describe(r), tc.want)
		}
	}
}

// forgedAssertion is c signed by a key that isn't ours.
func forgedAssertion(t *testing.T, c idjwt.Claims) string {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// unsignedAssertion is c with "alg": "none" and no signature.
func unsignedAssertion(c idjwt.Claims) string {
	header := b64(`{"alg":"none","typ":"JWT"}`)
	body, _ := jsonMarshal(c)
	return header + "." + b64(string(body)) + "."
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

var jsonMarshal = json.Marshal

// Rotation: with cookie_secrets = [new, old] both keys are published, the
// new one signs, and an assertion signed by the old one (before the
// rotation) still verifies; a replica started later serves the same JWKS.
func TestIdentityAssertionKeysRotateWithCookieSecrets(t *testing.T) {
	const newSecret = "bmV3LXNlY3JldC0zMi1ieXRlcy1sb25nLXBsZWFzZSE=" // 32 bytes, base64
	as := startAssertionStack(t, map[string]any{"cookie_secrets": []string{newSecret, testCookieSecret}})
	c := verified(t, upstreamSaw(t, as.login(t, newBrowser(t, "alice", "alice-password"), "/")))
	if c["sub"] != "user-alice" {
		t.Errorf("claims: %v", c)
	}
	keyOf := func(s string) idjwt.Keys {
		raw, err := session.DecodeSecret(s)
		if err != nil {
			t.Fatal(err)
		}
		k, err := idjwt.FromSecrets([][]byte{raw})
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	old, err := keyOf(testCookieSecret).Sign(&idjwt.Claims{Issuer: assertionIssuer, Audience: []string{"default"}, Subject: "user-alice",
		Groups: []string{}, IssuedAt: now.Unix(), Expiry: now.Add(time.Minute).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := as.Verifier.Verify(old); err != nil {
		t.Errorf("an assertion of the old key doesn't verify after the rotation: %v", err)
	}

	jwks := func(addr string) string {
		r := newBrowser(t, "", "").get("http://" + addr + "/.well-known/jwks.json")
		if r == nil || r.StatusCode != http.StatusOK || r.Header.Get("Cache-Control") == "" {
			t.Fatalf("JWKS on %s: %s", addr, describe(r))
		}
		return r.Body
	}
	first := jwks(as.Server.HTTPAddr)
	if n := strings.Count(first, `"kid"`); n != 2 {
		t.Errorf("JWKS with [new, old]: %d keys, want 2: %s", n, first)
	}
	cfg := baseConfig(as.IdP.Issuer)
	cfg["cookie_secrets"], cfg["identity_jwt_issuer"] = []string{newSecret, testCookieSecret}, assertionIssuer
	later := startServer(t, cfg)
	later.waitReady(t)
	if second := jwks(later.HTTPAddr); second != first {
		t.Errorf("a replica started later publishes other keys:\n%s\n%s", first, second)
	}
}
