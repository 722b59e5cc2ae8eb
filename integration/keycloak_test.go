package integration_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/keycloak"
)

// The walk against Keycloak (keycloak-quarkus-dist from Maven Central, an
// OpenID Certified provider we didn't write), through the real Envoy:
// login, session reuse, refresh with parallel requests (refresh tokens
// rotate and may not be reused), realm roles as groups through the dotted
// claim path realm_access.roles, Keycloak's JWT access tokens as bearer
// tokens, back-channel logout when an administrator ends the user's
// session, and sign-out through Keycloak's logout endpoint. Keycloak gives
// refresh tokens without offline_access, which would make an offline
// session that outlives logouts: offline_access_scope = false.
func TestKeycloakWalk(t *testing.T) {
	kc, err := keycloak.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		kc.Close()
		if t.Failed() {
			t.Logf("keycloak logs:\n%s", kc.Logs())
		}
	})
	cfg := baseConfig(kc.Issuer)
	cfg["client_id"], cfg["client_secret"] = "web", "web-secret"
	cfg["oidc_groups_claim"] = "realm_access.roles"
	cfg["pass_access_token"] = true
	cfg["skip_jwt_bearer_tokens"] = true
	cfg["cookie_refresh"] = "1ms" // every Check with a session refreshes
	cfg["offline_access_scope"] = false
	srv := startServer(t, cfg)
	srv.waitReady(t)
	st := &stack{}
	st.attach(t, srv, stackOptions{front: realEnvoy})
	if err := kc.SetBackchannelLogoutURL(t.Context(), "http://"+srv.HTTPAddr+"/oauth2/backchannel_logout"); err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t, "alice", "alice-password")
	saw := upstreamSaw(t, st.login(t, b, "/first"))
	groups := saw.Headers["x-forwarded-groups"]
	if saw.Headers["x-forwarded-email"] != "alice@example.com" || !strings.Contains(groups, "admin") || !strings.Contains(groups, "reader") {
		t.Fatalf("upstream after the login: %+v", saw.Headers)
	}
	first := saw.Headers["x-forwarded-access-token"]

	// Parallel Checks all due for a refresh: one refresh (Keycloak
	// refuses a reused refresh token), all in.
	allPassAtOnce(t, st, b, 6)
	token := upstreamSaw(t, b.get(st.Front.URL+"/after-refresh")).Headers["x-forwarded-access-token"]
	if token == first || token == "" {
		t.Error("the access token was not refreshed")
	}

	// Keycloak's access tokens are JWTs (aud web through the realm's
	// audience mapper), with the realm roles as groups.
	r := apiCall(t, st, "/api/items", token)
	if got := upstreamSaw(t, r); !strings.Contains(got.Headers["x-forwarded-groups"], "reader") {
		t.Errorf("Keycloak's JWT: %+v", got.Headers)
	}

	// Back-channel logout: an administrator ends alice's session.
	if err := kc.LogOutUser(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the back-channel logout", func() bool {
		return strings.Contains(st.Server.Logs(), `"msg":"back-channel logout"`)
	})
	if r := b.get(st.Front.URL + "/after-logout"); r.StatusCode != http.StatusFound {
		t.Errorf("after Keycloak's back-channel logout: %s, want the login redirect", describe(r))
	}

	// Sign-out through Keycloak's end-session endpoint.
	upstreamSaw(t, st.login(t, b, "/again"))
	r = b.get(st.Front.URL + "/oauth2/sign_out")
	loc, _ := url.Parse(r.Header.Get("Location"))
	if r.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), kc.Issuer+"/protocol/openid-connect/logout") || loc.Query().Get("id_token_hint") == "" {
		t.Fatalf("sign-out: %s", describe(r))
	}
	_, hops := b.follow(loc.String(), hostOf(kc.URL))
	if last := hops[len(hops)-1]; !strings.HasPrefix(last, st.Front.URL+"/") {
		t.Errorf("Keycloak's logout ended at %s, want back at the app", last)
	}
	if r := b.get(st.Front.URL + "/after-sign-out"); r.StatusCode != http.StatusFound {
		t.Errorf("after sign-out: %s", describe(r))
	}
}
