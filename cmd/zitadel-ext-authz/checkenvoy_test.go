package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/envoy"
)

// check-envoy finds a typo in a broken copy of envoy.yaml (exit 1, naming
// the file, the route and the key it means), passes the shipped files
// (exit 0), and with --config checks the rules a route names and lets
// ignored_route_keys be.
func TestCheckEnvoy(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	shipped := write("envoy.yaml", string(envoy.Config))
	broken := write("broken.yaml", strings.Replace(string(envoy.Config), "allowed_groups:", "allowed_group:", 1))
	n := 0
	route := func(ext string) string {
		n++
		return write(fmt.Sprintf("route%d.yaml", n), "virtual_hosts:\n- name: app\n  routes:\n  - match: {prefix: /x/}\n    typed_per_filter_config:\n      envoy.filters.http.ext_authz:\n        check_settings:\n          context_extensions: {"+ext+"}\n")
	}
	cfg := write("c.toml", `provider = "oidc"
oidc_issuer_url = "https://acme.zitadel.cloud"
client_id = "1234@acme"
client_secret = "s3cret"
cookie_secret = "0123456789abcdef0123456789abcdef"
email_domains = ["*"]
ignored_route_keys = ["x-team"]
[rules]
admins = '"admin" in user.roles'
`)
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		code  int
		out   []string
	}{
		{"the shipped file", []string{shipped}, "", 0, []string{"6 route setting(s), every key known and readable"}},
		{"a typo", []string{"--envoy", broken}, "", 1, []string{`routes[prefix /admin/]`, `unknown key "allowed_group" (did you mean allowed_groups?)`}},
		{"from stdin", []string{"-"}, strings.Replace(string(envoy.Config), "max_age:", "max_agee:", 1), 1, []string{`unknown key "max_agee" (did you mean max_age?)`}},
		{"a bad value", []string{route(`max_age: "-1"`)}, "", 1, []string{`max_age: "-1": want a whole number`}},
		{"a rule the configuration lacks", []string{"--config", cfg, route(`allow_if: "admins,owners"`)}, "", 1, []string{`allow_if: rule "owners" is not defined`}},
		{"an ignored key and a defined rule", []string{"--config", cfg, route(`allow_if: "admins", x-team: "blue"`)}, "", 0, nil},
		{"an ignored key without the configuration", []string{route(`x-team: "blue"`)}, "", 1, []string{`unknown key "x-team"`}},
		{"an app the configuration lacks", []string{"--config", cfg, route(`app: "blog"`)}, "", 1, []string{`"blog" is no app`}},
		{"no file", nil, "", 2, nil},
		{"a missing file", []string{filepath.Join(dir, "nope.yaml")}, "", 2, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := checkEnvoy(tc.args, func(string) string { return "" }, strings.NewReader(tc.stdin), &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, stdout.String(), stderr.String())
			}
			for _, want := range tc.out {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, stdout.String())
				}
			}
		})
	}
}
