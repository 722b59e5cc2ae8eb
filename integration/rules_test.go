package integration_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/envoy"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
)

// Named CEL rules end to end: the routes of the real Envoy name them in
// context_extensions (allow_if, deny_if), the app's allow_if and deny_if
// apply where a route names none, and every refusal names its rule to the
// browser, the API caller, the log, the metrics and Envoy's metadata.

// testRules are the [rules] of the rules tests.
func testRules() map[string]any {
	return map[string]any{
		"owner_or_admin": `"admin" in user.roles || request.path.startsWith("/users/" + user.sub + "/")`,
		"readers":        `"reader" in user.roles`,
		"everyone":       `user.sub != ""`,
		// A claim the session keeps because a rule reads it.
		"blocked": `"account_status" in user.claims && user.claims.account_status == "blocked"`,
		// A missing query parameter is a missing key: a run-time error.
		"needs_id": `request.query.id == "42"`,
	}
}

// mallory is a user without roles whose account_status claim says blocked.
var mallory = devidp.User{ID: "user-mallory", Username: "mallory", Password: "mallory-password", Email: "mallory@example.com",
	Name: "Mallory Blocked", Claims: map[string]any{"account_status": "blocked"}}

// ruleRoute is one more route of the default app's virtual host, to the
// echo upstream, with these context_extensions.
type ruleRoute struct {
	prefix string
	ext    map[string]string
}

// rulesEnvoyAnchor is the shipped catch-all route of the default app's
// virtual host; the rules routes go before it.
const rulesEnvoyAnchor = "              # Everything else, including /oauth2/*, is checked.\n"

// accessLogApp is the end of the shipped access log format, after which
// the rules tests log the metadata's rule too.
const accessLogApp = "app=%DYNAMIC_METADATA(envoy.filters.http.ext_authz:app)%"

// withRuleRoutes is the shipped envoy.yaml with routes before its
// catch-all route and the dynamic metadata's rule in the access log.
func withRuleRoutes(t *testing.T, routes ...ruleRoute) []byte {
	t.Helper()
	cfg := string(envoy.Config)
	if strings.Count(cfg, rulesEnvoyAnchor) != 1 || strings.Count(cfg, accessLogApp) != 1 {
		t.Fatal("test setup: envoy.yaml lacks the catch-all route or the access log's app field")
	}
	var b strings.Builder
	for _, r := range routes {
		b.WriteString("              - match: { prefix: " + strconv.Quote(r.prefix) + " }\n" +
			"                route: { cluster: echo }\n" +
			"                typed_per_filter_config:\n" +
			"                  envoy.filters.http.ext_authz:\n" +
			"                    \"@type\": type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute\n" +
			"                    check_settings:\n" +
			"                      context_extensions:\n")
		for _, k := range slices.Sorted(maps.Keys(r.ext)) {
			b.WriteString("                        " + k + ": " + strconv.Quote(r.ext[k]) + "\n")
		}
	}
	cfg = strings.Replace(cfg, rulesEnvoyAnchor, b.String()+rulesEnvoyAnchor, 1)
	cfg = strings.Replace(cfg, accessLogApp, accessLogApp+" rule=%DYNAMIC_METADATA(envoy.filters.http.ext_authz:rule)%", 1)
	return []byte(cfg)
}

// rulesBearerKeys accept the dev IdP's JWT access tokens of jwtClient.
func rulesBearerKeys() map[string]any {
	return map[string]any{"skip_jwt_bearer_tokens": true, "extra_jwt_audiences": []string{jwtClient.ID}}
}

// rulesStack is the stack behind the real Envoy with rules routes, the
// JWT access token client and the default users plus mallory.
func rulesStack(t *testing.T, config map[string]any, routes ...ruleRoute) *stack {
	t.Helper()
	cfg := rulesBearerKeys()
	maps.Copy(cfg, config)
	return startStack(t, stackOptions{
		config:  cfg,
		users:   append(devidp.DefaultUsers(), mallory),
		clients: []devidp.Client{devidp.DefaultClient(), jwtClient},
		envoy:   withRuleRoutes(t, routes...),
		front:   realEnvoy, // the emulator reads the shipped routes, not these
	})
}

// upstreamRequests is how many requests Envoy sent to the echo upstream.
func upstreamRequests(t *testing.T, st *stack) int64 {
	t.Helper()
	n, err := st.Front.envoy.Stat("cluster.echo.upstream_rq_total")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// refusedBy sends one request the rules must refuse: the answer has
// status and never reached the upstream.
func refusedBy(t *testing.T, st *stack, what string, status int, send func() *response) *response {
	t.Helper()
	before := upstreamRequests(t, st)
	r := send()
	if r.StatusCode != status {
		t.Errorf("%s: got %s, want %d", what, describe(r), status)
	}
	if after := upstreamRequests(t, st); after != before {
		t.Errorf("%s: the upstream saw the refused request (echo requests %d → %d)", what, before, after)
	}
	return r
}

// rulePage checks a browser's answer: an HTML page naming the rule.
func rulePage(t *testing.T, what string, r *response, rule string) {
	t.Helper()
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") || !strings.Contains(r.Body, "rule "+rule) {
		t.Errorf("%s: got %s, want an HTML page naming the rule %s", what, describe(r), rule)
	}
}

// ruleJSON checks an API caller's answer: the JSON body with error and
// rule, and for a bearer token RFC 6750's insufficient_scope challenge.
func ruleJSON(t *testing.T, what string, r *response, reason, rule string, bearer bool) {
	t.Helper()
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Rule        string `json:"rule"`
	}
	if err := json.Unmarshal([]byte(r.Body), &body); err != nil || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		t.Errorf("%s: got %s, want a JSON body (%v)", what, describe(r), err)
		return
	}
	if body.Error != reason || body.Rule != rule || !strings.Contains(body.Description, rule) {
		t.Errorf("%s: body %+v, want error %q, rule %q and a description naming it", what, body, reason, rule)
	}
	challenge := r.Header.Get("Www-Authenticate")
	if bearer && challenge != `Bearer error="insufficient_scope"` {
		t.Errorf("%s: www-authenticate %q, want Bearer error=\"insufficient_scope\"", what, challenge)
	}
	if !bearer && challenge != "" {
		t.Errorf("%s: www-authenticate %q on a session's answer", what, challenge)
	}
}

// logRecord is the first JSON log line of the server with every field of
// want, or nil.
func logRecord(s *server, want map[string]string) map[string]any {
	for _, line := range strings.Split(s.Logs(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		match := true
		for k, v := range want {
			if got, _ := rec[k].(string); got != v {
				match = false
				break
			}
		}
		if match {
			return rec
		}
	}
	return nil
}

// Sessions and bearer tokens alike: allow_if (every rule), deny_if (first),
// the app's defaults, an undefined rule, a rule that fails at run time.
func TestRulesThroughEnvoy(t *testing.T) {
	st := rulesStack(t, map[string]any{"rules": testRules(), "allow_if": []string{"readers"}, "deny_if": []string{"blocked"}},
		ruleRoute{"/users/", map[string]string{"allow_if": "everyone,owner_or_admin"}},
		ruleRoute{"/team/", map[string]string{"allow_if": "everyone"}},
		ruleRoute{"/guarded/", map[string]string{"deny_if": "blocked", "allow_if": "everyone"}},
		ruleRoute{"/lookup/", map[string]string{"allow_if": "needs_id"}},
		ruleRoute{"/undefined/", map[string]string{"allow_if": "everyone,no_such_rule"}},
	)
	users := map[string]*browser{}
	tokens := map[string]string{}
	for _, name := range []string{"alice", "bob", "eve", "mallory"} {
		b := newBrowser(t, name, name+"-password")
		// /team/ lets every signed-in user in: its allow_if replaces the
		// app's allow_if and deny_if.
		if got := upstreamSaw(t, st.login(t, b, "/team/")); got.Headers["x-forwarded-user"] != "user-"+name {
			t.Fatalf("%s's login landed as %q", name, got.Headers["x-forwarded-user"])
		}
		users[name] = b
		tokens[name] = st.accessToken(t, jwtClient, name)
	}
	browse := func(user, path string) func() *response {
		return func() *response { return users[user].get(st.Front.URL + path) }
	}
	call := func(user, path string) func() *response {
		return func() *response { return apiCall(t, st, path, tokens[user]) }
	}

	// Control: the counter refusedBy reads counts what reaches the upstream.
	before := upstreamRequests(t, st)
	upstreamSaw(t, users["bob"].get(st.Front.URL+"/team/counted"))
	if after := upstreamRequests(t, st); after != before+1 {
		t.Fatalf("echo requests %d → %d after one allowed request, want one more", before, after)
	}

	t.Run("allow_if owner_or_admin", func(t *testing.T) {
		for _, tc := range []struct{ user, path string }{
			{"alice", "/users/user-bob/profile"}, // admin
			{"bob", "/users/user-bob/profile"},   // owner
			{"eve", "/users/user-eve/"},
		} {
			if got := upstreamSaw(t, users[tc.user].get(st.Front.URL+tc.path)); got.Headers["x-forwarded-user"] != "user-"+tc.user {
				t.Errorf("%s's session on %s reached the upstream as %q", tc.user, tc.path, got.Headers["x-forwarded-user"])
			}
			upstreamSaw(t, apiCall(t, st, tc.path, tokens[tc.user]))
		}
		// everyone holds, owner_or_admin doesn't: every allow_if rule must hold.
		r := refusedBy(t, st, "bob's session on alice's path", http.StatusForbidden, browse("bob", "/users/user-alice/profile"))
		rulePage(t, "bob's session on alice's path", r, "owner_or_admin")
		r = refusedBy(t, st, "bob's token on alice's path", http.StatusForbidden, call("bob", "/users/user-alice/profile"))
		ruleJSON(t, "bob's token on alice's path", r, "rule_denied", "owner_or_admin", true)
		r = refusedBy(t, st, "bob's session as an API caller on alice's path", http.StatusForbidden, func() *response {
			return users["bob"].do(http.MethodGet, st.Front.URL+"/users/user-alice/", http.Header{"Accept": {"application/json"}})
		})
		ruleJSON(t, "bob's session as an API caller on alice's path", r, "rule_denied", "owner_or_admin", false)
		// A path that only starts like bob's: the rule's trailing slash matters.
		refusedBy(t, st, "bob's token on /users/user-bobby/", http.StatusForbidden, call("bob", "/users/user-bobby/"))
	})

	t.Run("deny_if before allow_if", func(t *testing.T) {
		upstreamSaw(t, users["eve"].get(st.Front.URL+"/guarded/x"))
		upstreamSaw(t, apiCall(t, st, "/guarded/x", tokens["eve"]))
		r := refusedBy(t, st, "mallory's session on /guarded/", http.StatusForbidden, browse("mallory", "/guarded/x"))
		rulePage(t, "mallory's session on /guarded/", r, "blocked")
		r = refusedBy(t, st, "mallory's token on /guarded/", http.StatusForbidden, call("mallory", "/guarded/x"))
		ruleJSON(t, "mallory's token on /guarded/", r, "rule_denied", "blocked", true)
	})

	t.Run("the app's allow_if and deny_if on a route that names no rules", func(t *testing.T) {
		upstreamSaw(t, users["bob"].get(st.Front.URL+"/plain"))
		upstreamSaw(t, apiCall(t, st, "/plain", tokens["bob"]))
		r := refusedBy(t, st, "eve's session on /plain (allow_if readers)", http.StatusForbidden, browse("eve", "/plain"))
		rulePage(t, "eve's session on /plain", r, "readers")
		r = refusedBy(t, st, "eve's token on /plain", http.StatusForbidden, call("eve", "/plain"))
		ruleJSON(t, "eve's token on /plain", r, "rule_denied", "readers", true)
		// mallory fails both defaults; deny_if is checked first.
		r = refusedBy(t, st, "mallory's token on /plain", http.StatusForbidden, call("mallory", "/plain"))
		ruleJSON(t, "mallory's token on /plain", r, "rule_denied", "blocked", true)
	})

	t.Run("a rule that isn't defined", func(t *testing.T) {
		r := refusedBy(t, st, "alice's session on /undefined/", http.StatusInternalServerError, browse("alice", "/undefined/x"))
		rulePage(t, "alice's session on /undefined/", r, "no_such_rule")
		r = refusedBy(t, st, "alice's token on /undefined/", http.StatusInternalServerError, call("alice", "/undefined/x"))
		ruleJSON(t, "alice's token on /undefined/", r, "unknown_rule", "no_such_rule", false)
		waitFor(t, "the log line naming the undefined rule", func() bool {
			return logRecord(st.Server, map[string]string{"level": "ERROR", "rule": "no_such_rule"}) != nil
		})
	})

	t.Run("a rule that errors at run time", func(t *testing.T) {
		upstreamSaw(t, users["bob"].get(st.Front.URL+"/lookup/?id=42"))
		upstreamSaw(t, apiCall(t, st, "/lookup/?id=42", tokens["bob"]))
		r := refusedBy(t, st, "bob's token on /lookup/?id=7", http.StatusForbidden, call("bob", "/lookup/?id=7"))
		ruleJSON(t, "bob's token on /lookup/?id=7", r, "rule_denied", "needs_id", true)
		r = refusedBy(t, st, "bob's token on /lookup/ without id", http.StatusForbidden, call("bob", "/lookup/"))
		ruleJSON(t, "bob's token on /lookup/ without id", r, "rule_error", "needs_id", true)
		r = refusedBy(t, st, "bob's session on /lookup/ without id", http.StatusForbidden, browse("bob", "/lookup/?other=1"))
		rulePage(t, "bob's session on /lookup/ without id", r, "needs_id")
		waitFor(t, "the decision's log line with the rule", func() bool {
			return logRecord(st.Server, map[string]string{"reason": "rule_error", "rule": "needs_id", "sub": "user-bob"}) != nil
		})
		waitFor(t, "the error's log line with the rule", func() bool {
			rec := logRecord(st.Server, map[string]string{"level": "ERROR", "rule": "needs_id"})
			return rec != nil && rec["error"] != nil
		})
	})

	t.Run("log, metrics and Envoy's metadata name the rule", func(t *testing.T) {
		if rec := logRecord(st.Server, map[string]string{"reason": "rule_denied", "rule": "owner_or_admin", "sub": "user-bob"}); rec == nil {
			t.Errorf("no log line with reason rule_denied, rule owner_or_admin and sub user-bob")
		}
		metrics := scrape(t, st.Server)
		for _, want := range []string{
			`reason="rule_denied rule=owner_or_admin"} 4`,
			`reason="rule_denied rule=blocked"} 3`,
			`reason="rule_denied rule=readers"} 2`,
			`reason="rule_error rule=needs_id"} 2`,
			`reason="unknown_rule rule=no_such_rule"} 2`,
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
		waitFor(t, "the access log line with the metadata's rule", func() bool {
			return strings.Contains(st.Front.Logs(), "[access] GET /users/user-alice/profile 403 sub=user-bob reason=rule_denied app=default rule=owner_or_admin")
		})
	})
}

// A changed rule applies on the config file's change, without a restart;
// a rule with a type error is refused, naming it, and the rule in force
// keeps deciding.
func TestRulesHotReload(t *testing.T) {
	rules := testRules()
	st := rulesStack(t, map[string]any{"rules": rules}, ruleRoute{"/users/", map[string]string{"allow_if": "owner_or_admin"}})
	bob, eve := newBrowser(t, "bob", "bob-password"), newBrowser(t, "eve", "eve-password")
	upstreamSaw(t, st.login(t, bob, "/"))
	upstreamSaw(t, st.login(t, eve, "/"))
	on := func(b *browser, path string) int { return b.get(st.Front.URL + path).StatusCode }

	if got := on(bob, "/users/user-alice/"); got != http.StatusForbidden {
		t.Fatalf("bob on alice's path before the change: %d, want 403", got)
	}
	upstreamSaw(t, eve.get(st.Front.URL+"/users/user-eve/"))

	// Readers only: bob (reader) may now go to alice's path, eve (no
	// roles) no longer to her own.
	cfg := baseConfig(st.IdP.Issuer)
	maps.Copy(cfg, rulesBearerKeys())
	rules["owner_or_admin"] = `"reader" in user.roles`
	cfg["rules"] = rules
	rewrite(t, st.Server.ConfigPath, cfg)
	waitFor(t, "the changed rule to let bob in", func() bool { return on(bob, "/users/user-alice/") == http.StatusOK })
	if got := on(eve, "/users/user-eve/"); got != http.StatusForbidden {
		t.Errorf("eve on her own path under the changed rule: %d, want 403", got)
	}
	waitFor(t, "the reload's log line", func() bool {
		return strings.Contains(st.Server.Logs(), `"msg":"configuration reloaded","trigger":"file changed","applied":["rules"]`)
	})

	// A type error (string == int): the file is refused, naming the rule.
	rules["owner_or_admin"] = `"reader" in user.roles && user.sub == 42`
	rewrite(t, st.Server.ConfigPath, cfg)
	waitFor(t, "the refusal naming the rule", func() bool {
		rec := logRecord(st.Server, map[string]string{"msg": "configuration reload refused; the running configuration stays"})
		msg, _ := rec["error"].(string)
		return strings.Contains(msg, "rules: rule owner_or_admin: line 1, column")
	})
	if got := on(bob, "/users/user-alice/"); got != http.StatusOK {
		t.Errorf("bob on alice's path after the refused reload: %d, want 200 (the rule in force)", got)
	}
	if got := on(eve, "/users/user-eve/"); got != http.StatusForbidden {
		t.Errorf("eve on her own path after the refused reload: %d, want 403 (the rule in force)", got)
	}
	if m := scrape(t, st.Server); !strings.Contains(m, `zitadel_ext_authz_config_reloads_total{outcome="refused"} 1`) {
		t.Error("the refused reload is not counted")
	}
	select {
	case <-st.Server.Exited():
		t.Fatalf("the server exited (not a reload but a restart would follow): %v", st.Server.Err())
	default:
	}
}
