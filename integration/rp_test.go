package integration_test

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
)

// advertiseIss makes the IdP's discovery document carry
// authorization_response_iss_parameter_supported with value (raw JSON),
// or leaves it out when value is "".
func advertiseIss(value string) func(*devidp.Server) {
	return func(idp *devidp.Server) {
		if value == "" {
			return
		}
		idp.SetTamper(func(r *http.Request, status int, body []byte) (int, []byte) {
			if r.URL.Path != "/.well-known/openid-configuration" {
				return status, body
			}
			return status, bytes.Replace(body, []byte("{"), []byte(`{"authorization_response_iss_parameter_supported":`+value+`,`), 1)
		})
	}
}

// withIss returns the callback URL with iss set (form-encoded), or removed
// when iss is nil.
func withIss(cb *url.URL, iss *string) string {
	q := cb.Query()
	q.Del("iss")
	if iss != nil {
		q.Set("iss", *iss)
	}
	u := *cb
	u.RawQuery = q.Encode()
	return u.String()
}

// RFC 9207 §2.4: an authorization response naming another issuer is
// refused whatever discovery says; one naming none is refused when the IdP
// promises to name itself. Refused means: a 400 page, the state cookie
// cleared, no token request, no session.
func TestAuthorizationResponseIssuer(t *testing.T) {
	foreign := "https://evil.example"
	for _, tc := range []struct {
		discovery string // authorization_response_iss_parameter_supported, "" = absent
		iss       *string
		accepted  bool
	}{
		{"", &foreign, false},
		{"false", &foreign, false},
		{"true", &foreign, false},
		{"true", nil, false},
		{"", nil, true},
		{"false", nil, true},
		{"true", ptr("{issuer}"), true},
		{"", ptr("{issuer}"), true},
		{"", ptr("{issuer}/"), false}, // exact match: no normalisation
	} {
		name := "discovery " + map[string]string{"": "absent"}[tc.discovery] + tc.discovery + ", iss "
		if tc.iss == nil {
			name += "missing"
		} else {
			name += *tc.iss
		}
		t.Run(name, func(t *testing.T) {
			st := startStack(t, stackOptions{idpSetup: advertiseIss(tc.discovery)})
			b := newBrowser(t, "alice", "alice-password")
			cb := beginLogin(t, st, b, "/after")
			var iss *string
			if tc.iss != nil {
				v := strings.ReplaceAll(*tc.iss, "{issuer}", st.IdP.Issuer)
				iss = &v
			}
			tokenCalls := st.IdP.Calls("/oauth/token")
			r := b.get(withIss(cb, iss))
			if tc.accepted {
				if r.StatusCode != http.StatusFound || r.Header.Get("Location") != st.Front.URL+"/after" {
					t.Fatalf("got %s, want the login completed", describe(r))
				}
				return
			}
			if r.StatusCode != http.StatusBadRequest || !strings.Contains(r.Body, "expected identity provider") {
				t.Fatalf("got %s, want the 400 page", describe(r))
			}
			if st.IdP.Calls("/oauth/token") != tokenCalls {
				t.Error("the code was sent to the token endpoint")
			}
			noSession(t, b, st, r)
			for _, n := range b.cookieNames(st.Front.URL) {
				if strings.Contains(n, "_csrf_") {
					t.Errorf("state cookie %s not cleared", n)
				}
			}
			waitFor(t, "the issuer_mismatch log line", func() bool {
				return strings.Contains(st.Server.Logs(), `"reason":"issuer_mismatch"`)
			})
		})
	}
}

func ptr(s string) *string { return &s }

// ZITADEL rotates its signing key without notice: a login right after the
// rotation (here within a second of the server's own JWKS fetch at start)
// verifies after one refetch, and so does a refresh; meanwhile a flood of
// bearer tokens with random kids still makes a bounded number of JWKS
// requests.
func TestSigningKeyRotation(t *testing.T) {
	st := bearerStack(t, nil)
	jwks := func() int64 { return st.IdP.Calls("/keys") }

	// A flood of JWT bearers with random kids, 64 at a time.
	before := jwks()
	done := make(chan int, 200)
	for i := range 200 {
		go func() {
			claims := map[string]any{"iss": st.IdP.Issuer, "sub": "user-alice", "aud": []string{jwtClient.ID}, "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix()}
			tok, _ := devidp.SignWith(jose.RS256, attackerKey, fmt.Sprintf("random-kid-%d", i), claims)
			done <- apiCall(t, st, "/api/items", tok).StatusCode
		}()
	}
	for range 200 {
		if code := <-done; code != http.StatusUnauthorized {
			t.Fatalf("a random-kid bearer got %d, want 401", code)
		}
	}
	if n := jwks() - before; n > 1 {
		t.Fatalf("200 random-kid bearers made %d JWKS requests, want at most 1", n)
	}

	// Rotate, then log in at once: the ID token carries the new kid.
	kid, err := st.IdP.RotateKey()
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t, "alice", "alice-password")
	got := upstreamSaw(t, st.login(t, b, "/after-rotation"))
	if got.Headers["x-forwarded-user"] != "user-alice" {
		t.Fatalf("login right after the rotation: upstream user %q", got.Headers["x-forwarded-user"])
	}
	if n := jwks() - before; n > 2 {
		t.Errorf("%d JWKS requests in all, want the flood's one and the rotation's one", n)
	}
	// A JWT bearer signed with the new key verifies too (the key is known now).
	tok := st.accessToken(t, jwtClient, "alice")
	if claims, _ := devidp.Claims(tok); claims == nil {
		t.Fatal("not a JWT")
	}
	if r := apiCall(t, st, "/api/items", tok); r.StatusCode != http.StatusOK {
		t.Errorf("a bearer signed with the new key %s: %s", kid, describe(r))
	}
}

// Sign-out ends the session on the server side in cookie mode too: a copy
// of the cookie taken before /oauth2/sign_out (another tab, a proxy log, a
// thief) is refused afterwards, in a single process without Redis and on a
// second replica when redis_url is set.
func TestSignOutEndsCopiesOfTheCookie(t *testing.T) {
	t.Run("single process, no Redis", func(t *testing.T) {
		st := startStack(t, stackOptions{})
		b := newBrowser(t, "alice", "alice-password")
		st.login(t, b, "/")
		copied := cookieHeader(b, st.Front.URL)
		if r := b.get(st.Front.URL + "/oauth2/sign_out"); r.StatusCode != http.StatusFound {
			t.Fatalf("sign-out: %s", describe(r))
		}
		thief := newBrowser(t, "", "")
		if r := thief.do(http.MethodGet, st.Front.URL+"/", http.Header{"Cookie": {copied}}); r.StatusCode != http.StatusFound || !strings.HasPrefix(r.Header.Get("Location"), st.IdP.Issuer) {
			t.Fatalf("the copied cookie after sign-out: %s, want the login redirect", describe(r))
		}
		if r := thief.do(http.MethodGet, st.Front.URL+"/api/items", http.Header{"Cookie": {copied}, "Accept": {"application/json"}, "Authorization": nil}); r.StatusCode != http.StatusUnauthorized {
			t.Fatalf("the copied cookie on the API after sign-out: %s, want 401", describe(r))
		}
		waitFor(t, "the signed_out log line", func() bool { return strings.Contains(st.Server.Logs(), `"reason":"signed_out"`) })
	})
	t.Run("two replicas with redis_url", func(t *testing.T) {
		rp := startReplicas(t, 2, nil)
		a, b := rp.Stacks[0], rp.Stacks[1]
		alice := newBrowser(t, "alice", "alice-password")
		a.login(t, alice, "/")
		if got := upstreamSaw(t, withCookie(t, alice, a.Front.URL, b.Front.URL+"/")); got.Headers["x-forwarded-user"] != "user-alice" {
			t.Fatalf("the cookie on replica B before sign-out: user %q", got.Headers["x-forwarded-user"])
		}
		copied := cookieHeader(alice, a.Front.URL)
		if r := alice.get(a.Front.URL + "/oauth2/sign_out"); r.StatusCode != http.StatusFound {
			t.Fatalf("sign-out on A: %s", describe(r))
		}
		// Within a second, B refuses the copy too.
		testkit.Eventually(t, time.Second, "replica B to refuse the signed-out cookie", func() bool {
			return newBrowser(t, "", "").do(http.MethodGet, b.Front.URL+"/", http.Header{"Cookie": {copied}}).StatusCode == http.StatusFound
		})
		// A replica that starts later loads the record from Redis.
		cfg := baseConfig(rp.IdP.Issuer)
		cfg["redis_url"] = "redis://" + rp.Redis.addr
		c := startServer(t, cfg)
		c.waitReady(t)
		late := frontFor(t, c)
		if r := newBrowser(t, "", "").do(http.MethodGet, late.Front.URL+"/", http.Header{"Cookie": {copied}}); r.StatusCode != http.StatusFound {
			t.Fatalf("a replica started after the sign-out accepts the copy: %s", describe(r))
		}
	})
}
