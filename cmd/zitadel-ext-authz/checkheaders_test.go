package main

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/config"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/envoy"
)

// headersConfig reads a claim header and, by rule, x-team; more is
// appended (TOML).
func headersConfig(t *testing.T, more string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.toml")
	body := `provider = "oidc"
oidc_issuer_url = "https://acme.zitadel.cloud"
client_id = "1234@acme"
client_secret = "s3cret"
cookie_secret = "0123456789abcdef0123456789abcdef"
email_domains = ["*"]
claim_headers = { x-tenant = "urn:zitadel:iam:user:resourceowner:id" }
` + more
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// check-envoy holds every header list to what the configuration reads:
// each header left out is an ERROR with why and the fix; a rule that may
// read any header refuses every list; without --config, the default
// configuration's headers.
func TestCheckEnvoyHeaderLists(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, body []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, body, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	policy, err := os.ReadFile("../../envoy/gateway/security-policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sp := write("security-policy.yaml", policy)
	narrow := write("narrow.yaml", bytes.Replace(envoy.Config, []byte("- exact: cookie\n"), []byte("- exact: Cookie\n"), 1))
	team := headersConfig(t, "[rules]\nteam = 'request.headers[\"x-team\"] == \"blue\"'\n")
	anyHeader := headersConfig(t, "[rules]\nany = 'request.headers.exists(k, k == \"x\")'\n")
	wide := write("wide.yaml", []byte(strings.Replace(string(policy), "    - x-zitadel-ext-authz-jwt\n", "    - x-zitadel-ext-authz-jwt\n    - x-tenant\n    - x-team\n", 1)))
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  []string
	}{
		{"the shipped policy, no --config", []string{sp}, 0, []string{"no --config", "1 header list(s), none leaves out a header Check reads"}},
		{"a capitalised name", []string{narrow}, 1, []string{"ERROR: allowed_headers leaves out cookie, which Check reads: the session and login-state cookies",
			"fix: add `- exact: cookie` to its patterns", `its "exact: Cookie" never matches`}},
		{"a configuration's own headers", []string{"--config", team, sp}, 1, []string{
			"ERROR: headersToExtAuth leaves out x-tenant, which Check reads: identity header: a client's copy is removed, and Check removes only what it is sent (claim_headers); fix: add x-tenant to headersToExtAuth",
			"ERROR: headersToExtAuth leaves out x-team, which Check reads: read by rule team",
			"2 header(s) Check reads left out of 1 list(s)"}},
		{"the list a configuration needs", []string{"--config", team, wide}, 0, nil},
		{"a rule that may read any header", []string{"--config", anyHeader, wide}, 1, []string{
			"ERROR: headersToExtAuth narrows the headers sent to Check, but rule any reads request.headers by a key computed at run time", "fix: remove headersToExtAuth"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := checkEnvoy(tc.args, func(string) string { return "" }, strings.NewReader(""), &stdout, &stderr)
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

// check-config prints each header with why; start-up logs one line with
// the names, and a warning when a rule may read any header.
func TestRequestHeadersSaid(t *testing.T) {
	cfg, _, err := config.Load([]string{"--config", headersConfig(t, "[rules]\nany = 'size(request.headers) < 9'\n")}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	printRequestHeaders(cfg, &out)
	for _, want := range []string{"# request headers Check reads", "\ncookie      ", "\nx-tenant    ", "(claim_headers)", "\n*           "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("check-config's list lacks %q:\n%s", want, out.String())
		}
	}
	var logs bytes.Buffer
	logRequestHeaders(slog.New(slog.NewJSONHandler(&logs, nil)), cfg)
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	var first struct {
		Msg     string
		Headers []string
	}
	if len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &first) != nil || !strings.HasPrefix(first.Msg, "request headers Check reads") ||
		first.Headers[0] != "cookie" || !strings.Contains(lines[1], `"level":"WARN"`) {
		t.Errorf("start-up lines:\n%s", logs.String())
	}
}
