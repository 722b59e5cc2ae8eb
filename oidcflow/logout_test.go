package oidcflow_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

func logoutClaims(issuer string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": issuer, "aud": devidp.DefaultClient().ID, "sub": "user-alice", "sid": "sid-1",
		"iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(), "jti": "fuzz-jti",
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}
}

// Back-Channel Logout 1.0 §2.6: every rule refuses its violation.
func TestVerifyLogoutToken(t *testing.T) {
	idp := startIdP(t)
	p := startProvider(t, idp.Issuer)
	waitReady(t, p)
	good, err := idp.SignJWT(t.Context(), logoutClaims(idp.Issuer))
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.VerifyLogoutToken(t.Context(), good)
	if err != nil || c.SID != "sid-1" || c.Subject != "user-alice" || c.JTI != "fuzz-jti" {
		t.Fatalf("valid logout token: %+v, %v", c, err)
	}
	for name, edit := range map[string]func(map[string]any){
		"wrong iss":       func(m map[string]any) { m["iss"] = "https://evil.example" },
		"wrong aud":       func(m map[string]any) { m["aud"] = []string{"other"} },
		"no iat":          func(m map[string]any) { delete(m, "iat") },
		"iat in future":   func(m map[string]any) { m["iat"] = time.Now().Add(time.Hour).Unix() },
		"expired":         func(m map[string]any) { m["exp"] = time.Now().Add(-time.Hour).Unix() },
		"no exp, old iat": func(m map[string]any) { delete(m, "exp"); m["iat"] = time.Now().Add(-10 * time.Minute).Unix() },
		"no event":        func(m map[string]any) { m["events"] = map[string]any{"other": map[string]any{}} },
		"event not a map": func(m map[string]any) {
			m["events"] = map[string]any{"http://schemas.openid.net/event/backchannel-logout": "x"}
		},
		"no sid, no sub": func(m map[string]any) { delete(m, "sid"); delete(m, "sub") },
		"nonce":          func(m map[string]any) { m["nonce"] = "n" },
		"no jti":         func(m map[string]any) { delete(m, "jti") },
	} {
		claims := logoutClaims(idp.Issuer)
		edit(claims)
		tok, err := idp.SignJWT(t.Context(), claims)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.VerifyLogoutToken(t.Context(), tok); !errors.Is(err, oidcflow.ErrInvalidToken) {
			t.Errorf("%s: %v, want ErrInvalidToken", name, err)
		}
	}
	// Ory Hydra's logout tokens carry no exp: accepted while the iat is
	// recent (the jti replay guard remembers it that long).
	hydra := logoutClaims(idp.Issuer)
	delete(hydra, "exp")
	tok, err := idp.SignJWT(t.Context(), hydra)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := p.VerifyLogoutToken(t.Context(), tok); err != nil || time.Until(c.Expiry) < 4*time.Minute {
		t.Errorf("a logout token without exp (Hydra's): %+v, %v", c, err)
	}
	// Not signed by the IdP: alg none, and a tampered payload.
	parts := strings.Split(good, ".")
	for name, tok := range map[string]string{
		"alg none": "eyJhbGciOiJub25lIn0." + parts[1] + ".",
		"tampered": parts[0] + "." + strings.Replace(parts[1], parts[1][5:9], "AAAA", 1) + "." + parts[2],
		"garbage":  "not a jwt",
	} {
		if _, err := p.VerifyLogoutToken(t.Context(), tok); !errors.Is(err, oidcflow.ErrInvalidToken) {
			t.Errorf("%s: %v, want ErrInvalidToken", name, err)
		}
	}
}

// FuzzLogoutToken: no input panics the verifier, and only a token the IdP
// signed is accepted.
func FuzzLogoutToken(f *testing.F) {
	idp := startIdP(f)
	p := startProvider(f, idp.Issuer)
	waitReady(f, p)
	good, err := idp.SignJWT(f.Context(), logoutClaims(idp.Issuer))
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(good, ".")
	f.Add(good)
	f.Add(parts[0] + "." + parts[1] + ".")
	f.Add("eyJhbGciOiJIUzI1NiJ9." + parts[1] + "." + parts[2])
	f.Add("a.b.c.d.e")
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := p.VerifyLogoutToken(t.Context(), raw)
		if err != nil {
			return
		}
		if c.JTI != "fuzz-jti" || c.Subject != "user-alice" {
			t.Fatalf("accepted a token the IdP never signed: %+v", c)
		}
	})
}
