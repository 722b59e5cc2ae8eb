package integration_test

import (
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// providerWalk is what a walk against an OpenID Provider we didn't write
// (Ory Hydra, Keycloak) needs to know about it; walkProvider does the steps
// they share. The IdP runs already, with alice (password alice-password,
// e-mail alice@example.com) and a confidential client "web".
type providerWalk struct {
	idp          string // the provider's name, for failure messages
	issuer       string
	clientSecret string         // the secret of the client "web"
	config       map[string]any // settings beyond the ones every walk uses
	// register tells the IdP about the running stack (our callback, the
	// back-channel logout URL).
	register func(t *testing.T, st *stack)
	// signedIn checks what the upstream saw after the first login.
	signedIn func(t *testing.T, headers map[string]string)
	// bearer checks API calls with access tokens; refreshed is the
	// session's access token after its refresh.
	bearer func(t *testing.T, st *stack, refreshed string)
	// endSession ends alice's session at the IdP, not through us, so the
	// IdP posts a back-channel logout; b holds the IdP's session cookie.
	endSession func(t *testing.T, b *browser)
	// logoutEndpoint is where sign-out sends the browser (RP-initiated
	// logout); logoutHosts are the hosts the browser may pass through on
	// its way back to the app.
	logoutEndpoint string
	logoutHosts    []string
}

// walkProvider walks alice through the real Envoy against w's IdP: login,
// parallel Checks that each want a refresh (one rotation at the IdP), API
// calls with access tokens, a back-channel logout the IdP starts, and
// sign-out through the IdP's end-session endpoint.
func walkProvider(t *testing.T, w providerWalk) {
	t.Helper()
	cfg := baseConfig(w.issuer)
	cfg["client_id"], cfg["client_secret"] = "web", w.clientSecret
	cfg["pass_access_token"] = true
	cfg["skip_jwt_bearer_tokens"] = true
	cfg["cookie_refresh"] = "1ms" // every Check with a session refreshes
	maps.Copy(cfg, w.config)
	srv := startServer(t, cfg)
	srv.waitReady(t)
	st := &stack{}
	st.attach(t, srv, stackOptions{front: realEnvoy})
	w.register(t, st)
	b := newBrowser(t, "alice", "alice-password")

	// Login, and the session reused.
	saw := upstreamSaw(t, st.login(t, b, "/first"))
	w.signedIn(t, saw.Headers)
	first := saw.Headers["x-forwarded-access-token"]

	// Parallel Checks with the same cookie, each due for a refresh: one
	// refresh at the IdP, which rotates refresh tokens and refuses (or
	// revokes the chain on) a reused one, and all in.
	allPassAtOnce(t, st, b, 6)
	if m := scrape(t, st.Server); !strings.Contains(m, `zitadel_ext_authz_refreshes_total{app="default",outcome="ok"}`) {
		t.Errorf("no refresh at %s:\n%s", w.idp, m)
	}
	// The chain wasn't revoked; the access token is the refreshed one.
	refreshed := upstreamSaw(t, b.get(st.Front.URL+"/after-refresh")).Headers["x-forwarded-access-token"]
	if refreshed == first || refreshed == "" {
		t.Error("the access token was not refreshed")
	}

	w.bearer(t, st, refreshed)

	// Back-channel logout: the session ends at the IdP, not through us.
	w.endSession(t, b)
	waitFor(t, "the back-channel logout", func() bool {
		return strings.Contains(st.Server.Logs(), `"msg":"back-channel logout"`)
	})
	if r := b.get(st.Front.URL + "/after-logout"); r.StatusCode != http.StatusFound {
		t.Errorf("after %s's back-channel logout: %s, want the login redirect", w.idp, describe(r))
	}

	// Sign-out through the IdP's end-session endpoint, and back.
	upstreamSaw(t, st.login(t, b, "/again"))
	r := b.get(st.Front.URL + "/oauth2/sign_out")
	loc, _ := url.Parse(r.Header.Get("Location"))
	if r.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), w.logoutEndpoint) || loc.Query().Get("id_token_hint") == "" {
		t.Fatalf("sign-out: %s", describe(r))
	}
	_, hops := b.follow(loc.String(), w.logoutHosts...)
	if last := hops[len(hops)-1]; !strings.HasPrefix(last, st.Front.URL+"/") {
		t.Errorf("%s's logout ended at %s, want back at %s", w.idp, last, st.Front.URL)
	}
	if r := b.get(st.Front.URL + "/after-sign-out"); r.StatusCode != http.StatusFound {
		t.Errorf("after sign-out: %s", describe(r))
	}
}

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

func hostOf(raw string) string {
	u, _ := url.Parse(raw)
	return u.Host
}
