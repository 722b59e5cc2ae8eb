package authz

import (
	"bytes"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
)

// A key we don't know denies the route (500 naming the key and the one it
// most likely means), and so does a value we can't read; a route with only
// known keys behaves as before; ignored_route_keys are let be.
func TestUnknownRouteKeysNeverOpenTheRoute(t *testing.T) {
	s, jar := newTestServer(t, Config{IgnoredRouteKeys: []string{"x-team"}}, &stubIdP{}, nil)
	cookie := sessionCookie(t, jar, alice())
	for _, tc := range []struct {
		name   string
		ext    map[string]string
		api    bool
		status int
		reason string
		inBody []string
	}{
		{"a typo: allowed_group", map[string]string{"allowed_group": "nobody"}, false, 500, "unknown_route_key", []string{"allowed_group", "did you mean allowed_groups?"}},
		{"a typo, for a program", map[string]string{"allowed_group": "nobody"}, true, 500, "unknown_route_key", []string{`"key":"allowed_group"`, `"did_you_mean":"allowed_groups"`}},
		{"a key of a newer release", map[string]string{"require_device_posture": "managed"}, false, 500, "unknown_route_key", []string{"require_device_posture"}},
		{"max_age, negative", map[string]string{"max_age": "-5"}, false, 500, "bad_route_config", []string{"max_age", "-5"}},
		{"auth, unknown mode", map[string]string{"auth": "anyone"}, true, 500, "bad_route_config", []string{`"key":"auth"`}},
		{"csrf, a typo", map[string]string{"csrf": "of"}, false, 500, "bad_route_config", []string{"csrf"}},
		{"allowed_groups, an empty entry", map[string]string{"allowed_groups": "admin,,editor"}, false, 500, "bad_route_config", []string{"allowed_groups", "extra comma"}},
		{"allowed_organizations, empty", map[string]string{"allowed_organizations": " "}, false, 500, "bad_route_config", []string{"allowed_organizations"}},
		{"allow_if, not a name", map[string]string{"allow_if": "owner-or-admin"}, false, 500, "bad_route_config", []string{"allow_if"}},
		{"upstream_token_header, a header we own", map[string]string{"upstream_token_header": "x-forwarded-user"}, false, 500, "bad_route_config", []string{"upstream_token_header"}},
		{"known keys only", map[string]string{"allowed_groups": "admin", "auth": "any", "csrf": "on"}, false, 0, "session", nil},
		{"an ignored key", map[string]string{"x-team": "blue", "allowed_groups": "admin"}, false, 0, "session", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			headers := map[string]string{"cookie": cookie, "accept": "text/html"}
			if tc.api {
				headers["accept"] = "application/json"
			}
			req := envoyRequest("GET", "/x", headers)
			req.Attributes.ContextExtensions = tc.ext
			got := checkOutcome(t, s, req)
			if got.status != tc.status || got.reason != tc.reason {
				t.Fatalf("got %d %s, want %d %s (%.300q)", got.status, got.reason, tc.status, tc.reason, got.body)
			}
			for _, want := range tc.inBody {
				if !strings.Contains(got.body, want) && !strings.Contains(got.body, htmlEscaped(want)) {
					t.Errorf("body lacks %q: %.400q", want, got.body)
				}
			}
		})
	}
}

func htmlEscaped(s string) string {
	return strings.NewReplacer(`"`, "&#34;", "'", "&#39;").Replace(s)
}

// A misconfigured route answers every request: one log line a minute,
// not one per request.
func TestABadRouteIsLoggedOnceAMinute(t *testing.T) {
	clk := testkit.NewClock(t0)
	var logs bytes.Buffer
	s, jar := newTestServer(t, Config{}, &stubIdP{}, nil)
	s.now, s.logger = clk.Now, slog.New(slog.NewJSONHandler(&logs, nil))
	req := envoyRequest("GET", "/x", map[string]string{"cookie": sessionCookie(t, jar, alice())})
	req.Attributes.ContextExtensions = map[string]string{"allowed_group": "admin"}
	lines := func() int { return strings.Count(logs.String(), `"key":"allowed_group"`) }
	for range 5 {
		checkOutcome(t, s, req)
	}
	if n := lines(); n != 1 {
		t.Fatalf("%d lines for 5 requests, want 1:\n%s", n, logs.String())
	}
	clk.Add(61 * time.Second)
	checkOutcome(t, s, req)
	if n := lines(); n != 2 {
		t.Fatalf("%d lines after a minute, want 2", n)
	}
	if strings.Contains(logs.String(), `"level":"WARN","msg":"not allowed"`) {
		t.Errorf("a decision line per request at WARN: %s", logs.String())
	}
}

// Each distinct set is checked once: the same keys in another order, or
// a set differing in one value, are told apart.
func TestRouteCache(t *testing.T) {
	c := &routeCache{}
	a := c.route(map[string]string{"allowed_groups": "admin", "max_age": "60"})
	b := c.route(map[string]string{"max_age": "60", "allowed_groups": "admin"})
	if a != b {
		t.Error("the same set in another order was parsed again")
	}
	d := c.route(map[string]string{"allowed_groups": "admin", "max_age": "61"})
	if d == a || d.policy.maxAge != 61 {
		t.Errorf("another value got the cached entry: %+v", d.policy)
	}
	if e := c.route(map[string]string{"allowed_groups": "admin", "max_age": "60", "x": "1"}); e.problem == nil || e.problem.Key != "x" {
		t.Errorf("a set with one more key: %+v", e.problem)
	}
}

// README's per-route table lists every route key, and no other.
func TestREADMEListsEveryRouteKey(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(readme), "### Per-route policy (Envoy `context_extensions`)")
	if !ok {
		t.Fatal("README has no per-route policy section")
	}
	_, table, ok = strings.Cut(table, "| key | value | effect |")
	if !ok {
		t.Fatal("README's per-route section has no key table")
	}
	table, _, _ = strings.Cut(table, "\n\n")
	var documented []string
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|").FindAllStringSubmatch(table, -1) {
		documented = append(documented, m[1])
	}
	var keys []string
	for _, k := range RouteKeys() {
		keys = append(keys, k.Name)
	}
	slices.Sort(documented)
	slices.Sort(keys)
	if !slices.Equal(documented, keys) {
		t.Errorf("README's per-route table lists %v; the product's keys are %v", documented, keys)
	}
}
