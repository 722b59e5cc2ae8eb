package authz

import (
	"slices"
	"strings"
	"testing"

	"github.com/dgraph-io/ristretto/v2"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/rules"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

func mustRules(t testing.TB, defs map[string]string) *rules.Set {
	t.Helper()
	set, err := rules.Compile(defs)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

var testRules = map[string]string{
	"owner_or_admin": `"admin" in user.roles || request.path.startsWith("/users/" + user.sub + "/")`,
	"blocked":        `user.sub in ["user-alice"]`,
	"everyone":       `true`,
	"needs_id":       `request.query.id == "42"`,
	"bearer_only":    `user.via == "bearer" && "read" in user.scopes`,
}

// outcome is a Check's answer in short: status (0 allowed), reason and
// rule from the dynamic metadata, and the body.
type outcome struct {
	status       int
	reason, rule string
	body         string
}

func checkOutcome(t *testing.T, s *Server, req *authv3.CheckRequest) outcome {
	t.Helper()
	resp, err := s.Check(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	meta := metadataOf(t, resp)
	o := outcome{reason: meta["reason"].GetStringValue(), rule: meta["rule"].GetStringValue()}
	if d := resp.GetDeniedResponse(); d != nil {
		o.status, o.body = int(d.GetStatus().GetCode()), d.GetBody()
	}
	return o
}

// Rules decide after the app's and the route's keys, for sessions and
// bearer tokens: deny_if first, then every allow_if; a route that names
// rules replaces the app's defaults; an undefined rule is a 500 naming it
// and a rule that fails at run time denies. The answer names the rule.
func TestRulesDecide(t *testing.T) {
	bob := alice()
	bob.Subject, bob.User, bob.PreferredUsername, bob.Email, bob.Groups = "user-bob", "user-bob", "bob", "bob@example.com", []string{"reader"}
	reader := &oidcflow.Bearer{Identity: oidcflow.Identity{Subject: "svc", User: "svc", Groups: []string{"reader"}}, Scopes: []string{"openid", "read"}, Via: "jwt"}
	cfg := Config{Rules: mustRules(t, testRules), AllowIf: []string{"owner_or_admin"}}
	s, jar := newTestServer(t, cfg, &stubIdP{}, nil)
	s.bearerAuth = stubBearer{b: reader}
	browser := func(cookie string) map[string]string {
		return map[string]string{"cookie": cookie, "accept": "text/html"}
	}
	aliceCookie, bobCookie := sessionCookie(t, jar, alice()), sessionCookie(t, jar, bob)
	api := map[string]string{"authorization": "Bearer t"}
	for _, tc := range []struct {
		name    string
		path    string
		headers map[string]string
		ext     map[string]string
		want    outcome
		inBody  string
	}{
		{"app default allow_if: an admin", "/reports", browser(aliceCookie), nil, outcome{reason: "session"}, ""},
		{"app default allow_if: not the owner", "/users/user-alice/x", browser(bobCookie), nil, outcome{status: 403, reason: "rule_denied", rule: "owner_or_admin"}, "the rule owner_or_admin does not allow this request"},
		{"app default allow_if: the owner", "/users/user-bob/x", browser(bobCookie), nil, outcome{reason: "session"}, ""},
		{"route's rules replace the defaults", "/users/user-alice/x", browser(bobCookie), map[string]string{"allow_if": "everyone"}, outcome{reason: "session"}, ""},
		{"deny_if before allow_if", "/x", browser(aliceCookie), map[string]string{"deny_if": "blocked", "allow_if": "everyone"}, outcome{status: 403, reason: "rule_denied", rule: "blocked"}, "blocked"},
		{"every allow_if must hold", "/x", browser(bobCookie), map[string]string{"allow_if": "everyone, owner_or_admin"}, outcome{status: 403, reason: "rule_denied", rule: "owner_or_admin"}, ""},
		{"names in any case", "/x", browser(aliceCookie), map[string]string{"allow_if": "Owner_Or_Admin"}, outcome{reason: "session"}, ""},
		{"an undefined rule: 500 naming it", "/x", browser(aliceCookie), map[string]string{"allow_if": "everyone,no_such_rule"}, outcome{status: 500, reason: "unknown_rule", rule: "no_such_rule"}, "no_such_rule"},
		{"an undefined rule in deny_if too", "/x", map[string]string{"cookie": aliceCookie}, map[string]string{"deny_if": "typo"}, outcome{status: 500, reason: "unknown_rule", rule: "typo"}, `"rule":"typo"`},
		{"a run-time error denies", "/x", browser(aliceCookie), map[string]string{"allow_if": "needs_id"}, outcome{status: 403, reason: "rule_error", rule: "needs_id"}, "could not be evaluated"},
		{"a run-time error in deny_if denies too", "/x", browser(aliceCookie), map[string]string{"deny_if": "needs_id"}, outcome{status: 403, reason: "rule_error", rule: "needs_id"}, ""},
		{"query read when a rule reads it", "/x?id=42", browser(aliceCookie), map[string]string{"allow_if": "needs_id"}, outcome{reason: "session"}, ""},
		{"API callers get JSON", "/users/user-alice/x", map[string]string{"cookie": bobCookie}, nil, outcome{status: 403, reason: "rule_denied", rule: "owner_or_admin"}, `{"error":"rule_denied","error_description":"the rule owner_or_admin does not allow this request","rule":"owner_or_admin"}`},
		{"bearer: via and scopes", "/api", api, map[string]string{"allow_if": "bearer_only"}, outcome{reason: "bearer_jwt"}, ""},
		{"bearer: denied by the default", "/api", api, nil, outcome{status: 403, reason: "rule_denied", rule: "owner_or_admin"}, `"rule":"owner_or_admin"`},
		{"a session is no bearer", "/x", browser(aliceCookie), map[string]string{"allow_if": "bearer_only"}, outcome{status: 403, reason: "rule_denied", rule: "bearer_only"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := envoyRequest("GET", tc.path, tc.headers)
			req.Attributes.ContextExtensions = tc.ext
			got := checkOutcome(t, s, req)
			body := got.body
			got.body = ""
			if got != tc.want {
				t.Errorf("got %+v, want %+v (body %.200q)", got, tc.want, body)
			}
			if !strings.Contains(body, tc.inBody) {
				t.Errorf("body %.300q lacks %q", body, tc.inBody)
			}
		})
	}
}

// A cached session's or token's identity block keeps the user as the
// rules read it (rules.UserMemo), with how they came and their scopes, so
// the Checks after the first answer as the first.
func TestRulesCachedUser(t *testing.T) {
	cache, err := ristretto.NewCache(&ristretto.Config[string, *session.Entry]{KeyToHash: session.KeyToHash, NumCounters: 1000, MaxCost: 1 << 20, BufferItems: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	reader := &oidcflow.Bearer{Identity: oidcflow.Identity{Subject: "svc", User: "svc", Groups: []string{"reader"}}, Scopes: []string{"openid", "read"}, Via: "jwt"}
	s, jar := newTestServer(t, Config{Rules: mustRules(t, testRules)}, &stubIdP{}, cache)
	s.bearerAuth = stubBearer{b: reader}
	cookie := sessionCookie(t, jar, alice())
	cache.Wait()
	browser := map[string]string{"cookie": cookie, "accept": "text/html"}
	api := map[string]string{"authorization": "Bearer t"}
	for _, tc := range []struct {
		name, path, rule string
		headers          map[string]string
		want             outcome
	}{
		{"session: an admin", "/x", "owner_or_admin", browser, outcome{reason: "session"}},
		{"session: no bearer", "/x", "bearer_only", browser, outcome{status: 403, reason: "rule_denied", rule: "bearer_only"}},
		{"bearer: via and scopes", "/api", "bearer_only", api, outcome{reason: "bearer_jwt"}},
		{"bearer: the owner", "/users/svc/x", "owner_or_admin", api, outcome{reason: "bearer_jwt"}},
		{"bearer: not the owner", "/users/user-alice/x", "owner_or_admin", api, outcome{status: 403, reason: "rule_denied", rule: "owner_or_admin"}},
	} {
		for i := range 3 {
			req := envoyRequest("GET", tc.path, tc.headers)
			req.Attributes.ContextExtensions = map[string]string{"allow_if": tc.rule}
			got := checkOutcome(t, s, req)
			if got.body = ""; got != tc.want {
				t.Errorf("%s, Check %d: got %+v, want %+v", tc.name, i+1, got, tc.want)
			}
		}
	}
	b, ok := reader.Memo().(*identityBlock)
	if !ok || b.ruleUser == nil {
		t.Fatalf("the token's identity block keeps no rules.UserMemo: %+v", reader.Memo())
	}
	if u := b.ruleUser.User(); u.Via != viaBearer || !slices.Equal(u.Scopes, reader.Scopes) || u.Sub != "svc" {
		t.Errorf("the token's rules.UserMemo: via %q, scopes %v, sub %q", u.Via, u.Scopes, u.Sub)
	}
}

// Without rules, and on a route that names none while the app has no
// defaults, nothing changes; a route naming a rule of an app without
// rules is a 500, never an allow.
func TestRulesAbsent(t *testing.T) {
	s, jar := newTestServer(t, Config{}, &stubIdP{}, nil)
	cookie := sessionCookie(t, jar, alice())
	req := envoyRequest("GET", "/x", map[string]string{"cookie": cookie})
	if got := checkOutcome(t, s, req); got.status != 0 {
		t.Fatalf("no rules: %+v", got)
	}
	req.Attributes.ContextExtensions = map[string]string{"allow_if": "admins"}
	if got := checkOutcome(t, s, req); got.status != 500 || got.rule != "admins" {
		t.Fatalf("a rule of an app without rules: %+v", got)
	}
}

// user.roles is ZITADEL's role claim shape: each role with the
// organizations that granted it, from role grants, the one organization
// that granted every role, or none (a plain group).
func TestRolesByOrg(t *testing.T) {
	for _, tc := range []struct {
		u    user
		want map[string][]string
	}{
		{user{groups: []string{"admin", "reader"}, roleOrg: "org1"}, map[string][]string{"admin": {"org1"}, "reader": {"org1"}}},
		{user{groups: []string{"admin"}, roleGrants: []string{"admin@org1", "admin@org2", "reader@org2"}}, map[string][]string{"admin": {"org1", "org2"}, "reader": {"org2"}}},
		{user{groups: []string{"devs"}}, map[string][]string{"devs": {}}},
		{user{}, map[string][]string{}},
	} {
		got := tc.u.rolesByOrg()
		if len(got) != len(tc.want) {
			t.Errorf("%+v: got %v, want %v", tc.u, got, tc.want)
		}
		for k, v := range tc.want {
			if !slices.Equal(got[k], v) {
				t.Errorf("%+v: %s → %v, want %v", tc.u, k, got[k], v)
			}
		}
	}
}

// BenchmarkCheckWithRule is a cached-session Check on a route naming a
// three-clause rule, against the same Check on a route naming none; and
// with the rule as the app's default allow_if, on a route without
// context_extensions (the rule's cost without the route's lookup).
func BenchmarkCheckWithRule(b *testing.B) {
	cache, err := ristretto.NewCache(&ristretto.Config[string, *session.Entry]{KeyToHash: session.KeyToHash, NumCounters: 10000, MaxCost: 1 << 26, BufferItems: 64})
	if err != nil {
		b.Fatal(err)
	}
	defer cache.Close()
	set := mustRules(b, map[string]string{
		// Every clause runs: alice isn't an owner, the path isn't hers,
		// and the third holds.
		"three": `user.roles.exists(r, r == "owner") || request.path.startsWith("/users/" + user.sub + "/") || "reader" in user.roles`,
	})
	s, jar := newTestServer(b, Config{PassAccessToken: true, Rules: set}, &stubIdP{}, cache)
	cookie := sessionCookie(b, jar, benchSession())
	byDefault, defaultJar := newTestServer(b, Config{PassAccessToken: true, Rules: set, AllowIf: []string{"three"}}, &stubIdP{}, cache)
	defaultCookie := sessionCookie(b, defaultJar, benchSession())
	cache.Wait()
	for _, bc := range []struct {
		name   string
		s      *Server
		cookie string
		ext    map[string]string
	}{{"no_rule", s, cookie, nil}, {"three_clause_rule", s, cookie, map[string]string{"allow_if": "three"}},
		{"route_keys", s, cookie, map[string]string{"allowed_groups": "admin,reader", "auth": "any", "csrf": "on"}},
		{"three_clause_app_default", byDefault, defaultCookie, nil}} {
		b.Run(bc.name, func(b *testing.B) {
			req := realisticRequest(bc.cookie)
			req.Attributes.ContextExtensions = bc.ext
			ctx := b.Context()
			if resp, _ := bc.s.Check(ctx, req); resp.GetStatus().GetCode() != 0 {
				b.Fatalf("setup: not allowed: %v", resp)
			}
			b.ReportAllocs()
			for b.Loop() {
				if resp, _ := bc.s.Check(ctx, req); resp.GetStatus().GetCode() != 0 {
					b.Fatal("denied")
				}
			}
		})
	}
}
