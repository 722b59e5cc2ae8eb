package integration_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"golang.org/x/oauth2"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/hydra"
)

// The walk against Ory Hydra v2.3.0, an OpenID Certified provider we
// didn't write, through the real Envoy: login, session reuse, refresh with
// parallel requests, sign-out through Hydra's logout flow, back-channel
// logout (Hydra's tokens carry no exp), opaque bearer tokens through
// introspection_url (Hydra lists no introspection endpoint), JWT bearer
// tokens with scp and ext claims; the issuer with and without a trailing
// slash.

var hydraUsers = []hydra.User{{Subject: "alice", Password: "alice-password", Email: "alice@example.com", Groups: []string{"admin", "reader"}}}

const hydraSecret = "web-secret-long-enough-for-hydra"

// allPassAtOnce sends n Checks with b's cookie at once (each due for a
// refresh in the provider walks: one rotation at the IdP) and fails unless
// all of them pass.
func allPassAtOnce(t *testing.T, st *stack, b *browser, n int) {
	t.Helper()
	cookie := cookieHeader(b, st.Front.URL)
	var wg sync.WaitGroup
	codes := make(chan int, n)
	for range n {
		wg.Go(func() {
			r := rawGet(t, st.Front.URL+"/parallel", cookie, "text/html")
			r.Body.Close()
			codes <- r.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Fatalf("a parallel Check with a refresh due: %d", c)
		}
	}
}

// hydraStack is Hydra, our server configured for it, and the real Envoy.
func hydraStack(t *testing.T, trailingSlash bool) (*stack, *hydra.Server) {
	t.Helper()
	h, err := hydra.Start(hydraUsers, trailingSlash)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Close()
		if t.Failed() {
			t.Logf("hydra logs:\n%s", h.Logs())
		}
	})
	cfg := baseConfig(h.Issuer)
	cfg["client_id"], cfg["client_secret"] = "web", hydraSecret
	cfg["pass_access_token"] = true
	cfg["skip_jwt_bearer_tokens"] = true
	cfg["introspection_url"] = h.Admin + "/admin/oauth2/introspect"
	cfg["extra_jwt_audiences"] = []string{"api"}
	cfg["oidc_groups_claim"] = "ext.groups" // Hydra's extra access-token claims; sessions: see below
	cfg["cookie_refresh"] = "1ms"           // every Check with a session refreshes
	cfg["refresh_grace_period"] = "1m"
	srv := startServer(t, cfg)
	srv.waitReady(t)
	st := &stack{}
	st.attach(t, srv, stackOptions{front: realEnvoy})
	err = h.CreateClient(t.Context(), hydra.Client{
		ID: "web", Secret: hydraSecret,
		RedirectURIs:           []string{st.Front.URL + "/oauth2/callback"},
		PostLogoutRedirectURIs: []string{st.Front.URL + "/"},
		BackchannelLogoutURI:   "http://" + srv.HTTPAddr + "/oauth2/backchannel_logout",
	})
	if err != nil {
		t.Fatal(err)
	}
	return st, h
}

func TestHydraWalk(t *testing.T) {
	for _, slash := range []bool{false, true} {
		t.Run(map[bool]string{false: "issuer without trailing slash", true: "issuer with trailing slash"}[slash], func(t *testing.T) {
			st, h := hydraStack(t, slash)
			b := newBrowser(t, "alice", "alice-password")

			// Login, and the session reused.
			saw := upstreamSaw(t, st.login(t, b, "/first"))
			if saw.Headers["x-forwarded-user"] != "alice" || saw.Headers["x-forwarded-email"] != "alice@example.com" {
				t.Fatalf("upstream after the login: %+v", saw.Headers)
			}
			first := saw.Headers["x-forwarded-access-token"]

			// Parallel Checks with the same cookie, each due for a refresh
			// (cookie_refresh 1ms): one refresh at Hydra, which rotates
			// refresh tokens and revokes the chain on reuse, and all in.
			allPassAtOnce(t, st, b, 6)
			m := scrape(t, st.Server)
			if !strings.Contains(m, `zitadel_ext_authz_refreshes_total{app="default",outcome="ok"}`) {
				t.Errorf("no refresh at Hydra:\n%s", m)
			}
			// The chain wasn't revoked; the access token is the refreshed one
			// (Hydra revokes the one it replaced).
			opaque := upstreamSaw(t, b.get(st.Front.URL+"/after-refresh")).Headers["x-forwarded-access-token"]
			if opaque == first || opaque == "" {
				t.Error("the access token was not refreshed")
			}

			// An opaque access token, introspected at introspection_url.
			if r := apiCall(t, st, "/api/items", opaque); r.StatusCode != http.StatusOK {
				t.Errorf("Hydra's opaque token via introspection_url: %s", describe(r))
			}

			// A JWT access token with scp and ext claims.
			jwt := hydraJWT(t, h)
			r := apiCall(t, st, "/api/items", jwt)
			if got := upstreamSaw(t, r); got.Headers["x-forwarded-user"] != "alice" || got.Headers["x-forwarded-groups"] != "admin,reader" {
				t.Errorf("Hydra's JWT (groups in ext.groups): %+v", got.Headers)
			}

			// Back-channel logout: Hydra's own logout flow (not ours) ends
			// the session at Hydra, which posts a logout token without exp.
			logout := newBrowserSharing(b)
			if resp, _ := logout.follow(strings.TrimSuffix(h.Issuer, "/") + "/oauth2/sessions/logout"); resp == nil {
				t.Fatal("Hydra's logout flow left the test")
			}
			waitFor(t, "the back-channel logout", func() bool {
				return strings.Contains(st.Server.Logs(), `"msg":"back-channel logout"`)
			})
			if r := b.get(st.Front.URL + "/after-logout"); r.StatusCode != http.StatusFound {
				t.Errorf("after Hydra's back-channel logout: %s, want the login redirect", describe(r))
			}

			// Sign-out through Hydra's RP-initiated logout.
			upstreamSaw(t, st.login(t, b, "/again"))
			r = b.get(st.Front.URL + "/oauth2/sign_out")
			loc, _ := url.Parse(r.Header.Get("Location"))
			if r.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), strings.TrimSuffix(h.Issuer, "/")+"/oauth2/sessions/logout") || loc.Query().Get("id_token_hint") == "" {
				t.Fatalf("sign-out: %s", describe(r))
			}
			front, _ := url.Parse(st.Front.URL)
			_, hops := b.follow(loc.String(), hostOf(h.Issuer), hostOf(h.AppURL()))
			if last := hops[len(hops)-1]; !strings.HasPrefix(last, st.Front.URL+"/") {
				t.Errorf("Hydra's logout flow ended at %s, want back at %s", last, front)
			}
			if r := b.get(st.Front.URL + "/after-sign-out"); r.StatusCode != http.StatusFound {
				t.Errorf("after sign-out: %s", describe(r))
			}
		})
	}
}

func hostOf(raw string) string {
	u, _ := url.Parse(raw)
	return u.Host
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
