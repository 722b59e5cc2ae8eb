package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// policyConfig is a configuration with rules at the top level and an app
// with its own defaults; the issuer is never contacted.
const policyConfig = `provider = "oidc"
oidc_issuer_url = "https://idp.example.com"
client_id = "web@example"
client_secret = "web-secret"
cookie_secret = "TTG2nDKakipoYsP1Gj00CcrS5ETnFIruu5E_ZPJo53k="
email_domains = ["*"]
skip_provider_button = true
pass_access_token = true
skip_jwt_bearer_tokens = true
skip_auth_routes = ["GET=^/public/"]

[rules]
owner_or_admin = '"admin" in user.roles || request.path.startsWith("/users/" + user.sub + "/")'
outsiders = '!user.email.endsWith("@example.com")'
readers = '"reader" in user.roles'
team_blue = 'request.query["team"] == "blue"'

[[apps]]
name = "shop"
hosts = ["shop.example.com"]
client_id = "shop@example"
client_secret = "shop-secret"
deny_if = ["outsiders"]
allow_if = ["readers"]
`

// runPolicy runs `check-policy --config <policyConfig> args…`.
func runPolicy(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(path, []byte(policyConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code = run(t.Context(), append([]string{"check-policy", "--config", path}, args...), func(string) string { return "" }, &out, &errOut)
	return code, out.String(), errOut.String()
}

// unsignedJWT is a JWT with claims and a signature nobody checks here.
func unsignedJWT(t *testing.T, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"RS256","kid":"k"}`)) + "." + enc(payload) + "." + enc([]byte("not-checked"))
}

// The final line of each kind of answer, and the exit code: 0 for an
// allow, 1 for anything else.
func TestCheckPolicyAnswers(t *testing.T) {
	alice := []string{"--user", "alice", "--email", "alice@example.com", "--role", "admin", "--org", "123"}
	bob := []string{"--user", "bob", "--email", "bob@example.com", "--role", "reader"}
	token := unsignedJWT(t, map[string]any{"sub": "svc", "email": "svc@example.com", "scope": "openid read", "urn:zitadel:iam:org:project:roles": map[string]any{"reader": map[string]any{"1": "x"}}})
	billingToken := unsignedJWT(t, map[string]any{"sub": "svc", "email": "svc@example.com", "aud": []any{"shop", "billing"}, "scope": "openid read", "urn:zitadel:iam:org:project:roles": map[string]any{"reader": map[string]any{"1": "x"}}})
	cases := []struct {
		name string
		args []string
		code int
		last string // the final line has it
	}{
		{"allowed by a route's rule", append([]string{"--url", "https://app.example.com/admin/", "--ext", "allow_if=owner_or_admin"}, alice...), 0,
			"allow (reason session), upstream headers: x-forwarded-email, x-forwarded-groups, x-forwarded-user, x-zitadel-ext-authz-jwt"},
		{"owner by path", append([]string{"--url", "https://app.example.com/users/bob/x", "--ext", "allow_if=owner_or_admin"}, bob...), 0, "allow (reason session)"},
		{"denied by allow_if", append([]string{"--url", "https://app.example.com/users/alice/x", "--ext", "allow_if=owner_or_admin"}, bob...), 1,
			"deny: 403, reason rule_denied, rule owner_or_admin"},
		{"deny_if before allow_if (the app's defaults)", []string{"--url", "https://shop.example.com/", "--user", "olga", "--email", "olga@other.org", "--role", "reader"}, 1,
			"deny: 403, reason rule_denied, rule outsiders"},
		{"the app's defaults allow", append([]string{"--url", "https://shop.example.com/"}, bob...), 0, "allow (reason session)"},
		{"unknown rule", append([]string{"--url", "https://app.example.com/", "--ext", "allow_if=owner_or_admin, nope"}, bob...), 1,
			"deny: 500, reason unknown_rule, rule nope"},
		{"rule error", append([]string{"--url", "https://app.example.com/", "--ext", "allow_if=team_blue"}, bob...), 1, "deny: 403, reason rule_error, rule team_blue"},
		{"query read", append([]string{"--url", "https://app.example.com/?team=blue", "--ext", "allow_if=team_blue"}, bob...), 0, "allow (reason session)"},
		{"skip_auth_routes", []string{"--url", "https://app.example.com/public/logo.png"}, 0, "allow (reason skip_auth_route)"},
		{"nobody, browser", []string{"--url", "https://app.example.com/"}, 1, "deny: 302, reason login_redirect (to the IdP's sign-in"},
		{"nobody, API", []string{"--url", "https://app.example.com/", "--api"}, 1, "deny: 401, reason no_session, www-authenticate: Bearer"},
		{"bearer token", []string{"--url", "https://shop.example.com/items", "--token", token}, 0,
			"allow (reason bearer_jwt), upstream headers: x-forwarded-access-token, x-forwarded-email, x-forwarded-groups, x-forwarded-user, x-zitadel-ext-authz-jwt"},
		{"bearer token refused by a rule", []string{"--url", "https://app.example.com/admin/", "--ext", "allow_if=owner_or_admin", "--token", token}, 1,
			`deny: 403, reason rule_denied, rule owner_or_admin, www-authenticate: Bearer error="insufficient_scope"`},
		// As a live Check: the route's audience, and the 401's pointer to
		// the protected-resource metadata (RFC 9728).
		{"a token without the route's audience", []string{"--url", "https://shop.example.com/items", "--ext", "audience=billing", "--token", token}, 1,
			`deny: 401, reason invalid_token, www-authenticate: Bearer error="invalid_token", error_description="This route needs a token for the audience billing", resource_metadata="https://shop.example.com/.well-known/oauth-protected-resource/items"`},
		{"a token with the route's audience", []string{"--url", "https://shop.example.com/items", "--ext", "audience=billing", "--token", billingToken}, 0, "allow (reason bearer_jwt)"},
		{"nobody, API, an app with bearer tokens", []string{"--url", "https://shop.example.com/items", "--api"}, 1,
			`deny: 401, reason no_session, www-authenticate: Bearer resource_metadata="https://shop.example.com/.well-known/oauth-protected-resource/items"`},
		{"route needs a group", append([]string{"--url", "https://app.example.com/", "--ext", "allowed_groups=admin"}, bob...), 1, "deny: 403, reason route_not_in_group"},
		{"step-up", append([]string{"--url", "https://app.example.com/", "--ext", "required_amr=mfa"}, bob...), 1,
			"reason step_up_redirect (back to the IdP for a sign-in that meets "},
		{"unknown app", []string{"--url", "https://app.example.com/", "--ext", "app=nope"}, 1, "deny: 500, reason unknown_app"},
		{"our endpoint", []string{"--url", "https://app.example.com/oauth2/callback"}, 1, "not the policy's: https://app.example.com/oauth2/callback is our own endpoint ("},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runPolicy(t, tc.args...)
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if last := lines[len(lines)-1]; code != tc.code || !strings.Contains(last, tc.last) {
				t.Fatalf("check-policy %s: exit %d, last line %q; want exit %d, %q\n%s%s", strings.Join(tc.args, " "), code, last, tc.code, tc.last, out, errOut)
			}
			if strings.Contains(out, token[len(token)-20:]) {
				t.Errorf("the output shows the token:\n%s", out)
			}
		})
	}
}

// The explanation names the app and why, the route's settings, and each
// rule that ran with its inputs and result; --explain=false prints only
// the final line.
func TestCheckPolicyExplains(t *testing.T) {
	_, out, _ := runPolicy(t, "--url", "https://shop.example.com/", "--user", "olga", "--email", "olga@other.org", "--role", "reader", "--ext", "csrf=on")
	for _, want := range []string{
		`app:      shop: its hosts include "shop.example.com"`,
		"route:    context_extensions csrf=on",
		"user:     olga via a session, claims from flags",
		"rules:    the app's defaults (the route names none): deny_if [outsiders], allow_if [readers]",
		"  deny_if outsiders = !user.email.endsWith(\"@example.com\")\n      user.email = \"olga@other.org\"\n    → true: denies",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "allow_if readers") {
		t.Errorf("allow_if ran after deny_if denied:\n%s", out)
	}
	_, out, _ = runPolicy(t, "--url", "https://shop.example.com/", "--explain=false")
	if n := strings.Count(out, "\n"); n != 1 {
		t.Errorf("--explain=false printed %d lines:\n%s", n, out)
	}
}

// --json is one object with the app, why, route, rules and decision.
func TestCheckPolicyJSON(t *testing.T) {
	token := unsignedJWT(t, map[string]any{"sub": "svc", "email": "svc@other.org"})
	code, out, _ := runPolicy(t, "--url", "https://shop.example.com/items?team=red", "--token", token, "--ext", "deny_if=outsiders", "--ext", "allow_if=team_blue", "--json")
	var got struct {
		App, Why string
		Route    map[string]string
		User     struct{ Sub, Via string }
		Rules    []struct {
			Rule, List, Source, Error string
			Inputs                    []struct{ Name, Value string }
			Result                    bool
		}
		Decision struct {
			Allow        bool
			Status       int
			Reason, Rule string
			Headers      map[string]string
		}
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not one JSON object (%v):\n%s", err, out)
	}
	if code != 1 || got.App != "shop" || got.Route["deny_if"] != "outsiders" || got.User.Sub != "svc" || got.User.Via != "bearer" {
		t.Errorf("exit %d, %+v", code, got)
	}
	if len(got.Rules) != 1 || got.Rules[0].Rule != "outsiders" || got.Rules[0].List != "deny_if" || !got.Rules[0].Result ||
		len(got.Rules[0].Inputs) != 1 || got.Rules[0].Inputs[0].Value != `"svc@other.org"` {
		t.Errorf("rules: %+v", got.Rules)
	}
	d := got.Decision
	if d.Allow || d.Status != 403 || d.Reason != "rule_denied" || d.Rule != "outsiders" || d.Headers["www-authenticate"] != `Bearer error="insufficient_scope"` {
		t.Errorf("decision: %+v", d)
	}
}

// A bad flag, an unreadable claims file, a token that isn't a JWT or a
// broken configuration exit 2 with a line naming the flag or key.
func TestCheckPolicyBadInput(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "claims.json")
	os.WriteFile(bad, []byte(`["not", "an", "object"]`), 0o600)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no url", nil, "--url: required"},
		{"relative url", []string{"--url", "/admin/"}, "--url"},
		{"unknown flag", []string{"--url", "https://a/", "--nope"}, "-nope"},
		{"opaque token", []string{"--url", "https://a/", "--token", "opaque-123"}, "--token: not a JWT"},
		{"token payload", []string{"--url", "https://a/", "--token", "a.b!.c"}, "--token: not a JWT"},
		{"missing claims file", []string{"--url", "https://a/", "--claims", "/nonexistent/claims.json"}, "--claims"},
		{"claims not an object", []string{"--url", "https://a/", "--claims", bad}, "--claims"},
		{"two users", []string{"--url", "https://a/", "--claims", bad, "--user", "x"}, "pass one of them"},
		{"email without user", []string{"--url", "https://a/", "--email", "a@b.c"}, "add --user SUB"},
		{"bad auth time", []string{"--url", "https://a/", "--user", "a", "--auth-time", "yesterday"}, "--auth-time"},
		{"bad ext", []string{"--url", "https://a/", "--ext", "allow_if"}, "--ext"},
		{"bad source", []string{"--url", "https://a/", "--source", "here"}, "--source"},
		{"bad config", []string{"--url", "https://a/", "--config", "/nonexistent/config.toml"}, "config"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runPolicy(t, tc.args...)
			if code != 2 || !strings.Contains(errOut, tc.want) || out != "" {
				t.Fatalf("exit %d, stderr %q, stdout %q; want exit 2 naming %s and no report", code, errOut, out, tc.want)
			}
		})
	}
}
