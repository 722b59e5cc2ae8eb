package oidcflow

import (
	"strings"
	"testing"
)

// CR/LF and other control characters in claims never reach a header: they
// are removed when the claims are read, once per login or token.
func TestClaimsAreHeaderSafe(t *testing.T) {
	p, err := New(Config{Issuer: "https://idp.example", ClientID: "c"})
	if err != nil {
		t.Fatal(err)
	}
	id := p.IdentityFromClaims(map[string]any{
		"sub":                               "id\r\n1",
		"email":                             "a@example.com\r\nx-admin: true",
		"preferred_username":                "al\x00ice\x7f",
		"groups":                            []any{"ops\nx-evil: 1"},
		"urn:zitadel:iam:org:project:roles": map[string]any{"adm\rin": map[string]any{}},
	})
	for _, v := range append([]string{id.Subject, id.User, id.Email, id.PreferredUsername}, id.Groups...) {
		if strings.ContainsAny(v, "\r\n\x00\x7f") {
			t.Fatalf("identity value %q carries control characters", v)
		}
	}
	if id.Email != "a@example.comx-admin: true" || id.User != "id1" {
		t.Fatalf("cleaned identity: %+v", id)
	}
	if long := p.IdentityFromClaims(map[string]any{"sub": "s", "email": strings.Repeat("e", 10000)}); len(long.Email) != maxClaimBytes {
		t.Fatalf("overlong claim: %d bytes", len(long.Email))
	}
	for tok, want := range map[string]bool{"eyJhbGciOi.abc.d-_": true, "": true, "a b": false, "a\r\nb": false, "ä": false} {
		if tokenSafe(tok) != want {
			t.Errorf("tokenSafe(%q) = %v", tok, !want)
		}
	}
}

// ZITADEL's organization claims, role grants per organization and how the
// user signed in are read from a claim set.
func TestIdentityOrganizationAndSignIn(t *testing.T) {
	p, err := New(Config{Issuer: "https://idp", ClientID: "c"})
	if err != nil {
		t.Fatal(err)
	}
	id := p.IdentityFromClaims(map[string]any{
		"sub": "u1", OrgIDClaim: "org-1", OrgDomainClaim: "acme.example",
		"urn:zitadel:iam:org:project:roles": map[string]any{"admin": map[string]any{"org-1": "acme.example", "org-2": "other.example"}, "reader": map[string]any{"org-2": "other.example"}},
		"auth_time":                         float64(1_800_000_000), "amr": []any{"pwd", "mfa", "otp"},
	})
	if id.OrgID != "org-1" || id.OrgDomain != "acme.example" || id.AuthTime.Unix() != 1_800_000_000 || strings.Join(id.AMR, ",") != "pwd,mfa,otp" {
		t.Errorf("identity: %+v", id)
	}
	if got := strings.Join(id.RoleGrants, ","); got != "admin@org-1,admin@org-2,reader@org-2" {
		t.Errorf("role grants: %s", got)
	}
	if got := p.IdentityFromClaims(map[string]any{"sub": "u1", "auth_time": "yesterday", "amr": 5}); !got.AuthTime.IsZero() || got.AMR != nil {
		t.Errorf("malformed auth_time/amr must read as absent: %+v", got)
	}
}

// Claim settings take dotted paths into nested objects (Hydra's ext,
// Keycloak's realm_access); a claim whose name has dots wins over a path.
func TestDottedClaimPaths(t *testing.T) {
	p, err := New(Config{Issuer: "https://idp", ClientID: "c", GroupsClaim: "ext.groups", EmailClaim: "ext.email", UserIDClaim: "ext.user.name"})
	if err != nil {
		t.Fatal(err)
	}
	id := p.IdentityFromClaims(map[string]any{
		"sub": "u1",
		"ext": map[string]any{"groups": []any{"admins", "ops"}, "email": "u1@example.com", "user": map[string]any{"name": "uno"}},
	})
	if strings.Join(id.Groups, ",") != "admins,ops" || id.Email != "u1@example.com" || id.User != "uno" {
		t.Errorf("dotted paths: %+v", id)
	}
	kc, _ := New(Config{Issuer: "https://idp", ClientID: "c", GroupsClaim: "realm_access.roles"})
	if got := kc.IdentityFromClaims(map[string]any{"sub": "u", "realm_access": map[string]any{"roles": []any{"reader"}}}).Groups; strings.Join(got, ",") != "reader" {
		t.Errorf("Keycloak realm roles: %v", got)
	}
	literal, _ := New(Config{Issuer: "https://idp", ClientID: "c", GroupsClaim: "ext.groups"})
	if got := literal.IdentityFromClaims(map[string]any{"sub": "u", "ext.groups": []any{"flat"}, "ext": map[string]any{"groups": []any{"nested"}}}).Groups; strings.Join(got, ",") != "flat" {
		t.Errorf("a claim named with dots: %v", got)
	}
}
