package integration_test

import (
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
)

// claim_headers through the real Envoy: each app sends the claims it
// names, for a browser session and for a bearer token; a missing claim
// sends nothing, and no client-sent copy of a configured header reaches
// the upstream. A reload with a bad header name is refused.

const (
	rolesClaim  = "urn:zitadel:iam:org:project:roles"
	tenantClaim = "urn:zitadel:iam:user:resourceowner:id"
)

// claimUsers are the default users, alice with a list claim (teams).
func claimUsers() []devidp.User {
	users := devidp.DefaultUsers()
	for i := range users {
		if users[i].Username == "alice" {
			users[i].Claims = map[string]any{"teams": []any{"blue", "red"}}
		}
	}
	return users
}

// claimConfig: the default app sends the roles, the teams, a claim alice
// lacks and the ID token; app1 the organization and the teams.
func claimConfig() map[string]any {
	app1 := appEntry("app1", "app1.localhost")
	app1["scope"] = "openid email profile " + "urn:zitadel:iam:user:resourceowner"
	app1["claim_headers"] = map[string]string{"x-tenant": tenantClaim, "x-team-list": "teams"}
	return map[string]any{
		"skip_jwt_bearer_tokens": true,
		"claim_headers":          map[string]string{"x-roles": rolesClaim, "x-teams": "teams", "x-department": "department", "x-user-locale": "locale"},
		"id_token_header":        "x-id-token",
		"apps":                   []map[string]any{app1},
	}
}

// forgedHeaders are client-sent copies of every header either app sends.
var forgedHeaders = map[string]string{
	"X-Roles": "superuser", "X-Teams": "all", "X-Department": "board", "X-Id-Token": "forged",
	"X-Tenant": "other-org", "X-Team-List": "all", "X-User-Locale": "xx",
}

// wantHeaders checks the upstream's view of forgedHeaders' names: those
// in want with their values ("JWT": a JWT, not the forged one), the others
// not at all.
func wantHeaders(t *testing.T, what string, r *response, want map[string]string) {
	t.Helper()
	saw := upstreamSaw(t, r)
	for name := range forgedHeaders {
		name = strings.ToLower(name)
		got, sent := saw.Headers[name]
		switch w, ok := want[name]; {
		case ok && w == "JWT" && strings.Count(got, ".") == 2 && got != "forged":
		case ok && got != w:
			t.Errorf("%s: upstream %s = %.60q, want %.60q", what, name, got, w)
		case !ok && sent:
			t.Errorf("%s: upstream got %s = %q, want none", what, name, got)
		}
	}
}

func TestClaimHeadersThroughEnvoy(t *testing.T) {
	st := startStack(t, stackOptions{config: claimConfig(), users: claimUsers(),
		clients: []devidp.Client{devidp.DefaultClient(), appClient("app1")}})
	forged := http.Header{}
	for k, v := range forgedHeaders {
		forged.Set(k, v)
	}
	b := newBrowser(t, "alice", "alice-password")
	maps.Copy(b.header, forged) // on every request, the login's too

	// Sessions: the default app, then app1 with its own headers.
	r, _ := b.follow(st.Front.URL + "/")
	wantHeaders(t, "default app, session", r, map[string]string{"x-roles": "admin,reader", "x-teams": "blue,red", "x-id-token": "JWT", "x-user-locale": "en",
		// Not the default app's headers: they pass as the client sent them.
		"x-tenant": "other-org", "x-team-list": "all"})
	r, _ = b.follow(st.appURL("app1") + "/")
	// app1 takes id_token_header from the top level.
	wantHeaders(t, "app1, session", r, map[string]string{"x-tenant": devidp.OrgID, "x-team-list": "blue,red", "x-id-token": "JWT",
		"x-roles": "superuser", "x-teams": "all", "x-department": "board", "x-user-locale": "xx"})

	// Bearer tokens: the default app's opaque token (introspection), app1's
	// JWT; neither has an ID token.
	opaque := st.accessToken(t, devidp.DefaultClient(), "alice")
	jwt, err := st.IdP.Tokens(t.Context(), appClient("app1"), "alice", "alice-password", "openid", "urn:zitadel:iam:user:resourceowner")
	if err != nil {
		t.Fatal(err)
	}
	api := newBrowser(t, "", "")
	for _, tc := range []struct {
		what, url, token string
		want             map[string]string
	}{
		{"default app, introspected token", st.Front.URL + "/api", opaque, map[string]string{"x-roles": "admin,reader", "x-teams": "blue,red", "x-user-locale": "en",
			"x-tenant": "other-org", "x-team-list": "all"}},
		{"app1, JWT", st.appURL("app1") + "/api", jwt.AccessToken, map[string]string{"x-tenant": devidp.OrgID, "x-team-list": "blue,red",
			"x-roles": "superuser", "x-teams": "all", "x-department": "board", "x-user-locale": "xx"}},
	} {
		h := forged.Clone()
		h.Set("Authorization", "Bearer "+tc.token)
		h.Set("Accept", "application/json")
		wantHeaders(t, tc.what, api.do(http.MethodGet, tc.url, h), tc.want)
	}

	// A bad header name on reload is refused; the running headers stay.
	bad := baseConfig(st.IdP.Issuer)
	maps.Copy(bad, claimConfig())
	bad["claim_headers"] = map[string]string{"x-roles": rolesClaim, "x-forwarded-user": "sub"}
	rewrite(t, st.Server.ConfigPath, bad)
	waitFor(t, "the refused reload, naming the key and the header", func() bool {
		logs := st.Server.Logs()
		return strings.Contains(logs, `"msg":"configuration reload refused; the running configuration stays"`) &&
			strings.Contains(logs, `"error":"config: claim_headers: \"x-forwarded-user\" is one of our identity headers"`)
	})
	wantHeaders(t, "default app after the refused reload", b.get(st.Front.URL+"/"), map[string]string{"x-roles": "admin,reader", "x-teams": "blue,red", "x-id-token": "JWT", "x-user-locale": "en",
		"x-tenant": "other-org", "x-team-list": "all"})
}
