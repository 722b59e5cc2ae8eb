package oidcflow

import (
	"encoding/json"
	"maps"
	"strings"
	"testing"
)

// zitadelClaims is an ID token's claims as ZITADEL shapes them (zitadel.md
// §1.3), with a few more a user might want upstream.
const zitadelClaims = `{
  "sub": "u1",
  "locale": "de-CH",
  "urn:zitadel:iam:user:resourceowner:id": "org-1",
  "urn:zitadel:iam:org:project:roles": {"admin": {"org-1": "acme.example"}, "reader": {"org-1": "acme.example", "org-2": "b.example"}},
  "urn:zitadel:iam:org:project:123:roles": [{"auditor": {"org-1": "acme.example"}}],
  "urn:zitadel:iam:user:metadata": {"team.lead": "YWxpY2U=", "cost": "NDI="},
  "teams": ["blue", "red,green", "50%"],
  "seats": 3, "big": 12345678901234567890, "ratio": 0.25, "admin": false,
  "address": {"country": "CH", "locality": "Zürich & <Bern>"},
  "nothing": null, "empty": "", "emptylist": []
}`

// Each claim shape becomes the value a user would expect in the header.
func TestClaimHeaderValues(t *testing.T) {
	var claims map[string]any
	if err := json.Unmarshal([]byte(zitadelClaims), &claims); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path, want string }{
		{"string", "locale", "de-CH"},
		{"a ZITADEL claim name with colons, whole", "urn:zitadel:iam:user:resourceowner:id", "org-1"},
		{"the project's role map: its role keys", "urn:zitadel:iam:org:project:roles", "admin,reader"},
		{"a per-project role claim wrapped in a list", "urn:zitadel:iam:org:project:123:roles", "auditor"},
		{"a role's organizations are an object", "urn:zitadel:iam:org:project:roles.reader", `{"org-1":"acme.example","org-2":"b.example"}`},
		{"a key with a dot inside a ZITADEL claim", "urn:zitadel:iam:user:metadata.team.lead", "YWxpY2U="},
		{"nested path", "address.country", "CH"},
		{"an array, commas and percent escaped", "teams", "blue,red%2Cgreen,50%25"},
		{"an integer", "seats", "3"},
		{"a large number", "big", "12345678901234567000"},
		{"a fraction", "ratio", "0.25"},
		{"a boolean", "admin", "false"},
		{"an object as JSON, unescaped HTML", "address", `{"country":"CH","locality":"Zürich & <Bern>"}`},
		{"missing", "nope", ""},
		{"missing nested", "address.street", ""},
		{"null", "nothing", ""},
		{"empty string", "empty", ""},
		{"empty list", "emptylist", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, _ := claimHeaderValue(tc.path, claimAt(claims, tc.path)); got != tc.want {
				t.Errorf("claimHeaderValue(%s): got %q, want %q", tc.path, got, tc.want)
			}
		})
	}
}

// The Provider computes the configured claims' values once, by claim
// path; a missing claim has no entry, nothing unconfigured is kept.
func TestIdentityClaimValues(t *testing.T) {
	p, err := New(Config{Issuer: "https://idp", ClientID: "c", ClaimHeaders: map[string]string{
		"x-tenant": "urn:zitadel:iam:user:resourceowner:id", "x-org": "urn:zitadel:iam:user:resourceowner:id",
		"x-roles": "urn:zitadel:iam:org:project:roles", "x-teams": "teams", "x-missing": "department",
	}})
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal([]byte(zitadelClaims), &claims); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"urn:zitadel:iam:user:resourceowner:id": "org-1",
		"urn:zitadel:iam:org:project:roles":     "admin,reader",
		"teams":                                 "blue,red%2Cgreen,50%25",
	}
	if got := p.IdentityFromClaims(claims).ClaimValues; !maps.Equal(got, want) {
		t.Errorf("ClaimValues: got %v, want %v", got, want)
	}
	none, _ := New(Config{Issuer: "https://idp", ClientID: "c"})
	if got := none.IdentityFromClaims(claims).ClaimValues; got != nil {
		t.Errorf("no claim_headers: got %v, want nil", got)
	}
}

// Claim values are header-safe and bounded: control characters dropped, a
// long string cut at a character boundary, a long list at an entry, and an
// object whose JSON is too long left out rather than cut.
func TestClaimHeaderValuesAreSafe(t *testing.T) {
	long := strings.Repeat("é", maxClaimHeaderBytes) // 2 bytes each
	var list []any
	for range 1000 {
		list = append(list, "group-name")
	}
	big := map[string]any{"k": strings.Repeat("x", maxClaimHeaderBytes)}
	for _, tc := range []struct {
		name string
		v    any
		ok   func(string) bool
		fits bool
	}{
		{"CR LF NUL DEL dropped", "a\r\nx-admin: 1\x00\x7f", func(s string) bool { return s == "ax-admin: 1" }, true},
		{"control characters in a list", []any{"a\nb", "c"}, func(s string) bool { return s == "ab,c" }, true},
		{"JSON escapes them", map[string]any{"a": "b\r\nc"}, func(s string) bool { return s == `{"a":"b\r\nc"}` }, true},
		{"invalid UTF-8 dropped", "ok\xff", func(s string) bool { return s == "ok" }, true},
		{"long string cut at a character", long, func(s string) bool {
			return len(s) == maxClaimHeaderBytes && strings.Trim(s, "é") == ""
		}, true},
		{"long list cut at an entry", list, func(s string) bool {
			return len(s) <= maxClaimHeaderBytes && len(s) > maxClaimHeaderBytes-20 && strings.HasSuffix(s, ",group-name")
		}, true},
		{"oversized object left out", big, func(s string) bool { return s == "" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, fits := claimHeaderValue("c", tc.v)
			if !tc.ok(got) || fits != tc.fits {
				t.Errorf("claimHeaderValue: got %q (%d bytes, fits %v)", got, len(got), fits)
			}
		})
	}
}

// A claim path into a hostile claim set costs a bounded number of
// lookups, whatever the nesting.
func TestClaimPathIsBounded(t *testing.T) {
	var m any = "leaf"
	for range 200 {
		m = map[string]any{"a": m, "a.a": m}
	}
	path := strings.TrimSuffix(strings.Repeat("a.", 200), ".") + ".missing"
	if v := claimAt(m.(map[string]any), path); v != nil {
		t.Errorf("claimAt: got %v, want nil", v)
	}
}
