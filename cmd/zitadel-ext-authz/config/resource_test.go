package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
)

// resource_* become each app's authz.ProtectedResource: the issuers, the
// app's own scope by default, and an apps entry's keys over the top
// level's.
func TestProtectedResourceKeys(t *testing.T) {
	body := minimalTOML + `
skip_jwt_bearer_tokens = true
zitadel_organization_id = "42"
extra_jwt_issuers = ["https://z.example.com=api", "https://a.example.com=api"]

[[apps]]
name = "mcp"
hosts = ["mcp.example.com"]
client_id = "5678@acme"
resource_url = "https://mcp.example.com/mcp"
resource_name = "Our MCP server"
resource_scopes_supported = ["openid", "urn:zitadel:iam:org:project:id:zitadel:aud"]
resource_documentation = "https://docs.example.com/mcp"

[[apps]]
name = "quiet"
hosts = ["quiet.example.com"]
client_id = "9999@acme"
resource_scopes_supported = []
`
	c, _, err := Load([]string{"--config", write(t, "c.toml", body)}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	issuers := []string{"https://acme.zitadel.cloud", "https://a.example.com", "https://z.example.com"}
	want := map[string]authz.ProtectedResource{
		"default": {AuthorizationServers: issuers,
			ScopesSupported: []string{"openid", "email", "profile", "offline_access", "urn:zitadel:iam:org:id:42", "urn:zitadel:iam:user:resourceowner"}},
		"mcp": {URL: "https://mcp.example.com/mcp", AuthorizationServers: issuers, Name: "Our MCP server", Documentation: "https://docs.example.com/mcp",
			ScopesSupported: []string{"openid", "urn:zitadel:iam:org:project:id:zitadel:aud"}},
		"quiet": {AuthorizationServers: issuers},
	}
	for _, a := range c.AllApps() {
		if diff := cmp.Diff(want[a.Name], a.Authz.ProtectedResource); diff != "" {
			t.Errorf("app %s: ProtectedResource (-want +got):\n%s", a.Name, diff)
		}
	}
}

func TestProtectedResourceKeysRefuseMistakes(t *testing.T) {
	for key, value := range map[string]string{
		"resource_url":           `"/mcp"`,
		"resource_documentation": `"docs.example.com"`,
	} {
		_, _, err := Load([]string{"--config", write(t, "c.toml", minimalTOML+key+" = "+value+"\n")}, env(nil))
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%s = %s: %v, want an error naming %s", key, value, err, key)
		}
	}
	for _, bad := range []string{"https://app.example.com/mcp?x=1", "https://app.example.com/mcp#top", "ftp://app.example.com/"} {
		_, _, err := Load([]string{"--config", write(t, "c.toml", minimalTOML+`resource_url = "`+bad+`"`+"\n")}, env(nil))
		if err == nil || !strings.Contains(err.Error(), "resource_url") {
			t.Errorf("resource_url = %s: %v, want refused", bad, err)
		}
	}
}
