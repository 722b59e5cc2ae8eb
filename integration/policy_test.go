package integration_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
)

// ZITADEL-native policy through the real Envoy: organizations, roles per
// organization, step-up to a fresh or multi-factor sign-in, and the
// verdict's dynamic metadata in Envoy's access log and RBAC filter.

const orgScope = "urn:zitadel:iam:org:id:" + devidp.OrgID

// loginScopes is the scope of the IdP authorization request a browser
// without a session is sent to.
func loginScopes(t *testing.T, r *response) []string {
	t.Helper()
	if r.StatusCode != http.StatusFound {
		t.Fatalf("want a login redirect, got %s", describe(r))
	}
	loc, _ := url.Parse(r.Header.Get("Location"))
	return strings.Fields(loc.Query().Get("scope"))
}

func TestOrganizationRestriction(t *testing.T) {
	st := startStack(t, stackOptions{
		config:  map[string]any{"zitadel_organization_id": devidp.OrgID, "skip_jwt_bearer_tokens": true, "extra_jwt_audiences": []string{jwtClient.ID}},
		clients: []devidp.Client{devidp.DefaultClient(), jwtClient},
	})
	scopes := loginScopes(t, newBrowser(t, "", "").get(st.Front.URL+"/"))
	if !contains(scopes, orgScope) || !contains(scopes, "urn:zitadel:iam:user:resourceowner") {
		t.Fatalf("login scopes %v lack the organization's", scopes)
	}
	// A user of the organization gets in.
	alice := newBrowser(t, "alice", "alice-password")
	upstreamSaw(t, st.login(t, alice, "/"))

	// A user of another organization can't sign in at ZITADEL for this
	// one (the dev IdP, like ZITADEL, refuses her at its login form)...
	eve := newBrowser(t, "eve", "eve-password")
	if r, _ := eve.follow(st.Front.URL + "/"); r == nil || r.StatusCode == http.StatusOK && strings.Contains(r.Body, `"x-forwarded-user"`) {
		t.Fatalf("eve of another organization got in: %s", describe(r))
	}
	// ...and should an ID token of another organization come back anyway,
	// no session is made.
	st.IdP.SetTamper(tokenTamper(t, st.IdP, resign(t, st.IdP, func(c map[string]any) {
		c["urn:zitadel:iam:user:resourceowner:id"] = devidp.OtherOrgID
	})))
	bob := newBrowser(t, "bob", "bob-password")
	r, _ := bob.follow(st.Front.URL + "/")
	st.IdP.SetTamper(nil)
	if r.StatusCode != http.StatusForbidden {
		t.Fatalf("an ID token of another organization: %s, want the 403 page", describe(r))
	}
	if names := bob.cookieNames(st.Front.URL + "/"); contains(names, "_oauth2_proxy") {
		t.Errorf("a session was made for another organization's user: %v", names)
	}
	waitFor(t, "the log line", func() bool {
		return strings.Contains(st.Server.Logs(), `"reason":"wrong_organization","sub":"user-bob"`)
	})

	// Bearer tokens: the organization claim must be there and ours.
	for _, tc := range []struct {
		user string
		want int
	}{{"alice", http.StatusOK}, {"olga", http.StatusForbidden}} {
		tok, err := st.IdP.Tokens(t.Context(), jwtClient, tc.user, tc.user+"-password", "openid", "email", "profile", "urn:zitadel:iam:user:resourceowner")
		if err != nil {
			t.Fatal(err)
		}
		if r := apiCall(t, st, "/data", tok.AccessToken); r.StatusCode != tc.want {
			t.Errorf("%s's token: %s, want %d", tc.user, describe(r), tc.want)
		}
	}
	noClaim := st.accessToken(t, jwtClient, "alice") // no resourceowner scope: no organization claim
	if r := apiCall(t, st, "/data", noClaim); r.StatusCode != http.StatusForbidden {
		t.Errorf("a token without the organization claim: %s, want 403", describe(r))
	}
}

// allowed_groups entries role@orgId match a role only as that organization
// granted it.
func TestRolesPerOrganization(t *testing.T) {
	st := startStack(t, stackOptions{config: map[string]any{"allowed_groups": []string{"reader@" + devidp.OtherOrgID}}})
	olga := newBrowser(t, "olga", "olga-password") // reader, granted by the other organization
	if saw := upstreamSaw(t, st.login(t, olga, "/")); saw.Headers["x-forwarded-groups"] != "reader" {
		t.Errorf("olga's groups: %q", saw.Headers["x-forwarded-groups"])
	}
	bob := newBrowser(t, "bob", "bob-password") // reader too, but granted by OrgID
	if r, _ := bob.follow(st.Front.URL + "/"); r.StatusCode != http.StatusForbidden {
		t.Errorf("bob's reader@%s against reader@%s: %s, want 403", devidp.OrgID, devidp.OtherOrgID, describe(r))
	}
}

// /billing/ (max_age: 300): a session whose sign-in is older goes back to
// the IdP with prompt=login and max_age; an ID token whose auth_time is
// still too old is refused; a fresh one gets through.
func TestStepUpMaxAge(t *testing.T) {
	ip := startInProcess(t, inprocOptions{})
	alice := newBrowser(t, "alice", "alice-password")
	resp, _ := alice.follow(ip.Front + "/billing/invoices")
	upstreamSaw(t, resp) // a fresh sign-in: in

	ip.Clock.Add(10 * time.Minute)
	r := alice.get(ip.Front + "/billing/invoices")
	// A page says why first, with the sign-in at the IdP prepared behind
	// its button.
	if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Body, "needs a recent sign-in (within the last 5 minutes)") {
		t.Fatalf("10 minutes later: %s, want the step-up page", describe(r))
	}
	loc, _ := url.Parse(nextLink(t, r))
	if q := loc.Query(); q.Get("prompt") != "login" || q.Get("max_age") != "300" {
		t.Fatalf("step-up link %s: want prompt=login and max_age=300", loc)
	}
	upstreamSaw(t, alice.get(ip.Front+"/elsewhere")) // other routes still take the session

	// The IdP's clock is ours less 10 minutes: its auth_time is too old.
	resp, _ = alice.follow(loc.String())
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Body, "fresh sign-in") {
		t.Fatalf("a stale auth_time after the step-up: %s, want the 403 page", describe(resp))
	}
	// An IdP that does sign the user in again: in, with the new session.
	ip.IdP.SetTamper(tokenTamper(t, ip.IdP, resign(t, ip.IdP, func(c map[string]any) {
		c["auth_time"] = ip.Clock.Now().Unix()
	})))
	defer ip.IdP.SetTamper(nil)
	resp, _ = alice.follow(nextLink(t, alice.get(ip.Front+"/billing/invoices")))
	if saw := upstreamSaw(t, resp); saw.Path != "/billing/invoices" {
		t.Fatalf("after a fresh sign-in: %+v", saw)
	}
	// API callers get RFC 9470's challenge instead of a redirect.
	ip.Clock.Add(10 * time.Minute)
	r = alice.do(http.MethodGet, ip.Front+"/billing/invoices", http.Header{"Accept": {"application/json"}})
	if r.StatusCode != http.StatusUnauthorized || r.Header.Get("Www-Authenticate") != `Bearer error="insufficient_user_authentication", error_description="A more recent sign-in is required", max_age="300"` {
		t.Errorf("API caller: %s", describe(r))
	}
}

// /admin/ (allowed_groups: admin, required_amr: mfa): a password-only
// admin is sent back to the IdP, and told on a page when the new sign-in
// still has no second factor; an MFA admin goes straight through.
func TestStepUpToMFA(t *testing.T) {
	// pat: an admin who signs in with a password only.
	st := startStack(t, stackOptions{config: map[string]any{"step_up_acr_values": "urn:zitadel:iam:mfa"}})
	alice := newBrowser(t, "alice", "alice-password")
	upstreamSaw(t, st.login(t, alice, "/"))
	upstreamSaw(t, alice.get(st.Front.URL+"/admin/panel"))

	b := newBrowser(t, "pat", "pat-password")
	upstreamSaw(t, st.login(t, b, "/"))
	r := b.get(st.Front.URL + "/admin/panel")
	if r.StatusCode != http.StatusUnauthorized || !strings.Contains(r.Body, "needs a sign-in with mfa") {
		t.Fatalf("password-only admin on /admin/: %s, want the step-up page", describe(r))
	}
	loc, _ := url.Parse(nextLink(t, r))
	if loc.Query().Get("prompt") != "login" || loc.Query().Get("acr_values") != "urn:zitadel:iam:mfa" {
		t.Fatalf("the step-up page's link %s: want the IdP with prompt=login and acr_values", loc)
	}
	if r := b.do(http.MethodGet, st.Front.URL+"/admin/panel", http.Header{"Accept": {"application/json"}}); r.StatusCode != http.StatusUnauthorized ||
		!strings.Contains(r.Header.Get("Www-Authenticate"), `error="insufficient_user_authentication"`) || !strings.Contains(r.Header.Get("Www-Authenticate"), `acr_values="urn:zitadel:iam:mfa"`) {
		t.Errorf("API caller without MFA: %s", describe(r))
	}
	resp, _ := b.follow(loc.String())
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Body, "Stronger sign-in needed") || !strings.Contains(resp.Body, "mfa") ||
		!strings.Contains(nextLink(t, resp), "/admin/panel") || !strings.Contains(resp.Body, `href="/oauth2/sign_out"`) {
		t.Fatalf("after a sign-in still without MFA: %s, want the explaining page with a way forward", describe(resp))
	}
	upstreamSaw(t, b.get(st.Front.URL+"/other")) // the new session serves the other routes
	waitFor(t, "the step-up log line", func() bool { return strings.Contains(st.Server.Logs(), `"reason":"step_up_failed"`) })
}

// nextLink is the way forward a page of ours offers (its id="next" button).
func nextLink(t *testing.T, r *response) string {
	t.Helper()
	m := regexp.MustCompile(`id="next" href="([^"]+)"`).FindStringSubmatch(r.Body)
	if m == nil {
		t.Fatalf("no way forward on the page: %s", describe(r))
	}
	return html.UnescapeString(m[1])
}

// Envoy reads our verdict: its access log shows the metadata of allowed
// and denied answers, and its RBAC filter lets only readers into /reports/.
func TestEnvoyUsesTheVerdictsMetadata(t *testing.T) {
	st := startStack(t, stackOptions{front: realEnvoy}) // the emulator has no RBAC filter and no access log
	alice := newBrowser(t, "alice", "alice-password")
	upstreamSaw(t, st.login(t, alice, "/"))
	upstreamSaw(t, alice.get(st.Front.URL+"/metadata-check"))
	waitFor(t, "the access log line of alice's request", func() bool {
		return strings.Contains(st.Front.Logs(), "[access] GET /metadata-check 200 sub=user-alice reason=session app=default")
	})
	newBrowser(t, "", "").get(st.Front.URL + "/anonymous")
	waitFor(t, "the access log line of a denied request", func() bool {
		return strings.Contains(st.Front.Logs(), "[access] GET /anonymous 302 sub=- reason=login_redirect app=default")
	})

	upstreamSaw(t, alice.get(st.Front.URL+"/reports/q4")) // reader
	eve := newBrowser(t, "eve", "eve-password")           // no roles
	upstreamSaw(t, st.login(t, eve, "/"))
	if r := eve.get(st.Front.URL + "/reports/q4"); r.StatusCode != http.StatusForbidden || !strings.Contains(r.Body, "not open to your account") {
		t.Errorf("eve on /reports/ (RBAC: groups must hold reader): %s, want Envoy's RBAC 403 with the shipped page", describe(r))
	}
	waitFor(t, "the access log line of the RBAC refusal", func() bool {
		return strings.Contains(st.Front.Logs(), "[access] GET /reports/q4 403")
	})
}
