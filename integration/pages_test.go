package integration_test

import (
	"net/http"
	"strings"
	"testing"
)

// Pages that leave nobody stuck, through the real Envoy: who is signed in,
// what the page asks for, and the way forward.
func TestPagesSayWhoWhatAndTheWayForward(t *testing.T) {
	st := startStack(t, stackOptions{config: map[string]any{"allowed_groups": []string{"admin"}, "skip_provider_button": false}})
	b := newBrowser(t, "bob", "bob-password")

	// bob (a reader) at an admins-only app: the 403 page names him, the
	// roles the app asks for, and offers to sign out or switch accounts.
	resp, _ := b.follow(st.Front.URL + "/oauth2/start?rd=%2Freports")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("bob's sign-in: %s, want the 403 page", describe(resp))
	}
	for _, want := range []string{"Access denied", "signed in as bob,", "needs one of these roles: admin", `href="/oauth2/sign_out"`, "Sign out or switch account"} {
		if !strings.Contains(resp.Body, want) {
			t.Errorf("the 403 page lacks %q:\n%s", want, resp.Body)
		}
	}

	// /oauth2/userinfo without a session: 401 (the contract), with the
	// sign-in page as the body for a browser, JSON for a program.
	anon := newBrowser(t, "", "")
	if r := anon.do(http.MethodGet, st.Front.URL+"/oauth2/userinfo", http.Header{"Accept": {"text/html"}}); r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Body, "Sign in with") {
		t.Errorf("userinfo for a browser without a session: %s, want 401 with the sign-in page", describe(r))
	}
	r := anon.do(http.MethodGet, st.Front.URL+"/oauth2/userinfo", http.Header{"Accept": {"application/json"}})
	if r.StatusCode != http.StatusUnauthorized || r.Header.Get("Content-Type") != "application/json" || !strings.Contains(r.Body, `"error":"no_session"`) {
		t.Errorf("userinfo for a program without a session: %s, want a 401 JSON body", describe(r))
	}
}

// A sign-out ends on a page that says so, not straight back at the IdP.
func TestSignOutEndsOnASignedOutPage(t *testing.T) {
	st := startStack(t, stackOptions{}) // skip_provider_button = true: a plain "/" would go to the IdP
	b := newBrowser(t, "alice", "alice-password")
	st.login(t, b, "/")
	resp, hops := b.follow(st.Front.URL+"/oauth2/sign_out", mustParse(t, st.Front.URL).Host, mustParse(t, st.IdP.Issuer).Host)
	if resp == nil || resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, "You are signed out.") || !strings.Contains(resp.Body, "/oauth2/start?rd=%2F") {
		t.Fatalf("sign-out ended at %v: %v, want our signed-out page with a way to sign in again", hops[len(hops)-1], describe(resp))
	}
}

// Envoy's own refusals carry a page like ours (local_reply_config in the
// shipped envoy.yaml), while our own answers keep theirs.
func TestEnvoysOwnRefusalsCarryOurPage(t *testing.T) {
	if defaultFront() != realEnvoy {
		t.Skip("local_reply_config is Envoy's: the emulator follows it in TestContractWalk")
	}
	st := startStack(t, stackOptions{config: map[string]any{"allowed_groups": []string{"admin", "reader"}}})
	// pat (admin, not reader) passes ext_authz; Envoy's RBAC on /reports/
	// lets only readers in.
	pat := newBrowser(t, "pat", "pat-password")
	st.login(t, pat, "/")
	r := pat.get(st.Front.URL + "/reports/q3")
	if r.StatusCode != http.StatusForbidden || !strings.Contains(r.Body, "not open to your account") || !strings.Contains(r.Body, `href="/oauth2/sign_out"`) ||
		!strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") || strings.Contains(r.Body, "RBAC: access denied") {
		t.Errorf("Envoy's RBAC refusal: %s, want our page", describe(r))
	}
	// Our own 403 keeps its own page (who, what, sign-out).
	bob := newBrowser(t, "bob", "bob-password")
	st2 := startStack(t, stackOptions{config: map[string]any{"allowed_groups": []string{"admin"}}})
	resp, _ := bob.follow(st2.Front.URL + "/x")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Body, "needs one of these roles: admin") {
		t.Errorf("our own 403 page was replaced: %s", describe(resp))
	}
	// Headers over Envoy's limit (HTTP/1.1): 431 with the page.
	status, body := rawHTTP(t, st.Front.URL, "GET / HTTP/1.1\nHost: 127.0.0.1\nCookie: big="+strings.Repeat("a", 62<<10)+"\nConnection: close\n\n")
	if status != http.StatusRequestHeaderFieldsTooLarge || !strings.Contains(body, "Clear this site") {
		t.Errorf("headers over the limit: %d %.200s, want 431 with our page", status, body)
	}
	// ext_authz unreachable: status_on_error 503 with the page.
	st.Server.Stop(5e9)
	r = newBrowser(t, "", "").get(st.Front.URL + "/x")
	if r.StatusCode != http.StatusServiceUnavailable || !strings.Contains(r.Body, "can&#39;t check your sign-in") {
		t.Errorf("the Check failing: %s, want 503 with our page", describe(r))
	}
}
