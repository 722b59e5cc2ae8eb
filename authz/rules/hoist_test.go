package rules

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"cel.dev/cel-go/cel"
)

// liftable finds the largest subexpressions that read user alone, and
// nothing inside a comprehension that names its variable user; the
// lifted rule reads their variables in their place.
func TestLiftable(t *testing.T) {
	env, err := newEnv()
	if err == nil {
		// Comprehensions print as their macros.
		env, err = env.Extend(cel.EnableMacroCallTracking())
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ src, want string }{
		{`"admin" in user.roles || request.path.startsWith("/users/" + user.sub + "/")`,
			`@u3 || request.path.startsWith(@u4)`},
		{`"mfa" in user.amr`, `@u3`},
		{`user.groups.exists(g, g.startsWith(request.path))`, `@u3.exists(g, g.startsWith(request.path))`},
		{`request.headers.exists(h, h == user.sub + "-x")`, `request.headers.exists(h, h == @u3)`},
		{`[1].exists(user, user == 1) || route.x == "y"`, `[1].exists(user, user == 1) || route.x == "y"`},
		{`[1].exists(x, x == 2 && user.sub == "a") || route.x == "y"`, `@u3 || route.x == "y"`},
		{`route.exists(k, k == "a" && user.sub == "a")`, `route.exists(k, k == "a" && @u3)`},
		{`has(user.claims.locale) && user.claims.locale == route.lang`, `@u3 && @u4 == route.lang`},
		{`type(user.sub) == string`, `type(@u3) == string`},
		{`now - user.auth_time < duration("2h")`, `now - @u3 < duration("2h")`},
		{`request.method == "GET"`, `request.method == "GET"`},
	} {
		t.Run(tc.src, func(t *testing.T) {
			checked, iss := env.Compile(tc.src)
			if iss.Err() != nil {
				t.Fatal(iss.Err())
			}
			_, lifted, err := liftAST(env, checked, liftable(checked.NativeRep(), 3))
			if err != nil {
				t.Fatal(err)
			}
			got, err := cel.AstToString(lifted)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("lifted %s: got %s, want %s", tc.src, got, tc.want)
			}
		})
	}
}

func TestMemoIndex(t *testing.T) {
	for name, want := range map[string]int{"@u0": 0, "@u17": 17} {
		if got, ok := memoIndex(name); !ok || got != want {
			t.Errorf("memoIndex(%s): got %d, %v; want %d", name, got, ok, want)
		}
	}
	for _, name := range []string{"@u", "user", "@ux", "@u1x", "u1", "@u99999999999999999999"} {
		if _, ok := memoIndex(name); ok {
			t.Errorf("memoIndex(%s): a memo variable, want none", name)
		}
	}
}

// liftRules read user alongside the other inputs, fail in either part,
// and short-circuit past failures.
var liftRules = map[string]string{
	"owner_or_admin": `user.roles.exists(r, r == "admin") || request.path.startsWith("/users/" + user.sub + "/")`,
	"org_read_edit":  `request.method in ["GET", "HEAD"] ? user.org_id == route.org : "editor" in user.roles`,
	"network_or_mfa": `cidr("10.0.0.0/8").containsIP(request.source_address) || "mfa" in user.amr`,
	"recent_login":   `now - user.auth_time < duration("2h")`,
	"claim":          `user.claims["a.b"] == "c" && has(user.claims.locale)`,
	"missing_or":     `user.claims["missing"] == "x" || request.path == "/"`,
	"missing_both":   `user.claims["missing"] == "x" || request.headers["x-missing"] == "y"`,
	"error_then_ok":  `user.claims["missing"] == "x" || true`,
	"skipped_error":  `request.method == "POST" && user.claims["missing"] == "x"`,
	"divide":         `100 / size(user.groups) > 10 || route.org == "o1"`,
	"groups_loop":    `user.groups.exists(g, g in route)`,
	"in_loop":        `["GET", "POST"].exists(m, m == request.method && user.sub + "-x" == "u1-x") || user.groups.all(g, g.size() < 10)`,
	"user_only":      `"staff" in user.groups && user.email.endsWith("@example.com")`,
	"via_scopes":     `user.via == "session" && "openid" in user.scopes`,
	"roles_of_org":   `route.role in user.roles && user.org_id in user.roles[route.role]`,
	"no_user":        `request.method == "GET"`,
}

// inputEdits are the inputs liftRules are evaluated on.
var inputEdits = map[string]func(*Input){
	"as is":          func(*Input) {},
	"an admin":       func(in *Input) { in.User.Roles["admin"] = nil },
	"another path":   func(in *Input) { in.Request.Path = "/users/u2/x" },
	"a post":         func(in *Input) { in.Request.Method = "POST" },
	"no groups":      func(in *Input) { in.User.Groups = nil },
	"no claims":      func(in *Input) { in.User.Claims = nil },
	"a bearer":       func(in *Input) { in.User.Via = "bearer"; in.User.Scopes = nil },
	"an empty user":  func(in *Input) { in.User = &User{} },
	"no user":        func(in *Input) { in.User = nil },
	"a route role":   func(in *Input) { in.Route["role"] = "reporter"; in.Route["staff"] = "" },
	"a missing mail": func(in *Input) { in.User.Email = "" },
}

// A rule evaluated with its user's memo answers as without one: the same
// result or the same error, in the first evaluation and in those after.
func TestMemoAnswersAsWithout(t *testing.T) {
	s := mustCompile(t, liftRules)
	if len(s.lifts) < len(liftRules)-1 {
		t.Fatalf("Compile lifted %d subexpressions of %d rules", len(s.lifts), len(liftRules))
	}
	answer := func(name string, in *Input) string {
		ok, err := s.Eval(name, in)
		if err != nil {
			return "error: " + err.Error()
		}
		return fmt.Sprint(ok)
	}
	for edit, f := range inputEdits {
		in := testInput()
		f(in)
		memo := *in
		memo.Memo = s.Memo(in.User)
		for _, name := range s.Names() {
			want := answer(name, in)
			for i := range 2 {
				if got := answer(name, &memo); got != want {
					t.Errorf("Eval(%s) on %s with a memo (evaluation %d): got %s, without %s", name, edit, i+1, got, want)
				}
			}
		}
	}
}

// A memo is used only with its own User and Set, and never past the
// size bounds, where CostLimit still stops a rule.
func TestMemoUse(t *testing.T) {
	s := mustCompile(t, liftRules)
	in := testInput()
	in.Memo = s.Memo(in.User)
	in.User = &User{Sub: "u2", Roles: map[string][]string{}}
	if ok, err := s.Eval("owner_or_admin", in); err != nil || ok {
		t.Errorf("Eval with another User's memo: got %v, %v; want false (u2 owns no /users/u1/)", ok, err)
	}
	other := mustCompile(t, map[string]string{"r": `user.sub == "u1"`})
	in = testInput()
	in.Memo = s.Memo(in.User)
	in.User.Sub = "u1"
	if ok, err := other.Eval("r", in); err != nil || !ok || s.memoFor(in) == nil || other.memoFor(in) != nil {
		t.Errorf("Eval with another Set's memo: got %v, %v; want true, from the input", ok, err)
	}
	if (*Set)(nil).Memo(in.User) != nil || s.Memo(nil) != nil {
		t.Errorf("Memo of a nil Set or User: want nil")
	}

	groups := mustCompile(t, map[string]string{"groups": `user.groups.exists(g, g.startsWith("nope"))`})
	in = testInput()
	in.User.Groups = make([]string, 100*MaxEntries)
	in.Memo = groups.Memo(in.User)
	if ok, err := groups.Eval("groups", in); !errors.Is(err, ErrCostLimit) || ok {
		t.Errorf("Eval past the bounds with a memo: got %v, %v; want false, ErrCostLimit", ok, err)
	}
}

// A memo is safe for concurrent use (run with -race): goroutines share
// one and work out its values at once.
func TestConcurrentMemo(t *testing.T) {
	s := mustCompile(t, liftRules)
	in := testInput()
	memo := s.Memo(in.User)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			in := testInput()
			in.Request.Path = fmt.Sprintf("/users/u%d/", g%2)
			in.User, in.Memo = memo.User(), memo
			for _, name := range s.Names() {
				plain := *in
				plain.Memo = nil
				wantOK, wantErr := s.Eval(name, &plain)
				if ok, err := s.Eval(name, in); ok != wantOK || fmt.Sprint(err) != fmt.Sprint(wantErr) {
					errs <- fmt.Errorf("goroutine %d: Eval(%s): got %v, %v; want %v, %v", g, name, ok, err, wantOK, wantErr)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// liftRule's lifted rule is planned in an environment that declares the
// lifted variables; a rule with nothing to lift has no lifted program.
func TestLiftRuleNothingToLift(t *testing.T) {
	env, err := newEnv()
	if err != nil {
		t.Fatal(err)
	}
	checked, iss := env.Compile(`request.method == "GET"`)
	if iss.Err() != nil {
		t.Fatal(iss.Err())
	}
	p, lifts, err := liftRule(env, checked, 0)
	if p != nil || lifts != nil || err != nil {
		t.Errorf("liftRule: got %v, %v, %v; want nothing", p, lifts, err)
	}
}

// With the user's memo, a three-clause rule that reads user allocates no
// more than a rule reading the request alone (the path it reads is the
// one allocation cel-go's activation makes): the cost
// acceptance, in allocations.
func TestMemoAllocations(t *testing.T) {
	s := mustCompile(t, map[string]string{
		"three":   `user.roles.exists(r, r == "owner") || request.path.startsWith("/users/" + user.sub + "/") || "reader" in user.roles`,
		"request": `request.path.startsWith("/projects/")`,
	})
	in := testInput()
	in.User.Roles["reader"] = nil
	in.Request.Path = "/projects/p1"
	in.Memo = s.Memo(in.User)
	allocs := func(name string) float64 {
		return testing.AllocsPerRun(1000, func() {
			if ok, err := s.Eval(name, in); err != nil || !ok {
				t.Fatalf("Eval(%s): got %v, %v; want true", name, ok, err)
			}
		})
	}
	if got, base := allocs("three"), allocs("request"); got > base+0.5 {
		t.Errorf("Eval(three) with a memo: %.2f allocations, a rule reading the request alone %.2f", got, base)
	}
}

// BenchmarkEval is a three-clause rule on a realistic user (five roles,
// three groups) where the last clause decides: with the user's memo kept
// (a cached session), and without one.
func BenchmarkEval(b *testing.B) {
	s := mustCompile(b, map[string]string{
		"r": `user.roles.exists(r, r == "admin") || request.path.startsWith("/users/" + user.sub + "/") || "mfa" in user.amr`,
	})
	for _, memo := range []bool{true, false} {
		b.Run(fmt.Sprintf("memo=%v", memo), func(b *testing.B) {
			in := testInput()
			in.Request.Path = "/projects/p1"
			if memo {
				in.Memo = s.Memo(in.User)
			}
			b.ReportAllocs()
			for b.Loop() {
				ok, err := s.Eval("r", in)
				if err != nil || !ok {
					b.Fatalf("Eval: got %v, %v; want true", ok, err)
				}
			}
		})
	}
}
