package config

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
)

// claim_headers reads as a table in each file format and as header=claim
// pairs from the environment; header names are case-insensitive (kept
// lower case) and sorted; oidcflow gets the same map.
func TestClaimHeadersForms(t *testing.T) {
	want := []authz.ClaimHeader{
		{Name: "x-roles", Claim: "urn:zitadel:iam:org:project:roles"},
		{Name: "x-tenant", Claim: "urn:zitadel:iam:user:resourceowner:id"},
		{Name: "x-user-locale", Claim: "locale"},
	}
	yamlBase := "oidc_issuer_url: https://acme.zitadel.cloud\nclient_id: 1234@acme\nclient_secret: s3cret\ncookie_secret: \"" + secret32 + "\"\nemail_domains: ['*']\n"
	jsonBase := `"oidc_issuer_url":"https://acme.zitadel.cloud","client_id":"1234@acme","client_secret":"s3cret","cookie_secret":"` + secret32 + `","email_domains":["*"]`
	for _, tc := range []struct {
		name, file, body string
		env              map[string]string
	}{
		{"toml", "c.toml", minimalTOML + `claim_headers = { "x-user-locale" = "locale", "x-tenant" = "urn:zitadel:iam:user:resourceowner:id", "X-Roles" = "urn:zitadel:iam:org:project:roles" }` + "\n", nil},
		{"toml table", "c.toml", minimalTOML + "[claim_headers]\n\"x-user-locale\" = \"locale\"\n\"x-tenant\" = \"urn:zitadel:iam:user:resourceowner:id\"\n\"x-roles\" = \"urn:zitadel:iam:org:project:roles\"\n", nil},
		{"yaml", "c.yaml", yamlBase + "claim_headers:\n  x-user-locale: locale\n  x-tenant: \"urn:zitadel:iam:user:resourceowner:id\"\n  x-roles: \"urn:zitadel:iam:org:project:roles\"\n", nil},
		{"json", "c.json", `{` + jsonBase + `,"claim_headers":{"x-user-locale":"locale","x-tenant":"urn:zitadel:iam:user:resourceowner:id","x-roles":"urn:zitadel:iam:org:project:roles"}}`, nil},
		{"env", "c.toml", minimalTOML, map[string]string{"ZITADEL_EXT_AUTHZ_CLAIM_HEADERS": "x-user-locale=locale, X-Tenant=urn:zitadel:iam:user:resourceowner:id,x-roles=urn:zitadel:iam:org:project:roles"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, warnings, err := Load([]string{"--config", write(t, tc.file, tc.body)}, env(tc.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !slices.Equal(c.Authz.ClaimHeaders, want) {
				t.Errorf("Authz.ClaimHeaders: got %v, want %v", c.Authz.ClaimHeaders, want)
			}
			wantMap := map[string]string{}
			for _, h := range want {
				wantMap[h.Name] = h.Claim
			}
			if !maps.Equal(c.OIDC.ClaimHeaders, wantMap) {
				t.Errorf("OIDC.ClaimHeaders: got %v, want %v", c.OIDC.ClaimHeaders, wantMap)
			}
			for _, w := range warnings {
				if strings.Contains(w, "claim_headers") {
					t.Errorf("warning about the table's keys: %s", w)
				}
			}
		})
	}
}

// A bad header name is refused at load with one line naming the key and
// the name; so is a bad id_token_header.
func TestBadUpstreamHeaderNamesAreRefused(t *testing.T) {
	for _, tc := range []struct{ setting, key, name string }{
		{`claim_headers = { "x-forwarded-user" = "sub" }`, "claim_headers", "x-forwarded-user"},
		{`claim_headers = { "authorization" = "sub" }`, "claim_headers", "authorization"},
		{`claim_headers = { "cookie" = "sub" }`, "claim_headers", "cookie"},
		{`claim_headers = { "connection" = "sub" }`, "claim_headers", "connection"},
		{`claim_headers = { "content-length" = "sub" }`, "claim_headers", "content-length"},
		{`claim_headers = { "host" = "sub" }`, "claim_headers", "host"},
		{`claim_headers = { "x-envoy-original-path" = "sub" }`, "claim_headers", "x-envoy-original-path"},
		{`claim_headers = { "x tenant" = "sub" }`, "claim_headers", "x tenant"},
		{`claim_headers = { "x_tenant" = "sub" }`, "claim_headers", "x_tenant"},
		{`claim_headers = { ":path" = "sub" }`, "claim_headers", ":path"},
		{`claim_headers = { "x-t\u00e9nant" = "sub" }`, "claim_headers", "x-ténant"},
		{`claim_headers = { "x-tenant" = "" }`, "claim_headers", "x-tenant"},
		{`claim_headers = { "x-tenant" = ["a"] }`, "claim_headers", "x-tenant"},
		{`claim_headers = ["x-tenant"]`, "claim_headers", "x-tenant"},
		{`id_token_header = "authorization"`, "id_token_header", "authorization"},
		{`id_token_header = "x-auth-request-access-token"`, "id_token_header", "x-auth-request-access-token"},
		{`id_token_header = "x-id-token"` + "\n" + `claim_headers = { "x-id-token" = "sub" }`, "id_token_header", "x-id-token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Load([]string{"--config", write(t, "c.toml", minimalTOML+tc.setting+"\n")}, env(nil))
			if err == nil || !strings.Contains(err.Error(), "config: "+tc.key+": ") || !strings.Contains(err.Error(), tc.name) || strings.Contains(err.Error(), "\n") {
				t.Errorf("Load(%s): got %v, want one line naming %s and %q", tc.setting, err, tc.key, tc.name)
			}
		})
	}
}

// Each app has its own claim_headers and id_token_header (an entry's
// table replaces the top level's); a bad name in an entry names it.
func TestClaimHeadersPerApp(t *testing.T) {
	body := strings.Replace(twoAppsTOML, "[[apps]]", `claim_headers = { "x-tenant" = "urn:zitadel:iam:user:resourceowner:id" }
id_token_header = "x-id-token"

[[apps]]`, 1) + `claim_headers = { "x-locale" = "locale", "x-roles" = "urn:zitadel:iam:org:project:roles" }
id_token_header = "x-blog-id-token"
`
	c, _, err := Load([]string{"--config", write(t, "c.toml", body)}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	shop, blog := c.Apps[0], c.Apps[1]
	if want := []authz.ClaimHeader{{Name: "x-tenant", Claim: "urn:zitadel:iam:user:resourceowner:id"}}; !slices.Equal(shop.Authz.ClaimHeaders, want) || shop.Authz.IDTokenHeader != "x-id-token" {
		t.Errorf("shop inherits the top level: %v %q", shop.Authz.ClaimHeaders, shop.Authz.IDTokenHeader)
	}
	if want := []authz.ClaimHeader{{Name: "x-locale", Claim: "locale"}, {Name: "x-roles", Claim: "urn:zitadel:iam:org:project:roles"}}; !slices.Equal(blog.Authz.ClaimHeaders, want) || blog.Authz.IDTokenHeader != "x-blog-id-token" {
		t.Errorf("blog's own: %v %q", blog.Authz.ClaimHeaders, blog.Authz.IDTokenHeader)
	}
	if blog.OIDC.ClaimHeaders["x-roles"] != "urn:zitadel:iam:org:project:roles" || len(blog.OIDC.ClaimHeaders) != 2 {
		t.Errorf("blog's provider reads: %v", blog.OIDC.ClaimHeaders)
	}
	bad := twoAppsTOML + `claim_headers = { "x-forwarded-email" = "email" }` + "\n"
	if _, _, err := Load([]string{"--config", write(t, "c.toml", bad)}, env(nil)); err == nil || !strings.Contains(err.Error(), "config: apps[blog].claim_headers: ") || !strings.Contains(err.Error(), "x-forwarded-email") {
		t.Errorf("bad name in an entry: %v", err)
	}
}

// claim_headers rebuilds the app (the Provider reads the claims);
// id_token_header applies in place. A changed table is a changed value.
func TestClaimHeadersReload(t *testing.T) {
	load := func(setting string) *Config {
		c, _, err := Load([]string{"--config", write(t, "c.toml", minimalTOML+setting)}, env(nil))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := load(`claim_headers = { "x-tenant" = "urn:zitadel:iam:user:resourceowner:id" }` + "\n")
	b := load(`claim_headers = { "x-tenant" = "urn:zitadel:iam:user:resourceowner:name" }` + "\n" + `id_token_header = "x-id-token"` + "\n")
	if got := a.Changed(b); !slices.Equal(got, []string{"claim_headers", "id_token_header"}) {
		t.Errorf("Changed: %v", got)
	}
	if Reloadable("claim_headers") || !Reloadable("id_token_header") || !IsAppKey("claim_headers") || !IsAppKey("id_token_header") {
		t.Error("claim_headers rebuilds its app, id_token_header applies in place; both per app")
	}
}

// A claim header or id_token_header may not take the identity
// assertion's header.
func TestUpstreamHeadersLeaveTheAssertionsName(t *testing.T) {
	for _, setting := range []string{
		`identity_jwt_header = "x-identity"` + "\n" + `claim_headers = { "x-identity" = "sub" }`,
		`identity_jwt_header = "x-identity"` + "\n" + `id_token_header = "x-identity"`,
	} {
		if _, _, err := Load([]string{"--config", write(t, "c.toml", minimalTOML+setting+"\n")}, env(nil)); err == nil || !strings.Contains(err.Error(), `"x-identity" is identity_jwt_header's header`) {
			t.Errorf("Load(%s): got %v, want refused", setting, err)
		}
	}
}
