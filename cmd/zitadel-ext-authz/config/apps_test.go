package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const twoAppsTOML = `
oidc_issuer_url = "https://acme.zitadel.cloud"
cookie_secret = "` + secret32 + `"
email_domains = ["*"]
allowed_groups = ["staff"]
client_secret = "shared-secret"

[[apps]]
name = "shop"
hosts = ["shop.example.com", "*.shop.example.com"]
client_id = "111@acme"
allowed_groups = ["buyers"]
pass_access_token = true

[[apps]]
name = "blog"
hosts = ["BLOG.example.com."]
oidc_issuer_url = "https://other.zitadel.cloud"
client_id = "222@other"
client_secret = "blog-secret"
cookie_name = "_blog"
`

func TestAppsInheritTheTopLevel(t *testing.T) {
	for name, body := range map[string]string{
		"c.toml": twoAppsTOML,
		"c.yaml": `
oidc_issuer_url: https://acme.zitadel.cloud
cookie_secret: "` + secret32 + `"
email_domains: ["*"]
allowed_groups: [staff]
client_secret: shared-secret
apps:
  - name: shop
    hosts: [shop.example.com, "*.shop.example.com"]
    client_id: 111@acme
    allowed_groups: [buyers]
    pass_access_token: true
  - name: blog
    hosts: BLOG.example.com.
    oidc_issuer_url: https://other.zitadel.cloud
    client_id: 222@other
    client_secret: blog-secret
    cookie_name: _blog
`,
	} {
		t.Run(name, func(t *testing.T) {
			c, warnings, err := Load([]string{"--config", write(t, name, body)}, env(nil))
			if err != nil {
				t.Fatal(err)
			}
			if c.HasDefaultApp() || len(c.AllApps()) != 2 {
				t.Fatalf("apps: default %v, %d apps", c.HasDefaultApp(), len(c.AllApps()))
			}
			shop, blog := c.Apps[0], c.Apps[1]
			if shop.Name != "shop" || !slices.Equal(shop.Hosts, []string{"shop.example.com", "*.shop.example.com"}) ||
				shop.OIDC.Issuer != "https://acme.zitadel.cloud" || shop.OIDC.ClientID != "111@acme" || shop.OIDC.ClientSecret != "shared-secret" ||
				!slices.Equal(shop.Authz.AllowedGroups, []string{"buyers"}) || !shop.Authz.PassAccessToken || shop.Cookie.Name != "_oauth2_proxy" {
				t.Errorf("shop: %+v %+v %+v", shop.OIDC, shop.Authz, shop.Cookie)
			}
			if blog.Name != "blog" || !slices.Equal(blog.Hosts, []string{"blog.example.com"}) ||
				blog.OIDC.Issuer != "https://other.zitadel.cloud" || blog.OIDC.ClientSecret != "blog-secret" ||
				!slices.Equal(blog.Authz.AllowedGroups, []string{"staff"}) || blog.Authz.PassAccessToken || blog.Cookie.Name != "_blog" {
				t.Errorf("blog: %+v %+v %+v", blog.OIDC, blog.Authz, blog.Cookie)
			}
			if len(warnings) != 0 {
				t.Errorf("warnings: %q", warnings)
			}
			if got := strings.Join(shop.MaskedApp(), "\n"); !strings.Contains(got, "client_secret = ****** (set)\n") || !strings.Contains(got, "client_id = 111@acme   # this app's") || strings.Contains(got, "shared-secret") {
				t.Errorf("shop masked:\n%s", got)
			}
		})
	}
}

func TestTheTopLevelIsTheDefaultAppWhenItHasAClient(t *testing.T) {
	c, _, err := Load([]string{"--config", write(t, "c.toml", minimalTOML+`
[[apps]]
name = "shop"
hosts = "shop.example.com"
client_id = "111@acme"
`)}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	all := c.AllApps()
	if !c.HasDefaultApp() || len(all) != 2 || all[0].Name != DefaultAppName || all[0].OIDC.ClientID != "1234@acme" || all[1].OIDC.ClientSecret != "s3cret" {
		t.Fatalf("apps: %+v", all)
	}
	// Without apps, nothing changes: the guide's file is one default app.
	c, _, err = Load([]string{"--config", write(t, "c.toml", minimalTOML)}, env(nil))
	if err != nil || len(c.AllApps()) != 1 || len(c.Apps) != 0 {
		t.Fatalf("single app: %v, %d", err, len(c.AllApps()))
	}
}

func TestAppsMistakesNameTheEntryAndKey(t *testing.T) {
	base := `
oidc_issuer_url = "https://acme.zitadel.cloud"
cookie_secret = "` + secret32 + `"
email_domains = ["*"]
client_secret = "s"
`
	for _, c := range []struct{ apps, want string }{
		{`[[apps]]
hosts = ["a.example.com"]
client_id = "1"`, "apps[1]: name is required"},
		{`[[apps]]
name = "Shop!"
client_id = "1"`, `apps[1]: name "Shop!"`},
		{`[[apps]]
name = "default"
client_id = "1"`, `is taken by the app of the top-level keys`},
		{`[[apps]]
name = "a"
hosts = ["x.example.com"]
client_id = "1"
[[apps]]
name = "b"
hosts = ["X.example.com"]
client_id = "2"`, `apps[b].hosts: host "x.example.com" is also claimed by apps[a]`},
		{`[[apps]]
name = "a"
client_id = "1"
[[apps]]
name = "a"
client_id = "2"`, `name "a" is used twice`},
		{`[[apps]]
name = "a"
client_id = "1"
grpc_address = "0.0.0.0:1"`, "apps[a].grpc_address: not a per-app key; set it at the top level"},
		{`[[apps]]
name = "a"
client_id = "1"
clientid = "x"`, "apps[a].clientid: unknown key"},
		{`[[apps]]
name = "a"
hosts = ["https://a.example.com/"]
client_id = "1"`, "is not a host name"},
		{`[[apps]]
name = "a"
hosts = ["a.example.com"]`, "apps[a].client_id: required"},
		{`[[apps]]
name = "a"
client_id = "1"
redirect_url = "::"`, "apps[a].redirect_url"},
		{`apps = "shop"`, "apps: want a list of tables"},
	} {
		_, _, err := Load([]string{"--config", write(t, "c.toml", base+c.apps)}, env(nil))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s\n got %v, want an error containing %q", c.apps, err, c.want)
		}
	}
}

func TestAppsDifferAndReloadTakesThem(t *testing.T) {
	load := func(body string) *Config {
		c, _, err := Load([]string{"--config", write(t, "c.toml", body)}, env(nil))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := load(twoAppsTOML), load(twoAppsTOML)
	if a.AppsDiffer(b) {
		t.Error("identical files differ")
	}
	c := load(strings.Replace(twoAppsTOML, `allowed_groups = ["buyers"]`, `allowed_groups = ["sellers"]`, 1))
	if !a.AppsDiffer(c) {
		t.Error("a changed app's allowed_groups made no difference")
	}
	d := load(strings.Replace(twoAppsTOML, `allowed_groups = ["staff"]`, `allowed_groups = ["all"]`, 1))
	if !a.AppsDiffer(d) { // blog inherits the top level's
		t.Error("a changed inherited key made no difference")
	}
	if restart := Reload(a, c, a.Changed(c)); len(restart) != 0 {
		t.Errorf("Reload: %v need a restart, want none", restart)
	}
	if !slices.Equal(a.Apps[0].Authz.AllowedGroups, []string{"sellers"}) || a.AppsDiffer(c) {
		t.Error("Reload did not take the apps")
	}
}

// README's "Many apps" example loads as it says: the default app and two
// entries, blog by host with its wildcard, wiki on another issuer.
func TestREADMEAppsExampleLoads(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "## Many apps on one server")
	_, rest, ok2 := strings.Cut(rest, "```toml\n")
	example, _, ok3 := strings.Cut(rest, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("README has no TOML example under \"Many apps on one server\"")
	}
	dir := t.TempDir()
	for _, name := range []string{"shop", "blog", "wiki"} {
		os.WriteFile(filepath.Join(dir, name), []byte(name+"-secret\n"), 0o600)
	}
	example = strings.ReplaceAll(example, "/run/secrets/", dir+"/")
	example = strings.Replace(example, `"CHANGE ME"`, `"`+secret32+`"`, 1)
	c, _, err := Load([]string{"--config", write(t, "apps.toml", example)}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	all := c.AllApps()
	if len(all) != 3 || all[1].Name != "blog" || all[2].Name != "wiki" || all[1].OIDC.ClientSecret != "blog-secret" ||
		all[2].OIDC.Issuer != "https://other-instance.zitadel.cloud" || all[2].Cookie.Name != "_wiki" || all[1].Cookie.Name != all[0].Cookie.Name {
		t.Fatalf("apps: %+v", all)
	}
}

// refresh_tokens asks for offline_access unless offline_access_scope is
// false (Keycloak gives refresh tokens without it).
func TestOfflineAccessScope(t *testing.T) {
	for _, tc := range []struct {
		extra string
		want  bool
	}{{"", true}, {"offline_access_scope = false\n", false}, {"refresh_tokens = false\n", false}} {
		c, _, err := Load([]string{"--config", write(t, "c.toml", minimalTOML+tc.extra)}, env(nil))
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Contains(c.OIDC.Scopes, "offline_access"); got != tc.want {
			t.Errorf("%q: offline_access requested %v, want %v (scopes %v)", tc.extra, got, tc.want, c.OIDC.Scopes)
		}
	}
}
