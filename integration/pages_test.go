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
