package config

import (
	"slices"
	"strings"
	"testing"
)

// rules reads as a table, compiles at load, and names its rules in lower
// case; allow_if and deny_if name defined rules; an apps entry's rules add
// to the top level's; the session keeps the claims the rules read.
func TestRulesLoad(t *testing.T) {
	body := minimalTOML + `allow_if = ["Owner_Or_Admin"]
deny_if = ["blocked"]

[rules]
owner_or_admin = '"admin" in user.roles || request.path.startsWith("/users/" + user.sub + "/")'
blocked = 'user.sub in ["123"]'
tenant = 'user.claims["urn:zitadel:iam:user:resourceowner:id"] == route.tenant'
`
	c, warnings, err := Load([]string{"--config", write(t, "c.toml", body)}, env(nil))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	for _, w := range warnings {
		if strings.Contains(w, "rules") {
			t.Errorf("warning about the table's keys: %s", w)
		}
	}
	if got := c.Authz.Rules.Names(); !slices.Equal(got, []string{"blocked", "owner_or_admin", "tenant"}) {
		t.Errorf("rules: %v", got)
	}
	if !slices.Equal(c.Authz.AllowIf, []string{"owner_or_admin"}) || !slices.Equal(c.Authz.DenyIf, []string{"blocked"}) {
		t.Errorf("allow_if %v, deny_if %v", c.Authz.AllowIf, c.Authz.DenyIf)
	}
	if !slices.Equal(c.OIDC.KeepClaims, []string{"urn:zitadel:iam:user:resourceowner:id"}) {
		t.Errorf("the session keeps %v", c.OIDC.KeepClaims)
	}
}

// A rule with a type error, an unknown field or a syntax error is refused
// at load, naming the key, the rule, its line and column; so is an
// allow_if or deny_if that names no rule.
func TestBadRulesAreRefused(t *testing.T) {
	for _, tc := range []struct{ setting, want string }{
		{"[rules]\nadmins = 'user.nmae == \"x\"'\n", "rule admins: line 1, column"},
		{"[rules]\nadmins = '\"admin\" in user.roles &&'\n", "rule admins: line 1, column"},
		{"[rules]\nadmins = 'user.sub'\n", "rule admins"},
		{"allow_if = [\"admins\"]\n", `allow_if: rule "admins" is not defined`},
		{"deny_if = [\"blocked\"]\n[rules]\nadmins = '\"admin\" in user.roles'\n", `deny_if: rule "blocked" is not defined under [rules] (defined: admins)`},
		{"rules = \"x\"\n", "config: rules: want a table"},
	} {
		_, _, err := Load([]string{"--config", write(t, "c.toml", minimalTOML+tc.setting)}, env(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want an error containing %q", tc.setting, err, tc.want)
		}
	}
}

// An apps entry's rules add to the top level's and replace one of the
// same name; its allow_if may name either.
func TestRulesPerApp(t *testing.T) {
	body := strings.Replace(twoAppsTOML, "[[apps]]", `[rules]
admins = '"admin" in user.roles'
editors = '"editor" in user.roles'

[[apps]]`, 1) + `allow_if = ["editors", "owners"]
[apps.rules]
editors = '"editor" in user.roles && user.email_verified'
owners = 'request.path.startsWith("/users/" + user.sub + "/")'
`
	c, _, err := Load([]string{"--config", write(t, "c.toml", body)}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	shop, blog := c.Apps[0], c.Apps[1]
	if got := shop.Authz.Rules.Names(); !slices.Equal(got, []string{"admins", "editors"}) {
		t.Errorf("shop's rules (the top level's): %v", got)
	}
	if got := blog.Authz.Rules.Names(); !slices.Equal(got, []string{"admins", "editors", "owners"}) {
		t.Errorf("blog's rules: %v", got)
	}
	if src := blog.Authz.Rules.Source("editors"); !strings.Contains(src, "email_verified") {
		t.Errorf("blog's editors is its own: %q", src)
	}
	if !slices.Equal(blog.Authz.AllowIf, []string{"editors", "owners"}) || len(shop.Authz.AllowIf) != 0 {
		t.Errorf("allow_if: shop %v, blog %v", shop.Authz.AllowIf, blog.Authz.AllowIf)
	}
}

// A changed rule is a changed value: a reload rebuilds the app with it
// (sessions kept); allow_if and deny_if apply in place.
func TestRulesReload(t *testing.T) {
	load := func(setting string) *Config {
		c, _, err := Load([]string{"--config", write(t, "c.toml", minimalTOML+setting)}, env(nil))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a := load("[rules]\nadmins = '\"admin\" in user.roles'\n")
	b := load("allow_if = [\"admins\"]\n[rules]\nadmins = '\"root\" in user.roles'\n")
	if got := a.Changed(b); !slices.Equal(got, []string{"rules", "allow_if"}) {
		t.Errorf("Changed: %v", got)
	}
	if !IsAppKey("rules") || !IsAppKey("allow_if") || !IsAppKey("deny_if") || !Reloadable("allow_if") {
		t.Error("rules, allow_if and deny_if are per app; allow_if applies in place")
	}
}
