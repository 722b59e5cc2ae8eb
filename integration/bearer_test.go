package integration_test

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
)

var jwtClient = devidp.Client{ID: "api-jwt@zitadel-ext-authz", Secret: "api-secret", RedirectURIGlobs: []string{"http://127.0.0.1:*/oauth2/callback"}, JWTAccessTokens: true}

func bearerStack(t *testing.T, extra map[string]any) *stack {
	cfg := map[string]any{"skip_jwt_bearer_tokens": true, "extra_jwt_audiences": []string{jwtClient.ID}}
	for k, v := range extra {
		cfg[k] = v
	}
	return startStack(t, stackOptions{config: cfg, clients: []devidp.Client{devidp.DefaultClient(), jwtClient}})
}

func (st *stack) accessToken(t *testing.T, c devidp.Client, user string) string {
	t.Helper()
	tok, err := st.IdP.Tokens(t.Context(), c, user, user+"-password")
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

func apiCall(t *testing.T, st *stack, path, token string) *response {
	b := newBrowser(t, "", "")
	return b.do(http.MethodGet, st.Front.URL+path, http.Header{"Authorization": {"Bearer " + token}, "Accept": {"application/json"}})
}

// Both token kinds for the same user, end to end, roles from introspection
// and from the JWT; the caller's authorization header passes unchanged.
func TestBearerTokensThroughEnvoy(t *testing.T) {
	st := bearerStack(t, map[string]any{"pass_access_token": true})
	for _, tc := range []struct {
		name   string
		client devidp.Client
	}{{"opaque (introspection)", devidp.DefaultClient()}, {"JWT", jwtClient}} {
		t.Run(tc.name, func(t *testing.T) {
			tok := st.accessToken(t, tc.client, "alice")
			got := upstreamSaw(t, apiCall(t, st, "/api/items", tok))
			want := map[string]string{
				"x-forwarded-user":         "user-alice",
				"x-forwarded-groups":       "admin,reader",
				"x-forwarded-access-token": tok,
				"authorization":            "Bearer " + tok,
			}
			for k, v := range want {
				if got.Headers[k] != v {
					t.Errorf("upstream %s = %.40q, want %.40q", k, got.Headers[k], v)
				}
			}
			// The second call is a cache hit: no new verification.
			upstreamSaw(t, apiCall(t, st, "/api/items", tok))
		})
	}
	metrics := scrape(t, st.Server)
	for _, want := range []string{
		`zitadel_ext_authz_idp_calls_total{app="default",call="introspection",outcome="active"} 1`,
		`zitadel_ext_authz_idp_calls_total{app="default",call="jwt",outcome="active"} 1`,
		`zitadel_ext_authz_cache_hits_total{cache="token"} 2`,
		`zitadel_ext_authz_idp_call_duration_seconds_count{call="introspection"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// Per-route policy from envoy.yaml's context_extensions.
func TestPerRoutePolicy(t *testing.T) {
	st := bearerStack(t, nil)
	alice := st.accessToken(t, devidp.DefaultClient(), "alice")
	bob := st.accessToken(t, devidp.DefaultClient(), "bob")
	browserBob := newBrowser(t, "bob", "bob-password")
	st.login(t, browserBob, "/")

	// /admin/ also wants a second factor (required_amr: mfa), which no
	// access token can prove: RFC 9470's challenge, not a 200.
	if r := apiCall(t, st, "/admin/panel", alice); r.StatusCode != http.StatusUnauthorized ||
		!strings.Contains(r.Header.Get("Www-Authenticate"), `error="insufficient_user_authentication"`) {
		t.Errorf("/admin/ (allowed_groups: admin, required_amr: mfa) with alice's token: %s", describe(r))
	}
	if r := apiCall(t, st, "/admin/panel", bob); r.StatusCode != http.StatusForbidden {
		t.Errorf("/admin/ with bob's token: %s, want 403", describe(r))
	}
	if r := browserBob.get(st.Front.URL + "/admin/panel"); r.StatusCode != http.StatusForbidden {
		t.Errorf("/admin/ with bob's session: %s, want 403", describe(r))
	}
	if r := browserBob.get(st.Front.URL + "/api/items"); r.StatusCode != http.StatusUnauthorized || r.Header.Get("Location") != "" {
		t.Errorf("/api/ (auth: bearer-only) with a session cookie: %s, want 401 and no redirect", describe(r))
	}
	if r := apiCall(t, st, "/api/items", bob); r.StatusCode != http.StatusOK {
		t.Errorf("/api/ with bob's token: %s", describe(r))
	}
}

// Hostile bearers are all 401 with error="invalid_token".
func TestHostileBearers(t *testing.T) {
	st := bearerStack(t, nil)
	ctx := t.Context()
	now := time.Now()
	good := map[string]any{"iss": st.IdP.Issuer, "sub": "user-alice", "aud": []string{jwtClient.ID}, "exp": now.Add(time.Hour).Unix(), "iat": now.Unix()}
	with := func(k string, v any) map[string]any {
		c := map[string]any{}
		for kk, vv := range good {
			c[kk] = vv
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	sign := func(c map[string]any) string {
		tok, err := st.IdP.SignJWT(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	valid := sign(good)
	if r := apiCall(t, st, "/", valid); r.StatusCode != http.StatusOK {
		t.Fatalf("control: a correctly signed token is accepted, got %s", describe(r))
	}
	parts := strings.Split(valid, ".")
	payload, _ := json.Marshal(with("sub", "user-admin"))
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]

	enc := base64.RawURLEncoding.EncodeToString
	body, _ := json.Marshal(good)
	algNone := enc([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + enc(body) + "."
	hsHead := enc([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc(body)
	mac := hmac.New(sha256.New, []byte(devidp.DefaultClient().Secret))
	mac.Write([]byte(hsHead))
	hs256 := hsHead + "." + enc(mac.Sum(nil))

	stranger, _ := rsa.GenerateKey(rand.Reader, 2048)
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: stranger}, (&jose.SignerOptions{}).WithHeader("kid", "unknown-kid"))
	obj, _ := signer.Sign(body)
	unknownKid, _ := obj.CompactSerialize()

	cases := map[string]string{
		"expired":                 sign(with("exp", now.Add(-time.Minute).Unix())),
		"wrong audience":          sign(with("aud", []string{"someone-else"})),
		"wrong issuer":            sign(with("iss", "https://evil.example")),
		"not yet valid":           sign(with("nbf", now.Add(time.Hour).Unix())),
		"bad signature":           tampered,
		"alg none":                algNone,
		"HS256 with the secret":   hs256,
		"unknown kid":             unknownKid,
		"garbage":                 "definitely-not-a-token",
		"revoked opaque (random)": "b3BhcXVlLXRva2VuLXRoYXQtd2FzLW5ldmVyLWlzc3VlZA",
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			r := apiCall(t, st, "/", tok)
			// With the protected-resource metadata of "/" (RFC 9728 §5.1).
			want := `Bearer error="invalid_token", resource_metadata="` + st.Front.URL + `/.well-known/oauth-protected-resource"`
			if r.StatusCode != http.StatusUnauthorized || r.Header.Get("Www-Authenticate") != want {
				t.Fatalf("%s: got %s, want 401 invalid_token", name, describe(r))
			}
		})
	}
}

// IdP stopped after a token was cached: the cached token still passes; a new
// token gets 503 within the Envoy timeout.
func TestBearerWhileTheIdPIsDown(t *testing.T) {
	st := bearerStack(t, nil)
	cached := st.accessToken(t, devidp.DefaultClient(), "alice")
	fresh := st.accessToken(t, devidp.DefaultClient(), "bob")
	if r := apiCall(t, st, "/", cached); r.StatusCode != http.StatusOK {
		t.Fatalf("first call: %s", describe(r))
	}
	st.IdP.Close()
	if r := apiCall(t, st, "/", cached); r.StatusCode != http.StatusOK {
		t.Fatalf("cached token with the IdP down: %s, want 200", describe(r))
	}
	start := time.Now()
	r := apiCall(t, st, "/", fresh)
	if r.StatusCode != http.StatusServiceUnavailable || time.Since(start) > st.Front.Timeout {
		t.Fatalf("new token with the IdP down: %s after %s, want our 503 within %s", describe(r), time.Since(start), st.Front.Timeout)
	}
}

// Introspection authenticated with a ZITADEL key file (private_key_jwt) of an
// API app instead of the login client's secret.
func TestIntrospectionWithKeyFile(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	api := devidp.Client{ID: "api-introspect@zitadel-ext-authz", APIKey: key, KeyID: "302917284616765474"}
	keyPath := writeKeyFile(t, api)
	st := startStack(t, stackOptions{
		config:  map[string]any{"skip_jwt_bearer_tokens": true, "introspection_key_file": keyPath},
		clients: []devidp.Client{devidp.DefaultClient(), api},
	})
	tok := st.accessToken(t, devidp.DefaultClient(), "alice")
	got := upstreamSaw(t, apiCall(t, st, "/api/items", tok))
	if got.Headers["x-forwarded-user"] != "user-alice" || got.Headers["x-forwarded-groups"] != "admin,reader" {
		t.Fatalf("introspection with the key file: %v", got.Headers)
	}

	// Control: a key the IdP doesn't know fails client authentication, so the
	// key file (not the login client's secret) is what authenticated above.
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	wrong := api
	wrong.APIKey = other
	wrongPath := writeKeyFile(t, wrong)
	st2 := startStack(t, stackOptions{
		config:  map[string]any{"skip_jwt_bearer_tokens": true, "introspection_key_file": wrongPath},
		clients: []devidp.Client{devidp.DefaultClient(), api},
	})
	tok2 := st2.accessToken(t, devidp.DefaultClient(), "alice")
	if r := apiCall(t, st2, "/api/items", tok2); r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("introspection with an unknown key: %s, want 503", describe(r))
	}
	waitFor(t, "a log line naming the client-authentication failure", func() bool {
		return strings.Contains(st2.Server.Logs(), "refused our client authentication")
	})
}
