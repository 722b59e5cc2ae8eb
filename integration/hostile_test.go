package integration_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
)

// attackerKey signs tokens the IdP never issued.
var attackerKey = func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}()

// tokenTamper rewrites the ID token in the token endpoint's answer.
func tokenTamper(t *testing.T, idp *devidp.Server, rewrite func(claims map[string]any) string) devidp.Tamper {
	return func(r *http.Request, status int, body []byte) (int, []byte) {
		if r.URL.Path != "/oauth/token" || status != http.StatusOK {
			return status, body
		}
		var resp map[string]any
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Errorf("token response: %v", err)
			return status, body
		}
		idt, _ := resp["id_token"].(string)
		claims, err := devidp.Claims(idt)
		if err != nil {
			t.Errorf("id_token: %v", err)
			return status, body
		}
		resp["id_token"] = rewrite(claims)
		out, _ := json.Marshal(resp)
		return status, out
	}
}

// resign signs edited claims with the IdP's own key.
func resign(t *testing.T, idp *devidp.Server, edit func(map[string]any)) func(map[string]any) string {
	return func(c map[string]any) string {
		edit(c)
		tok, err := idp.SignJWT(t.Context(), c)
		if err != nil {
			t.Error(err)
		}
		return tok
	}
}

// A hostile or broken IdP never gets us to issue a session: every case is
// a clear Denied answer and a log line with the reason.
func TestHostileIdP(t *testing.T) {
	idp := devidp.StartT(t, devidp.Options{})
	cfg := baseConfig(idp.Issuer)
	cfg["idp_timeout"] = "1s"
	srv := startServer(t, cfg)
	srv.waitReady(t)
	st := frontFor(t, srv)
	st.IdP = idp
	client := devidp.DefaultClient()
	kid, err := idp.SigningKeyID(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()

	type tc struct {
		name       string
		tamper     devidp.Tamper
		hang       bool
		wantStatus int
		wantLog    string // in the server's logs after the callback
	}
	cases := []tc{
		{"ID token: wrong iss", tokenTamper(t, idp, resign(t, idp, func(c map[string]any) { c["iss"] = "https://evil.example" })), false, 403, "login_rejected"},
		{"ID token: wrong aud", tokenTamper(t, idp, resign(t, idp, func(c map[string]any) { c["aud"] = []string{"someone-else"} })), false, 403, "login_rejected"},
		{"ID token: extra untrusted aud without azp", tokenTamper(t, idp, resign(t, idp, func(c map[string]any) {
			c["aud"] = []string{client.ID, "untrusted"}
			delete(c, "azp")
		})), false, 403, "login_rejected"},
		{"ID token: expired", tokenTamper(t, idp, resign(t, idp, func(c map[string]any) { c["exp"] = now.Add(-time.Hour).Unix() })), false, 403, "login_rejected"},
		{"ID token: iat in the future", tokenTamper(t, idp, resign(t, idp, func(c map[string]any) { c["iat"] = now.Add(time.Hour).Unix() })), false, 403, "login_rejected"},
		{"ID token: alg none", tokenTamper(t, idp, func(c map[string]any) string {
			payload, _ := json.Marshal(c)
			return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + base64.RawURLEncoding.EncodeToString(payload) + "."
		}), false, 403, "login_rejected"},
		{"ID token: HS256 with the client secret", tokenTamper(t, idp, func(c map[string]any) string {
			// By hand: go-jose refuses HMAC keys this short, an attacker doesn't.
			payload, _ := json.Marshal(c)
			input := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT","kid":"`+kid+`"}`)) + "." + base64.RawURLEncoding.EncodeToString(payload)
			mac := hmac.New(sha256.New, []byte(client.Secret))
			mac.Write([]byte(input))
			return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
		}), false, 403, "login_rejected"},
		{"ID token: unknown kid", tokenTamper(t, idp, func(c map[string]any) string {
			tok, _ := devidp.SignWith(jose.RS256, attackerKey, "attacker-kid", c)
			return tok
		}), false, 403, "login_rejected"},
		{"ID token: missing sub", tokenTamper(t, idp, resign(t, idp, func(c map[string]any) { delete(c, "sub") })), false, 403, "login_rejected"},
		{"ID token: wrong nonce", tokenTamper(t, idp, resign(t, idp, func(c map[string]any) { c["nonce"] = "attacker-nonce" })), false, 403, "login_rejected"},
		{"ID token: wrong at_hash", tokenTamper(t, idp, resign(t, idp, func(c map[string]any) { c["at_hash"] = "AAAAAAAAAAAAAAAAAAAAAA" })), false, 403, "login_rejected"},
		{"token endpoint: 500", func(r *http.Request, status int, body []byte) (int, []byte) {
			if r.URL.Path == "/oauth/token" {
				return http.StatusInternalServerError, []byte(`{"error":"server_error"}`)
			}
			return status, body
		}, false, 503, "idp_unavailable"},
		{"token endpoint: garbage JSON", func(r *http.Request, status int, body []byte) (int, []byte) {
			if r.URL.Path == "/oauth/token" {
				return http.StatusOK, []byte(`{"access_token": "x", "id_token": [}}`)
			}
			return status, body
		}, false, 0, "code exchange failed"},
		{"token endpoint: 50 MB body", func(r *http.Request, status int, body []byte) (int, []byte) {
			if r.URL.Path == "/oauth/token" {
				return http.StatusOK, append([]byte(`{"access_token":"`), bytes.Repeat([]byte("A"), 50<<20)...)
			}
			return status, body
		}, false, 0, "code exchange failed"},
		{"token endpoint: never answers", nil, true, 504, "idp_"},
		{"userinfo: sub differs from the ID token's", func(r *http.Request, status int, body []byte) (int, []byte) {
			switch r.URL.Path {
			case "/oauth/token":
				// No e-mail in the ID token: we ask userinfo for it.
				return tokenTamper(t, idp, resign(t, idp, func(c map[string]any) { delete(c, "email"); delete(c, "email_verified") }))(r, status, body)
			case "/userinfo":
				return http.StatusOK, []byte(`{"sub":"user-mallory","email":"mallory@example.com","email_verified":true}`)
			}
			return status, body
		}, false, 403, "login_rejected"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBrowser(t, "alice", "alice-password")
			cb := beginLogin(t, st, b, "/hostile")
			idp.SetTamper(c.tamper)
			if c.hang {
				idp.HangToken()
			}
			logsBefore := len(srv.Logs())
			resp := b.get(cb.String())
			idp.SetTamper(nil)
			idp.Release()
			switch {
			case c.wantStatus != 0 && resp.StatusCode != c.wantStatus:
				t.Errorf("callback: %s, want %d", describe(resp), c.wantStatus)
			case resp.StatusCode < 400:
				t.Errorf("callback: %s, want a Denied answer", describe(resp))
			}
			for _, sc := range resp.Header.Values("Set-Cookie") {
				if strings.HasPrefix(sc, "_oauth2_proxy=") && !strings.Contains(sc, "Max-Age=0") {
					t.Errorf("a session cookie was issued: %.80s", sc)
				}
			}
			if r := b.do(http.MethodGet, st.Front.URL+"/hostile", nil); r.StatusCode == http.StatusOK {
				t.Error("the browser got a session")
			}
			waitFor(t, "a log line with the reason", func() bool {
				return strings.Contains(srv.Logs()[logsBefore:], c.wantLog)
			})
			for _, line := range strings.Split(srv.Logs()[logsBefore:], "\n") {
				if strings.Contains(line, `"level":"WARN"`) {
					t.Log(line) // the reason, for the record (go test -v)
				}
			}
		})
	}
}

// Duplicate kids in the JWKS: an attacker's key published under the IdP's
// own kid doesn't make its tokens valid.
func TestHostileIdPDuplicateKid(t *testing.T) {
	st := startStack(t, stackOptions{})
	idp := st.IdP
	kid, err := idp.SigningKeyID(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	attacker := jose.JSONWebKey{Key: attackerKey.Public(), KeyID: kid, Algorithm: "RS256", Use: "sig"}
	idp.SetTamper(func(r *http.Request, status int, body []byte) (int, []byte) {
		switch r.URL.Path {
		case "/keys":
			var set jose.JSONWebKeySet
			if json.Unmarshal(body, &set) == nil {
				set.Keys = append([]jose.JSONWebKey{attacker}, set.Keys...)
				out, _ := json.Marshal(set)
				return status, out
			}
		case "/oauth/token":
			return tokenTamper(t, idp, func(c map[string]any) string {
				tok, _ := devidp.SignWith(jose.RS256, attackerKey, kid, c)
				return tok
			})(r, status, body)
		}
		return status, body
	})
	b := newBrowser(t, "alice", "alice-password")
	cb := beginLogin(t, st, b, "/dup")
	resp := b.get(cb.String())
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("attacker-signed ID token under a duplicate kid: %s, want 403", describe(resp))
	}
	if r := b.do(http.MethodGet, st.Front.URL+"/dup", nil); r.StatusCode == http.StatusOK {
		t.Error("the browser got a session")
	}
}

// Mix-up: discovery names another issuer than the configured one. The
// server never becomes ready, says why, and logins get 503.
func TestHostileIdPDiscoveryMixUp(t *testing.T) {
	idp := devidp.StartT(t, devidp.Options{})
	idp.SetTamper(func(r *http.Request, status int, body []byte) (int, []byte) {
		if r.URL.Path == "/.well-known/openid-configuration" {
			return status, bytes.Replace(body, []byte(`"issuer":"`+idp.Issuer+`"`), []byte(`"issuer":"https://other-idp.example"`), 1)
		}
		return status, body
	})
	srv := startServer(t, baseConfig(idp.Issuer))
	waitFor(t, "the mix-up log line", func() bool {
		return strings.Contains(srv.Logs(), "differs from oidc_issuer_url")
	})
	if resp, err := http.Get("http://" + srv.HTTPAddr + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz: %v %v, want 503", resp, err)
	}
	st := frontFor(t, srv)
	if r := newBrowser(t, "alice", "alice-password").do(http.MethodGet, st.Front.URL+"/", nil); r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a login against the mixed-up IdP: %s, want 503", describe(r))
	}
}

// Browser-facing answers: the sign-in page, error pages and the sign-out
// page carry CSP, X-Frame-Options: DENY, no-store and no-referrer; every
// redirect that carries a code or state (to the IdP, the callback's) is
// no-store and no-referrer; reflected input is escaped.
func TestPageHeaders(t *testing.T) {
	st := startStack(t, stackOptions{config: map[string]any{"skip_provider_button": false}})
	b := newBrowser(t, "alice", "alice-password")
	page := func(what string, r *response) {
		t.Helper()
		for h, want := range map[string]string{
			"Content-Security-Policy": "default-src 'none'",
			"X-Frame-Options":         "DENY",
			"Cache-Control":           "no-store",
			"Referrer-Policy":         "no-referrer",
			"Content-Type":            "text/html; charset=utf-8",
		} {
			if got := r.Header.Get(h); !strings.Contains(got, want) {
				t.Errorf("%s: %s = %q, want %q", what, h, got, want)
			}
		}
	}
	redirect := func(what string, r *response) {
		t.Helper()
		if r.StatusCode != http.StatusFound || r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: %d, Cache-Control %q, Referrer-Policy %q", what, r.StatusCode, r.Header.Get("Cache-Control"), r.Header.Get("Referrer-Policy"))
		}
	}
	evil := `"><script>alert(1)</script><a href="`
	signIn := b.get(st.Front.URL + "/x?q=" + url.QueryEscape(evil))
	page("sign-in page", signIn)
	if strings.Contains(signIn.Body, "<script>") {
		t.Errorf("sign-in page reflects markup: %s", signIn.Body)
	}
	toIdP := b.get(st.Front.URL + "/oauth2/start?rd=%2Fx")
	redirect("redirect to the IdP", toIdP)
	cb, err := devidp.LoginForm(b.client, toIdP.Header.Get("Location"), b.user, b.password)
	if err != nil {
		t.Fatal(err)
	}
	fromCallback := b.get(cb.String())
	redirect("callback redirect", fromCallback)
	page("bad state", b.get(cb.String())) // replayed: error page
	page("IdP error", b.get(st.Front.URL+"/oauth2/callback?error="+url.QueryEscape(evil)+"&state=x"))
	redirect("sign-out", b.get(st.Front.URL+"/oauth2/sign_out"))
}
