package integration_test

import (
	"strings"
	"testing"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/keycloak"
)

// TestKeycloakWalk is the walk against Keycloak (keycloak-quarkus-dist from Maven Central, an
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
	walkProvider(t, providerWalk{
		idp:          "Keycloak",
		issuer:       kc.Issuer,
		clientSecret: "web-secret",
		config: map[string]any{
			"oidc_groups_claim":    "realm_access.roles",
			"offline_access_scope": false,
		},
		register: func(t *testing.T, st *stack) {
			if err := kc.SetBackchannelLogoutURL(t.Context(), "http://"+st.Server.HTTPAddr+"/oauth2/backchannel_logout"); err != nil {
				t.Fatal(err)
			}
		},
		signedIn: func(t *testing.T, headers map[string]string) {
			groups := headers["x-forwarded-groups"]
			if headers["x-forwarded-email"] != "alice@example.com" || !strings.Contains(groups, "admin") || !strings.Contains(groups, "reader") {
				t.Fatalf("upstream after the login: %+v", headers)
			}
		},
		bearer: func(t *testing.T, st *stack, token string) {
			// Keycloak's access tokens are JWTs (aud web through the
			// realm's audience mapper), with the realm roles as groups.
			r := apiCall(t, st, "/api/items", token)
			if got := upstreamSaw(t, r); !strings.Contains(got.Headers["x-forwarded-groups"], "reader") {
				t.Errorf("Keycloak's JWT: %+v", got.Headers)
			}
		},
		endSession: func(t *testing.T, _ *browser) {
			// An administrator ends alice's session.
			if err := kc.LogOutUser(t.Context(), "alice"); err != nil {
				t.Fatal(err)
			}
		},
		logoutEndpoint: kc.Issuer + "/protocol/openid-connect/logout",
		logoutHosts:    []string{hostOf(kc.URL)},
	})
}
