package integration_test

import (
	"html"
	"strings"
	"testing"
)

// Through the real Envoy: a route with a typo in a key (allowed_group)
// and one with a key of a newer release answer every request with the
// 500 page naming the key (a program gets JSON), and never reach the
// upstream; a route with only known keys behaves as before.
func TestUnknownRouteKeysThroughEnvoy(t *testing.T) {
	st := rulesStack(t, nil,
		ruleRoute{"/typo/", map[string]string{"allowed_group": "admin"}},
		ruleRoute{"/newer/", map[string]string{"require_device_posture": "managed"}},
		ruleRoute{"/known/", map[string]string{"allowed_groups": "admin", "csrf": "on"}},
	)
	alice := newBrowser(t, "alice", "alice-password")
	if got := upstreamSaw(t, st.login(t, alice, "/known/")); got.Headers["x-forwarded-user"] != "user-alice" {
		t.Fatalf("alice's login landed as %q", got.Headers["x-forwarded-user"])
	}
	bob := newBrowser(t, "bob", "bob-password")
	st.login(t, bob, "/")
	// Control: the counter refusedBy reads counts what reaches the upstream.
	before := upstreamRequests(t, st)
	upstreamSaw(t, alice.get(st.Front.URL+"/known/x"))
	if after := upstreamRequests(t, st); after != before+1 {
		t.Fatalf("echo requests %d → %d after one allowed request, want one more", before, after)
	}
	refusedBy(t, st, "bob on a known-keys route he lacks the group for", 403, func() *response { return bob.get(st.Front.URL + "/known/x") })

	for _, tc := range []struct{ path, key, nearest string }{
		{"/typo/x", "allowed_group", "allowed_groups"},
		{"/newer/x", "require_device_posture", ""},
	} {
		page := refusedBy(t, st, "a browser on "+tc.path, 500, func() *response { return alice.get(st.Front.URL + tc.path) })
		body := html.UnescapeString(page.Body)
		if !strings.Contains(body, `unknown key "`+tc.key+`"`) || (tc.nearest != "" && !strings.Contains(body, "did you mean "+tc.nearest+"?")) {
			t.Errorf("%s: the page doesn't name the key (and the one it means): %.600s", tc.path, body)
		}
		api := refusedBy(t, st, "a program on "+tc.path, 500, func() *response {
			return alice.do("GET", st.Front.URL+tc.path, map[string][]string{"Accept": {"application/json"}})
		})
		if !strings.Contains(api.Body, `"error":"unknown_route_key"`) || !strings.Contains(api.Body, `"key":"`+tc.key+`"`) {
			t.Errorf("%s: JSON: %s", tc.path, api.Body)
		}
	}
}
