package integration_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/hydra"
)

var hydraUsers = []hydra.User{{Subject: "alice", Password: "alice-password", Email: "alice@example.com", Groups: []string{"admin", "reader"}}}

const hydraSecret = "web-secret-long-enough-for-hydra"

// TestHydraWalk walks Ory Hydra v2.3.0, an OpenID Certified provider we
// didn't write, through the real Envoy: login, session reuse, refresh with
// parallel requests, sign-out through Hydra's logout flow, back-channel
// logout (Hydra's tokens carry no exp), opaque bearer tokens through
// introspection_url (Hydra lists no introspection endpoint), JWT bearer
// tokens with scp and ext claims; the issuer with and without a trailing
// slash.
func TestHydraWalk(t *testing.T) {
	for _, slash := range []bool{false, true} {
		t.Run(map[bool]string{false: "issuer without trailing slash", true: "issuer with trailing slash"}[slash], func(t *testing.T) {
			h, err := hydra.Start(hydraUsers, slash)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				h.Close()
				if t.Failed() {
					t.Logf("hydra logs:\n%s", h.Logs())
				}
			})
			walkProvider(t, providerWalk{
				idp:          "Hydra",
				issuer:       h.Issuer,
				clientSecret: hydraSecret,
				config: map[string]any{
					// Hydra lists no introspection endpoint: it serves one on
					// its admin port.
					"introspection_url":    h.Admin + "/admin/oauth2/introspect",
					"extra_jwt_audiences":  []string{"api"},
					"oidc_groups_claim":    "ext.groups", // Hydra's extra access-token claims
					"refresh_grace_period": "1m",
				},
				register: func(t *testing.T, st *stack) {
					err := h.CreateClient(t.Context(), hydra.Client{
						ID: "web", Secret: hydraSecret,
						RedirectURIs:           []string{st.Front.URL + "/oauth2/callback"},
						PostLogoutRedirectURIs: []string{st.Front.URL + "/"},
						BackchannelLogoutURI:   "http://" + st.Server.HTTPAddr + "/oauth2/backchannel_logout",
					})
					if err != nil {
						t.Fatal(err)
					}
				},
				signedIn: func(t *testing.T, headers map[string]string) {
					if headers["x-forwarded-user"] != "alice" || headers["x-forwarded-email"] != "alice@example.com" {
						t.Fatalf("upstream after the login: %+v", headers)
					}
				},
				bearer: func(t *testing.T, st *stack, opaque string) {
					// Hydra's session access token is opaque: introspected at
					// introspection_url.
					if r := apiCall(t, st, "/api/items", opaque); r.StatusCode != http.StatusOK {
						t.Errorf("Hydra's opaque token via introspection_url: %s", describe(r))
					}
					// A JWT access token with scp and ext claims.
					r := apiCall(t, st, "/api/items", hydraJWT(t, h))
					if got := upstreamSaw(t, r); got.Headers["x-forwarded-user"] != "alice" || got.Headers["x-forwarded-groups"] != "admin,reader" {
						t.Errorf("Hydra's JWT (groups in ext.groups): %+v", got.Headers)
					}
				},
				endSession: func(t *testing.T, b *browser) {
					// Hydra's own logout flow, in a browser with alice's Hydra
					// session; Hydra's logout token carries no exp.
					logout := newBrowserSharing(b)
					if resp, _ := logout.follow(strings.TrimSuffix(h.Issuer, "/") + "/oauth2/sessions/logout"); resp == nil {
						t.Fatal("Hydra's logout flow left the test")
					}
				},
				logoutEndpoint: strings.TrimSuffix(h.Issuer, "/") + "/oauth2/sessions/logout",
				logoutHosts:    []string{hostOf(h.Issuer), hostOf(h.AppURL())},
			})
		})
	}
}

// newBrowserSharing is a browser with b's cookies (Hydra's session cookie).
func newBrowserSharing(b *browser) *browser {
	nb := newBrowser(b.t, b.user, b.password)
	nb.jar, nb.client.Jar = b.jar, b.jar
	return nb
}

// hydraJWT is a JWT access token of alice for the API (audience api,
// scope read:items), from a client Hydra issues JWTs to.
func hydraJWT(t *testing.T, h *hydra.Server) string {
	t.Helper()
	redirect := "http://127.0.0.1:1/cb"
	if err := h.CreateClient(t.Context(), hydra.Client{ID: "api-jwt", Secret: hydraSecret, RedirectURIs: []string{redirect}, JWTAccessTokens: true, Audience: []string{"api"}}); err != nil {
		t.Fatal(err)
	}
	conf := &oauth2.Config{ClientID: "api-jwt", ClientSecret: hydraSecret, Scopes: []string{"openid", "read:items"}, RedirectURL: redirect,
		Endpoint: oauth2.Endpoint{AuthURL: strings.TrimSuffix(h.Issuer, "/") + "/oauth2/auth", TokenURL: strings.TrimSuffix(h.Issuer, "/") + "/oauth2/token"}}
	authURL := conf.AuthCodeURL("state-of-at-least-8", oauth2.SetAuthURLParam("audience", "api"))
	// A browser without Envoy: follow Hydra, our login form and consent
	// until the redirect to the client.
	b := newBrowser(t, "alice", "alice-password")
	_, hops := b.follow(authURL, hostOf(h.Issuer), hostOf(h.AppURL()))
	cb, _ := url.Parse(hops[len(hops)-1])
	if !strings.HasPrefix(cb.String(), redirect) {
		t.Fatalf("the code flow at Hydra ended at %s", cb)
	}
	tok, err := conf.Exchange(context.Background(), cb.Query().Get("code"))
	if err != nil {
		t.Fatalf("exchange at Hydra: %v (callback %s)", err, cb)
	}
	return tok.AccessToken
}
