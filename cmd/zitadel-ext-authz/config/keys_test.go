package config

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite README's key table from the table in keys.go")

const (
	tableBegin = "<!-- config keys: generated from cmd/zitadel-ext-authz/config/keys.go; go test ./cmd/zitadel-ext-authz/config -update -->\n"
	tableEnd   = "<!-- end of config keys -->\n"
)

// README's key table is generated from the table in keys.go, so every key
// is documented and every documented key exists; no key is listed twice.
func TestREADMEDocumentsEveryKey(t *testing.T) {
	checkGenerated(t, tableBegin, tableEnd, MarkdownTable(), "key table", "keys.go")
	seen := map[string]bool{}
	for _, k := range keys {
		if seen[k.name] {
			t.Errorf("key %s listed twice", k.name)
		}
		seen[k.name] = true
	}
}

// checkGenerated compares README's text between the markers with want,
// or writes it there with -update.
func checkGenerated(t *testing.T, begin, end, want, what, source string) {
	t.Helper()
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	a, b := strings.Index(s, begin), strings.Index(s, end)
	if a < 0 || b < a {
		t.Fatalf("README lacks the markers of the generated %s", what)
	}
	if *update {
		if err := os.WriteFile("../../../README.md", []byte(s[:a+len(begin)]+want+s[b:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if s[a+len(begin):b] != want {
		t.Errorf("README's %s is not the table in %s; run: go test ./cmd/zitadel-ext-authz/config -update", what, source)
	}
}

// Every default is of its kind, so reading an unset key never panics, and
// an empty configuration reads every key through its kind's accessor.
func TestDefaultsMatchTheirKinds(t *testing.T) {
	for _, k := range keys {
		var ok bool
		switch k.kind {
		case kString, kDuration:
			_, ok = k.def.(string)
			if _, under := k.def.(underPrefix); under {
				ok = k.kind == kString
			}
		case kBool:
			_, ok = k.def.(bool)
		case kList:
			_, ok = k.def.([]string)
		case kInt:
			_, ok = k.def.(int64)
		case kFloat:
			_, ok = k.def.(float64)
		}
		if !ok {
			t.Errorf("key %s: default %#v is not of its kind", k.name, k.def)
		}
	}
}

const (
	switchingBegin = "<!-- oauth2-proxy options: generated from cmd/zitadel-ext-authz/config/oauth2proxy.go; go test ./cmd/zitadel-ext-authz/config -update -->\n"
	switchingEnd   = "<!-- end of oauth2-proxy options -->\n"
)

// README's switching table lists every oauth2-proxy option as the table
// in oauth2proxy.go classifies it.
func TestREADMESwitchingTable(t *testing.T) {
	checkGenerated(t, switchingBegin, switchingEnd, SwitchingTable(), "oauth2-proxy options table", "oauth2proxy.go")
}

const (
	appKeysBegin = "<!-- per-app keys: generated from cmd/zitadel-ext-authz/config/keys.go; go test ./cmd/zitadel-ext-authz/config -update -->\n"
	appKeysEnd   = "<!-- end of per-app keys -->\n"
	reloadBegin  = "<!-- reloaded keys: generated from cmd/zitadel-ext-authz/config/keys.go; go test ./cmd/zitadel-ext-authz/config -update -->\n"
	reloadEnd    = "<!-- end of reloaded keys -->\n"
)

// README's list of per-app keys ("Many apps on one server") and of the
// keys a reload applies in place ("Reload without a restart") are the
// table's.
func TestREADMEKeyLists(t *testing.T) {
	checkGenerated(t, appKeysBegin, appKeysEnd, AppKeysMarkdown(), "list of per-app keys", "keys.go")
	checkGenerated(t, reloadBegin, reloadEnd, ReloadedKeysMarkdown(), "list of reloaded keys", "keys.go")
}

// An apps entry may set exactly the table's per-app keys: every other key
// of the table is refused as global, and each app's reload values and
// check-config lines cover the per-app keys.
func TestAppsTakeExactlyThePerAppKeys(t *testing.T) {
	base := `
oidc_issuer_url = "https://acme.zitadel.cloud"
cookie_secret = "` + secret32 + `"
email_domains = ["*"]
client_secret = "s"
[[apps]]
name = "a"
client_id = "1"
`
	for _, k := range keys {
		if IsAppKey(k.name) != k.perApp() {
			t.Errorf("IsAppKey(%s) = %v, the table says per-app %v", k.name, IsAppKey(k.name), k.perApp())
		}
		if k.name == "client_id" {
			continue // the entry sets it already
		}
		_, _, err := Load([]string{"--config", write(t, "c.toml", base+k.name+" = "+tomlValue(k.def)+"\n")}, env(nil))
		refused := err != nil && strings.Contains(err.Error(), "apps[a]."+k.name+": not a per-app key")
		if refused == k.perApp() {
			t.Errorf("apps entry setting %s: got %v, want refused %v", k.name, err, !k.perApp())
		}
	}
	c, _, err := Load([]string{"--config", write(t, "c.toml", base)}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := append([]string{"hosts"}, keyNames(key.perApp)...)
	if got := slices.Sorted(maps.Keys(c.Apps[0].AppValues())); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("AppValues keys: got %v, want hosts and the per-app keys %v", got, want)
	}
}

// tomlValue is a default written as TOML.
func tomlValue(def any) string {
	switch v := def.(type) {
	case string, underPrefix:
		return fmt.Sprintf("%q", fmt.Sprint(v))
	case []string:
		return "[]"
	}
	return fmt.Sprint(def)
}

// A reload applies what the table's reload column says: a global key by
// its function, every per-app key through the apps; the rest need a
// restart and keep their running values.
func TestReloadFollowsTheTable(t *testing.T) {
	run, next := &Config{Values: map[string]string{}}, &Config{Values: map[string]string{}}
	var all []string
	for _, k := range keys {
		all = append(all, k.name)
		run.Values[k.name], next.Values[k.name] = "old", "new"
	}
	restart := Reload(run, next, all)
	if want := keyNames(func(k key) bool { return k.reload.mode == needsRestart }); !slices.Equal(restart, want) {
		t.Errorf("Reload: need a restart %v, want the table's restart keys %v", restart, want)
	}
	for _, k := range keys {
		want := "new"
		if k.reload.mode == needsRestart {
			want = "old"
		}
		if got := run.Values[k.name]; got != want {
			t.Errorf("after Reload, %s = %s, want %s (table: %s)", k.name, got, want, k.reload.text())
		}
		inPlace := k.reload.mode == appliedLive || k.reload.mode == appPolicyKey
		if Reloadable(k.name) != inPlace {
			t.Errorf("Reloadable(%s) = %v, the table says %s", k.name, Reloadable(k.name), k.reload.text())
		}
		if (k.reload.apply != nil) != (k.reload.mode == appliedLive) {
			t.Errorf("key %s: an apply function is for global keys a reload applies, and only for them", k.name)
		}
	}
}

// check-config prints Masked (every key, in table order, secrets masked)
// and each app's MaskedApp (hosts and the per-app keys, its own marked):
// the table's keys and secret column, nothing else.
func TestCheckConfigLinesFollowTheTable(t *testing.T) {
	c := &Config{Values: map[string]string{}}
	for _, k := range keys {
		c.Values[k.name] = "v"
	}
	line := func(k key) string {
		if k.secret {
			return k.name + " = ****** (set)"
		}
		return k.name + " = v"
	}
	var want []string
	for _, k := range keys {
		want = append(want, line(k))
	}
	if got := c.Masked(); !slices.Equal(got, want) {
		t.Errorf("Masked:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	app := &App{Name: "a", Hosts: []string{"a.example.com"}, Own: []string{"client_id"}, Config: c}
	want = []string{"hosts = [a.example.com]"}
	for _, k := range keys {
		switch {
		case k.name == "client_id":
			want = append(want, line(k)+"   # this app's")
		case k.perApp():
			want = append(want, line(k))
		}
	}
	if got := app.MaskedApp(); !slices.Equal(got, want) {
		t.Errorf("MaskedApp:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// redirect_url's default is the callback under proxy_prefix, wherever
// proxy_prefix is set: one rule, in the config, for Authz and for
// check-config's value.
func TestRedirectURLFollowsProxyPrefix(t *testing.T) {
	c, _, err := Load([]string{"--config", write(t, "c.toml", minimalTOML+`proxy_prefix = "/auth"
[[apps]]
name = "a"
client_id = "1"
proxy_prefix = "/sso"
[[apps]]
name = "b"
client_id = "2"
redirect_url = "https://b.example.com/cb"
`)}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		app  *App
		want string
	}{{c.AllApps()[0], "/auth/callback"}, {c.Apps[0], "/sso/callback"}, {c.Apps[1], "https://b.example.com/cb"}} {
		if got, val := tc.app.Authz.RedirectURL, tc.app.Values["redirect_url"]; got != tc.want || val != tc.want {
			t.Errorf("app %s: RedirectURL %q, check-config's value %q, want %q", tc.app.Name, got, val, tc.want)
		}
	}
}
