package integration_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
)

// A session too large for the cookies a browser can send through Envoy is
// refused at sign-in with a page and a log line that names the fix, instead
// of a session whose every later request Envoy answers 431. The same user
// signs in fine with session_store_type = "redis".
func TestSessionTooLargeForEnvoy(t *testing.T) {
	var roles []string
	for i := range 400 {
		roles = append(roles, fmt.Sprintf("role-with-a-rather-long-descriptive-name-%03d", i))
	}
	dave := devidp.User{ID: "user-dave", Username: "dave", Password: "dave-password", Email: "dave@example.com", Name: "Dave Roles", Roles: roles}
	st := startStack(t, stackOptions{users: append(devidp.DefaultUsers(), dave)})
	b := newBrowser(t, "dave", "dave-password")
	cb := beginLogin(t, st, b, "/")
	r := b.get(cb.String())
	if r.StatusCode != http.StatusInternalServerError || !strings.Contains(r.Body, "too large") {
		t.Fatalf("callback with a 400-role session: %s, want the sign-in failed page", describe(r))
	}
	noSession(t, b, st, r)
	waitFor(t, "a log line naming the cause and the fix", func() bool {
		logs := st.Server.Logs()
		return strings.Contains(logs, `"reason":"session_too_large"`) && strings.Contains(logs, `session_store_type = \"redis\"`)
	})
	// The browser is not locked out: the next request gets the login
	// redirect, not Envoy's 431.
	if again := b.get(st.Front.URL + "/"); again.StatusCode != http.StatusFound {
		t.Fatalf("after the refused sign-in: %s, want the login redirect", describe(again))
	}

	rd := startRedis(t)
	st2 := startStack(t, stackOptions{users: append(devidp.DefaultUsers(), dave), config: map[string]any{"session_store_type": "redis", "redis_url": "redis://" + rd.addr}})
	b2 := newBrowser(t, "dave", "dave-password")
	got := upstreamSaw(t, st2.login(t, b2, "/"))
	if got.Headers["x-forwarded-user"] != "user-dave" || !strings.HasPrefix(got.Headers["x-forwarded-groups"], roles[0]+",") {
		t.Fatalf("redis mode: upstream user %q, groups %.80q", got.Headers["x-forwarded-user"], got.Headers["x-forwarded-groups"])
	}
}
