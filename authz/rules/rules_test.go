package rules

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/ast"
	"github.com/google/go-cmp/cmp"
)

// testInput is a realistic input: a session user with five roles and
// three groups, and a GET from the internal network.
func testInput() *Input {
	return &Input{
		User: &User{
			Sub:               "u1",
			Email:             "ada@example.com",
			EmailVerified:     true,
			Name:              "Ada Lovelace",
			PreferredUsername: "ada",
			Groups:            []string{"staff", "eu", "editor"},
			Roles: map[string][]string{
				"viewer": {"o1"}, "editor": {"o1"}, "billing": {"o2"}, "support": {}, "reporter": {"o1", "o2"},
			},
			OrgID:    "o1",
			AMR:      []string{"pwd", "mfa"},
			AuthTime: time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC),
			Claims:   map[string]string{"a.b": "c", "locale": "de"},
			Via:      "session",
			Scopes:   []string{"openid", "profile"},
		},
		Request: &Request{
			Method:        "GET",
			Scheme:        "https",
			Host:          "app.example.com",
			Path:          "/users/u1/profile",
			Query:         map[string]string{"page": "2"},
			Headers:       map[string]string{"x-team": "blue", "authorization": "Bearer secret-token"},
			SourceAddress: "10.1.2.3",
		},
		Route: map[string]string{"org": "o1"},
		Now:   time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC),
	}
}

// mustCompile compiles defs or fails the test.
func mustCompile(t testing.TB, defs map[string]string) *Set {
	t.Helper()
	s, err := Compile(defs)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return s
}

// evalOne compiles src as rule "r" and evaluates it on in.
func evalOne(t *testing.T, src string, in *Input) (bool, error) {
	t.Helper()
	return mustCompile(t, map[string]string{"r": src}).Eval("r", in)
}

func TestInputFields(t *testing.T) {
	const ts = "google.protobuf.Timestamp"
	tests := []struct{ field, typ, value string }{
		{"user.sub", "string", `"u1"`},
		{"user.email", "string", `"ada@example.com"`},
		{"user.email_verified", "bool", `true`},
		{"user.name", "string", `"Ada Lovelace"`},
		{"user.preferred_username", "string", `"ada"`},
		{"user.groups", "list", `["staff", "eu", "editor"]`},
		{"user.roles", "map", `{"viewer": ["o1"], "editor": ["o1"], "billing": ["o2"], "support": [], "reporter": ["o1", "o2"]}`},
		{`user.roles["reporter"]`, "list", `["o1", "o2"]`},
		{"user.org_id", "string", `"o1"`},
		{"user.amr", "list", `["pwd", "mfa"]`},
		{"user.auth_time", ts, `timestamp("2026-12-07T08:00:00Z")`},
		{`user.claims["a.b"]`, "string", `"c"`},
		{"user.claims.locale", "string", `"de"`},
		{"user.via", "string", `"session"`},
		{"user.scopes", "list", `["openid", "profile"]`},
		{"request.method", "string", `"GET"`},
		{"request.scheme", "string", `"https"`},
		{"request.host", "string", `"app.example.com"`},
		{"request.path", "string", `"/users/u1/profile"`},
		{"request.query", "map", `{"page": "2"}`},
		{"request.headers", "map", `{"x-team": "blue", "authorization": "Bearer secret-token"}`},
		{"request.source_address", "string", `"10.1.2.3"`},
		{"route", "map", `{"org": "o1"}`},
		{"now", ts, `timestamp("2026-12-07T09:00:00Z")`},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			src := fmt.Sprintf("type(%s) == %s && %s == %s", tt.field, tt.typ, tt.field, tt.value)
			got, err := evalOne(t, src, testInput())
			if err != nil || !got {
				t.Errorf("Eval(%s): got %v, %v; want true", src, got, err)
			}
		})
	}
	t.Run("zero auth_time is timestamp(0)", func(t *testing.T) {
		in := testInput()
		in.User.AuthTime = time.Time{}
		if got, err := evalOne(t, "user.auth_time == timestamp(0)", in); err != nil || !got {
			t.Errorf("Eval: got %v, %v; want true", got, err)
		}
	})
	t.Run("nil route is an empty map", func(t *testing.T) {
		in := testInput()
		in.Route = nil
		if got, err := evalOne(t, "size(route) == 0", in); err != nil || !got {
			t.Errorf("Eval: got %v, %v; want true", got, err)
		}
	})
}

// The example rules.
func TestExampleRules(t *testing.T) {
	defs := map[string]string{
		"owner_or_admin":  `user.roles.exists(r, r == "admin") || request.path.startsWith("/users/" + user.sub + "/")`,
		"org_read_edit":   `request.method in ["GET", "HEAD"] ? user.org_id == route.org : "editor" in user.roles`,
		"network_or_mfa":  `cidr("10.0.0.0/8").containsIP(request.source_address) || "mfa" in user.amr`,
		"internal_prefix": `request.source_address.startsWith("10.") || "mfa" in user.amr`,
		"deny_user":       `user.sub in ["123"]`,
		"team_header":     `"x-team" in request.headers && request.headers["x-team"] == "blue"`,
		"recent_login":    `now - user.auth_time < duration("2h")`,
		"claim":           `user.claims["a.b"] == "c" && has(user.claims.locale)`,
	}
	s := mustCompile(t, defs)
	tests := []struct {
		name, rule string
		edit       func(*Input)
		want       bool
	}{
		{"the owner", "owner_or_admin", nil, true},
		{"an admin", "owner_or_admin", func(in *Input) { in.Request.Path = "/users/u2/"; in.User.Roles["admin"] = nil }, true},
		{"neither owner nor admin", "owner_or_admin", func(in *Input) { in.Request.Path = "/users/u2/" }, false},
		{"a prefix of the owner's id is no owner", "owner_or_admin", func(in *Input) { in.Request.Path = "/users/u12/" }, false},
		{"a read in the user's org", "org_read_edit", nil, true},
		{"a read in another org", "org_read_edit", func(in *Input) { in.Route["org"] = "o2" }, false},
		{"a write by an editor", "org_read_edit", func(in *Input) { in.Request.Method = "POST" }, true},
		{"a write by a non-editor", "org_read_edit", func(in *Input) { in.Request.Method = "POST"; delete(in.User.Roles, "editor") }, false},
		{"the internal network", "network_or_mfa", func(in *Input) { in.User.AMR = []string{"pwd"} }, true},
		{"outside with mfa", "network_or_mfa", func(in *Input) { in.Request.SourceAddress = "192.0.2.1" }, true},
		{"outside without mfa", "network_or_mfa", func(in *Input) { in.Request.SourceAddress = "192.0.2.1"; in.User.AMR = []string{"pwd"} }, false},
		{"IPv6 outside without mfa", "network_or_mfa", func(in *Input) { in.Request.SourceAddress = "2001:db8::1"; in.User.AMR = nil }, false},
		{"prefix: outside without mfa", "internal_prefix", func(in *Input) { in.Request.SourceAddress = "100.1.2.3"; in.User.AMR = nil }, false},
		{"prefix: the internal network", "internal_prefix", func(in *Input) { in.User.AMR = nil }, true},
		{"a denied user", "deny_user", func(in *Input) { in.User.Sub = "123" }, true},
		{"another user", "deny_user", nil, false},
		{"the team header", "team_header", nil, true},
		{"no team header", "team_header", func(in *Input) { delete(in.Request.Headers, "x-team") }, false},
		{"a recent login", "recent_login", nil, true},
		{"an old login", "recent_login", func(in *Input) { in.Now = in.Now.Add(2 * time.Hour) }, false},
		{"an unknown login time", "recent_login", func(in *Input) { in.User.AuthTime = time.Time{} }, false},
		{"claims", "claim", nil, true},
		{"a claim missing, tested with has", "claim", func(in *Input) { delete(in.User.Claims, "locale") }, false},
	}
	for _, tt := range tests {
		t.Run(tt.rule+"/"+tt.name, func(t *testing.T) {
			in := testInput()
			if tt.edit != nil {
				tt.edit(in)
			}
			got, err := s.Eval(tt.rule, in)
			if err != nil {
				t.Fatalf("Eval(%s): %v", tt.rule, err)
			}
			if got != tt.want {
				t.Errorf("Eval(%s): got %v, want %v", tt.rule, got, tt.want)
			}
		})
	}
}

func TestCompileErrors(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // the whole error
	}{
		{"syntax", `user.sub ==`, "rule r: line 1, column 12: Syntax error: mismatched input '<EOF>' expecting"},
		{"unknown user field", `user.nmae == "x"`, "rule r: line 1, column 5: undefined field 'nmae'"},
		{"unknown request field", `request.pth == "/"`, "rule r: line 1, column 8: undefined field 'pth'"},
		{"unknown variable", `usr.sub == "x"`, "rule r: line 1, column 1: undeclared reference to 'usr'"},
		{"a later line", "user.sub == \"x\" ||\n  request.pth == \"/\"", "rule r: line 2, column 10: undefined field 'pth'"},
		{"wrong argument type", `user.groups.exists(g, g == 1)`, "rule r: line 1, column 25: found no matching overload for '_==_'"},
		{"not bool", `user.sub`, "rule r: line 1, column 5: a rule must be of type bool, not string"},
		{"not bool, a list", `user.groups.filter(g, g != "")`, "rule r: line 1, column 19: a rule must be of type bool, not list(string)"},
		{"bad regular expression", `request.path.matches("(")`, "rule r: line 1, column 22: invalid matches argument"},
		{"a large regular expression", `request.path.matches("^/[a-z]{200}$")`, "rule r: line 1, column 22: regex program size 205 exceeds limit of 100"},
		{"bad duration", `now - user.auth_time < duration("2 hours")`, "rule r: line 1, column 33: invalid duration argument"},
		{"claims by a variable key", `user.claims[request.query.k] == "x"`, "rule r: line 1, column 5: " + msgClaimsKey},
		{"claims iterated", `user.claims.exists(k, k == "x")`, "rule r: line 1, column 5: " + msgClaimsKey},
		{"claims measured", `size(user.claims) > 0`, "rule r: line 1, column 10: " + msgClaimsKey},
		{"an upper-case header name", `request.headers["X-Team"] == "blue"`, `rule r: line 1, column 8: request.headers has lower-case names: "X-Team" never matches`},
		{"user as a whole", `[user].size() == 1`, "rule r: line 1, column 2: " + msgBareUser},
		{"quadratic: headers × groups", `request.headers.exists(h, user.groups.exists(g, g == h))`, "rule r: estimated worst-case cost"},
		{"quadratic: roles × organizations", `user.roles.exists(r, user.roles[r].exists(o, o == user.org_id))`, "rule r: estimated worst-case cost"},
		{"a string built big", `user.groups.map(g, request.path + g).exists(p, p.contains(request.headers["x"]))`, "rule r: estimated worst-case cost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Compile(map[string]string{"r": tt.src})
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Compile(%s): got %v, want %q…", tt.src, err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Errorf("Compile(%s): got %q, want one line", tt.src, err)
			}
		})
	}
}

func TestCompileNamesEveryBadRule(t *testing.T) {
	_, err := Compile(map[string]string{
		"good":  `true`,
		"b_one": `usr.sub == "x"`,
		"a_two": `user.nmae == "x" || user.emial == ""`,
	})
	want := "rule a_two: line 1, column 5: undefined field 'nmae'\n" +
		"rule a_two: line 1, column 25: undefined field 'emial'\n" +
		"rule b_one: line 1, column 1: undeclared reference to 'usr' (did you mean 'user'?)"
	if err == nil || err.Error() != want {
		t.Errorf("Compile: got %v, want %s", err, want)
	}
}

func TestCompileNames(t *testing.T) {
	for _, name := range []string{"", "1abc", "a-b", "a.b", "a b", "é"} {
		_, err := Compile(map[string]string{name: "true"})
		want := fmt.Sprintf("rule %q: name must match [A-Za-z_][A-Za-z0-9_]*", name)
		if err == nil || err.Error() != want {
			t.Errorf("Compile(%q): got %v, want %s", name, err, want)
		}
	}
	for _, name := range []string{"a", "_", "owner_or_admin", "A1_b2"} {
		if _, err := Compile(map[string]string{name: "true"}); err != nil {
			t.Errorf("Compile(%q): %v", name, err)
		}
	}
}

// An ordinary rule set stays within the cost limit, even with every input
// at its size bound.
func TestCompileAdmitsOrdinaryRules(t *testing.T) {
	mustCompile(t, map[string]string{
		"a": `user.roles.exists(r, r.startsWith("admin-")) || user.groups.exists(g, g.startsWith("team-")) ||
		      user.scopes.exists(s, s.endsWith(":admin")) || request.path.matches("^/api/v[0-9]+/") ||
		      request.headers.exists(h, h.startsWith("x-debug"))`,
		"role":  `user.roles.exists(r, r == "admin") || "admin" in user.groups || sets.intersects(user.groups, ["a", "b"])`,
		"email": `user.email_verified && user.email.lowerAscii().endsWith("@example.com")`,
		"b":     `request.method in ["GET", "HEAD"] ? user.org_id == route.org : "editor" in user.roles`,
		"c":     `cidr("10.0.0.0/8").containsIP(request.source_address) || "mfa" in user.amr`,
	})
}

func TestEmpty(t *testing.T) {
	for _, defs := range []map[string]string{nil, {}} {
		s, err := Compile(defs)
		if err != nil {
			t.Fatalf("Compile(%v): %v", defs, err)
		}
		if s.Has("x") || len(s.Names()) != 0 || len(s.ClaimPaths()) != 0 || s.Reads("user") || s.Source("x") != "" {
			t.Errorf("Compile(%v): not empty", defs)
		}
	}
	var s *Set
	if s.Has("x") || s.Names() != nil || s.ClaimPaths() != nil || s.Reads("user") || s.Source("x") != "" {
		t.Errorf("nil Set: not empty")
	}
	if _, err := s.Eval("x", testInput()); !errors.Is(err, ErrUnknownRule) {
		t.Errorf("nil Set: Eval: got %v, want ErrUnknownRule", err)
	}
}

func TestSet(t *testing.T) {
	s := mustCompile(t, map[string]string{"b": `true`, "a": `false`, "c": `user.sub == "u1"`})
	if got, want := s.Names(), []string{"a", "b", "c"}; !slices.Equal(got, want) {
		t.Errorf("Names: got %v, want %v", got, want)
	}
	s.Names()[0] = "x"
	if !s.Has("a") || s.Has("x") || s.Names()[0] != "a" {
		t.Errorf("Has/Names: the set changed with the slice Names returned")
	}
	if got := s.Source("c"); got != `user.sub == "u1"` {
		t.Errorf("Source(c): got %q", got)
	}
}

func TestEvalErrors(t *testing.T) {
	s := mustCompile(t, map[string]string{
		"header":  `request.headers["x-missing"] == "a"`,
		"query":   `request.query.missing == "a"`,
		"route":   `route.missing == "a"`,
		"role":    `user.roles["admin"].size() > 0`,
		"user":    `user.sub == "u1"`,
		"groups":  `user.groups.exists(g, g.startsWith("nope"))`,
		"network": `cidr("10.0.0.0/8").containsIP(request.source_address)`,
	})
	tests := []struct {
		name, rule string
		in         *Input
		want       string
	}{
		{"a missing header", "header", testInput(), "rule header: no such key: x-missing"},
		{"a missing query parameter", "query", testInput(), "rule query: no such key: missing"},
		{"a missing route key", "route", testInput(), "rule route: no such key: missing"},
		{"a missing role", "role", testInput(), "rule role: no such key: admin"},
		{"no user", "user", &Input{Request: testInput().Request}, "rule user: no such attribute"},
		{"no input", "user", nil, "rule user: no input"},
		{"an IPv4-mapped address", "network", func() *Input {
			in := testInput()
			in.Request.SourceAddress = "::ffff:10.1.2.3"
			return in
		}(), `rule network: IPv4-mapped IPv6 address "::ffff:10.1.2.3" is not allowed`},
		{"an unknown rule", "nope", testInput(), "rule nope: unknown rule"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Eval(tt.rule, tt.in)
			if err == nil || got || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("Eval(%s): got %v, %v; want false, %s…", tt.rule, got, err, tt.want)
			}
		})
	}
	if _, err := s.Eval("nope", testInput()); !errors.Is(err, ErrUnknownRule) {
		t.Errorf("Eval(nope): got %v, want ErrUnknownRule", err)
	}

	// Inputs beyond the size bounds pass Compile's estimate but not
	// CostLimit.
	t.Run("the cost limit", func(t *testing.T) {
		in := testInput()
		in.User.Groups = make([]string, 100*MaxEntries)
		got, err := s.Eval("groups", in)
		if !errors.Is(err, ErrCostLimit) || got {
			t.Errorf("Eval(groups): got %v, %v; want false, ErrCostLimit", got, err)
		}
		in.User.Groups = make([]string, MaxEntries)
		if got, err := s.Eval("groups", in); err != nil || got {
			t.Errorf("Eval(groups) at the bound: got %v, %v; want false, nil", got, err)
		}
	})
}

func TestClaimPaths(t *testing.T) {
	s := mustCompile(t, map[string]string{
		"index":   `user.claims["urn:zitadel:iam:user:resourceowner:name"] == "ACME"`,
		"select":  `user.claims.locale == "de" && user.claims["a.b"] != ""`,
		"has":     `has(user.claims.nickname)`,
		"in":      `"a.b" in user.claims`,
		"again":   `user.claims.locale == "fr"`,
		"shadow":  `[{"x": "y"}].exists(user, user.x == "y")`,
		"noclaim": `user.sub == "u1"`,
	})
	want := []string{"a.b", "locale", "nickname", "urn:zitadel:iam:user:resourceowner:name"}
	if diff := cmp.Diff(want, s.ClaimPaths()); diff != "" {
		t.Errorf("ClaimPaths (-want +got):\n%s", diff)
	}
	got, err := s.Eval("index", &Input{User: &User{Claims: map[string]string{"urn:zitadel:iam:user:resourceowner:name": "ACME"}}})
	if err != nil || !got {
		t.Errorf("Eval(index): got %v, %v; want true", got, err)
	}
	if got, err := s.Eval("shadow", testInput()); err != nil || !got {
		t.Errorf("Eval(shadow): got %v, %v; want true", got, err)
	}
}

func TestReads(t *testing.T) {
	s := mustCompile(t, map[string]string{
		"a": `user.roles.exists(r, r == "admin") || request.path.startsWith("/users/" + user.sub + "/")`,
		"b": `"x-team" in request.headers || user.claims.locale == "de"`,
		"c": `route.org == user.org_id`,
		"d": `[1].exists(request, request > 0) && [now].size() == 1`,
	})
	tests := []struct {
		field string
		want  bool
	}{
		{"user", true},
		{"user.roles", true},
		{"user.sub", true},
		{"user.claims", true},
		{"user.org_id", true},
		{"user.groups", false},
		{"user.amr", false},
		{"request", true},
		{"request.path", true},
		{"request.headers", true},
		{"request.query", false},
		{"request.method", false},
		{"route", true},
		{"now", true},
		{"nope", false},
	}
	for _, tt := range tests {
		if got := s.Reads(tt.field); got != tt.want {
			t.Errorf("Reads(%s): got %v, want %v", tt.field, got, tt.want)
		}
	}

	// A rule that reads request as a whole reads every field of it.
	s = mustCompile(t, map[string]string{"r": `[request].size() == 1`})
	for _, f := range []string{"request", "request.method", "request.query", "request.headers", "request.source_address"} {
		if !s.Reads(f) {
			t.Errorf("Reads(%s): got false, want true", f)
		}
	}
	if s.Reads("user") {
		t.Errorf("Reads(user): got true, want false")
	}
}

func TestExplain(t *testing.T) {
	s := mustCompile(t, map[string]string{
		"owner_or_admin": `user.roles.exists(r, r == "admin") || request.path.startsWith("/users/" + user.sub + "/")`,
		"headers":        `request.headers["authorization"] != "" && "x-team" in request.headers && request.headers.size() > 0 && route.org == "o1" && now > user.auth_time`,
		"missing":        `request.query.missing == "a"`,
	})
	tests := []struct {
		rule string
		in   *Input
		want Explanation
	}{
		{"owner_or_admin", testInput(), Explanation{
			Rule:   "owner_or_admin",
			Source: `user.roles.exists(r, r == "admin") || request.path.startsWith("/users/" + user.sub + "/")`,
			Inputs: []Field{
				{"user.roles", `{"billing": ["o2"], "editor": ["o1"], "reporter": ["o1", "o2"], "support": [], "viewer": ["o1"]}`},
				{"request.path", `"/users/u1/profile"`},
				{"user.sub", `"u1"`},
			},
			Result: true,
		}},
		{"headers", testInput(), Explanation{
			Rule:   "headers",
			Source: `request.headers["authorization"] != "" && "x-team" in request.headers && request.headers.size() > 0 && route.org == "o1" && now > user.auth_time`,
			Inputs: []Field{
				{`request.headers["authorization"]`, "<redacted>"},
				{`request.headers["x-team"]`, `"blue"`},
				{"request.headers", `{"authorization": <redacted>, "x-team": "blue"}`},
				{`route["org"]`, `"o1"`},
				{"now", "2026-12-07T09:00:00Z"},
				{"user.auth_time", "2026-12-07T08:00:00Z"},
			},
			Result: true,
		}},
		{"missing", testInput(), Explanation{
			Rule:   "missing",
			Source: `request.query.missing == "a"`,
			Inputs: []Field{{`request.query["missing"]`, "<absent>"}},
			Err:    errors.New("rule missing: no such key: missing"),
		}},
		{"owner_or_admin", &Input{Request: testInput().Request}, Explanation{
			Rule:   "owner_or_admin",
			Source: `user.roles.exists(r, r == "admin") || request.path.startsWith("/users/" + user.sub + "/")`,
			Inputs: []Field{
				{"user.roles", "<no user>"},
				{"request.path", `"/users/u1/profile"`},
				{"user.sub", "<no user>"},
			},
			Err: errors.New("rule owner_or_admin: no such attribute(s): user"),
		}},
		{"nope", testInput(), Explanation{Rule: "nope", Err: errors.New("rule nope: unknown rule")}},
	}
	errText := cmp.Comparer(func(a, b error) bool { return fmt.Sprint(a) == fmt.Sprint(b) })
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			got := s.Explain(tt.rule, tt.in)
			if diff := cmp.Diff(tt.want, got, errText); diff != "" {
				t.Errorf("Explain(%s) (-want +got):\n%s", tt.rule, diff)
			}
		})
	}
}

// existsToIn rewrites only m.exists(x, x == literal), and the rewritten
// rule answers as the rule as written.
func TestExistsToIn(t *testing.T) {
	env, err := newEnv()
	if err != nil {
		t.Fatal(err)
	}
	opt, err := cel.NewStaticOptimizer(existsToIn{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		src     string
		rewrite bool
	}{
		{`user.roles.exists(r, r == "admin")`, true},
		{`user.groups.exists(g, "staff" == g)`, true},
		{`user.amr.exists(a, a == "mfa") && user.scopes.exists(s, s == "openid")`, true},
		{`request.headers.exists(h, h == "x-team")`, true},
		{`route.exists(k, k == "org")`, true},
		{`user.roles["editor"].exists(o, o == "o1")`, true},
		{`user.groups.exists(g, g == user.sub)`, false},
		{`user.groups.exists(g, g != "staff")`, false},
		{`user.groups.all(g, g == "staff")`, false},
		{`user.groups.exists_one(g, g == "staff")`, false},
		{`user.roles.exists(r, user.roles[r].exists(o, o == user.org_id))`, false},
	}
	inputs := map[string]func(*Input){
		"as is":         func(*Input) {},
		"an admin":      func(in *Input) { in.User.Roles["admin"] = nil; in.User.Groups = append(in.User.Groups, "u1") },
		"nothing":       func(in *Input) { in.User = &User{}; in.Request.Headers = nil; in.Route = nil },
		"no mfa":        func(in *Input) { in.User.AMR = []string{"pwd"} },
		"staff only":    func(in *Input) { in.User.Groups = []string{"staff"} },
		"twice staff":   func(in *Input) { in.User.Groups = []string{"staff", "staff"} },
		"no org header": func(in *Input) { delete(in.Request.Headers, "x-team"); delete(in.Route, "org") },
	}
	comprehensions := func(a *cel.Ast) int {
		return len(ast.MatchDescendants(ast.NavigateAST(a.NativeRep()), ast.KindMatcher(ast.ComprehensionKind)))
	}
	for _, tt := range tests {
		t.Run(tt.src, func(t *testing.T) {
			written, iss := env.Compile(tt.src)
			if iss.Err() != nil {
				t.Fatal(iss.Err())
			}
			optimized, iss := opt.Optimize(env, written)
			if iss.Err() != nil {
				t.Fatal(iss.Err())
			}
			if got := comprehensions(optimized) < comprehensions(written); got != tt.rewrite {
				t.Errorf("Optimize(%s): rewrote %v, want %v", tt.src, got, tt.rewrite)
			}
			for name, edit := range inputs {
				in := testInput()
				edit(in)
				want := evalAST(t, env, written, in)
				if got := evalAST(t, env, optimized, in); got != want {
					t.Errorf("Eval(%s) on %s: optimized %s, as written %s", tt.src, name, got, want)
				}
			}
		})
	}
}

// evalAST evaluates a on in; the answer is the result or the error, as
// text.
func evalAST(t *testing.T, env *cel.Env, a *cel.Ast, in *Input) string {
	t.Helper()
	prog, err := env.Program(a, cel.CostLimit(CostLimit))
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := prog.Eval((*activation)(in))
	if err != nil {
		return "error: " + err.Error()
	}
	return fmt.Sprint(out)
}

// Eval is safe for concurrent use (run with -race).
func TestConcurrentEval(t *testing.T) {
	s := mustCompile(t, map[string]string{
		"owner_or_admin": `user.roles.exists(r, r == "admin") || request.path.startsWith("/users/" + user.sub + "/")`,
		"mfa":            `"mfa" in user.amr && now - user.auth_time < duration("2h")`,
	})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			in := testInput()
			in.User.Sub = fmt.Sprintf("u%d", g)
			in.Request.Path = fmt.Sprintf("/users/u%d/", g%2)
			want := g%2 == g // only u0 and u1 own their path
			for range 200 {
				got, err := s.Eval("owner_or_admin", in)
				if err != nil || got != want {
					errs <- fmt.Errorf("goroutine %d: Eval(owner_or_admin): got %v, %v; want %v", g, got, err, want)
					return
				}
				if got, err := s.Eval("mfa", in); err != nil || !got {
					errs <- fmt.Errorf("goroutine %d: Eval(mfa): got %v, %v; want true", g, got, err)
					return
				}
				_ = s.Explain("owner_or_admin", in)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
