package idjwt

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
)

var (
	secretA = []byte("0123456789abcdef0123456789abcdef")
	secretB = []byte("fedcba9876543210fedcba9876543210")
)

// verify checks token against a JWKS as an upstream would, with a
// standard JOSE library, and returns its claims.
func verify(t *testing.T, token string, jwks []byte) (map[string]any, error) {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, err
	}
	keys := set.Key(parsed.Headers[0].KeyID)
	if len(keys) == 0 {
		return nil, jose.ErrJWKSKidNotFound
	}
	var claims map[string]any
	return claims, parsed.Claims(keys[0].Key, &claims)
}

func TestAssertionVerifiesWithAStandardLibrary(t *testing.T) {
	keys, err := FromSecrets([][]byte{secretA})
	if err != nil {
		t.Fatal(err)
	}
	ring := NewRing(keys, time.Now)
	yes := true
	tok, err := ring.Sign(&Claims{Issuer: "https://app.example.com", Audience: []string{"default", "app.example.com"}, Subject: "u1",
		Email: "a@example.com", EmailVerified: &yes, Groups: []string{"admin"}, OrgID: "org-1", AMR: []string{"pwd", "mfa"},
		IssuedAt: 1000, Expiry: 1300})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := verify(t, tok, ring.JWKS())
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if claims["sub"] != "u1" || claims["urn:zitadel:iam:user:resourceowner:id"] != "org-1" || claims["email_verified"] != true {
		t.Errorf("claims: %v", claims)
	}
	// Another subject with the same signature doesn't verify.
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(payload), `"u1"`, `"u2"`, 1))) + "." + parts[2]
	if _, err := verify(t, forged, ring.JWKS()); err == nil {
		t.Error("a forged payload verified")
	}
}

// Every replica derives the same keys from the same secrets; another
// secret is another key.
func TestKeysFromSecretsAreTheSameEverywhere(t *testing.T) {
	a1, _ := FromSecrets([][]byte{secretA, secretB})
	a2, _ := FromSecrets([][]byte{secretA, secretB})
	if a1[0].ID != a2[0].ID || a1[1].ID != a2[1].ID || a1[0].ID == a1[1].ID {
		t.Fatalf("kids: %s %s / %s %s", a1[0].ID, a1[1].ID, a2[0].ID, a2[1].ID)
	}
	tok, _ := a1.Sign(&Claims{Subject: "u1", IssuedAt: 1, Expiry: 2})
	if _, err := verify(t, tok, NewRing(a2, time.Now).JWKS()); err != nil {
		t.Errorf("another replica's JWKS doesn't verify: %v", err)
	}
	if _, err := FromSecrets(nil); err == nil {
		t.Error("no secret, yet keys")
	}
}

// Rotating the secrets ([new, old]) signs with the new key and publishes
// both; once the old secret is gone, its key stays published until every
// assertion it signed has expired.
func TestRotationKeepsOldAssertionsVerifiable(t *testing.T) {
	clk := testkit.NewClock(time.Unix(1_800_000_000, 0))
	oldKeys, _ := FromSecrets([][]byte{secretA})
	ring := NewRing(oldKeys, clk.Now)
	oldTok, _ := ring.Sign(&Claims{Subject: "u1", IssuedAt: 1, Expiry: 2})

	both, _ := FromSecrets([][]byte{secretB, secretA})
	ring.Set(both)
	newTok, _ := ring.Sign(&Claims{Subject: "u1", IssuedAt: 1, Expiry: 2})
	for name, tok := range map[string]string{"old": oldTok, "new": newTok} {
		if _, err := verify(t, tok, ring.JWKS()); err != nil {
			t.Errorf("%s assertion after the rotation: %v", name, err)
		}
	}

	onlyNew, _ := FromSecrets([][]byte{secretB})
	ring.Set(onlyNew)
	clk.Add(Lifetime - time.Second)
	if _, err := verify(t, oldTok, ring.JWKS()); err != nil {
		t.Errorf("the retired key left the JWKS before its assertions expired: %v", err)
	}
	clk.Add(time.Second)
	if _, err := verify(t, oldTok, ring.JWKS()); err == nil {
		t.Error("the retired key is still published after Lifetime")
	}
	if _, err := verify(t, newTok, ring.JWKS()); err != nil {
		t.Errorf("new assertion: %v", err)
	}
}

func TestKeysFromPEM(t *testing.T) {
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(k1)
	pk8, _ := x509.MarshalPKCS8PrivateKey(k2)
	data := append(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk8})...)
	keys, err := FromPEM(data)
	if err != nil || len(keys) != 2 {
		t.Fatalf("FromPEM: %v, %d keys", err, len(keys))
	}
	tok, _ := keys.Sign(&Claims{Subject: "u1", IssuedAt: 1, Expiry: 2})
	if _, err := verify(t, tok, NewRing(keys, time.Now).JWKS()); err != nil {
		t.Errorf("verify: %v", err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(p384)
	for name, bad := range map[string][]byte{
		"empty": nil, "not PEM": []byte("hello"),
		"P-384": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}),
		"RSA":   pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{1}}),
	} {
		if _, err := FromPEM(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Minting happens once per cached session every half Lifetime; still, it
// must stay cheap.
func BenchmarkSign(b *testing.B) {
	keys, _ := FromSecrets([][]byte{secretA})
	c := &Claims{Issuer: "https://app.example.com", Audience: []string{"default"}, Subject: "u1", Groups: []string{"admin"}, IssuedAt: 1, Expiry: 2}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := keys.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}
