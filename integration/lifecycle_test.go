package integration_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
	"golang.org/x/oauth2"
)

func (ip *inproc) login(t *testing.T, b *browser) {
	t.Helper()
	resp, hops := b.follow(ip.Front + "/")
	upstreamSaw(t, resp)
	if len(hops) < 3 {
		t.Fatalf("no login happened: %v", hops)
	}
}

func refreshCalls(idp *devidp.Server) int64 { return idp.Calls("/oauth/token") }

// A session refreshes before expiry and keeps working for longer than one
// refresh token lifetime (the dev IdP's is 5 h); every rotated refresh token
// is stored.
func TestRefreshKeepsTheSessionAlive(t *testing.T) {
	ip := startInProcess(t, inprocOptions{})
	b := newBrowser(t, "alice", "alice-password")
	ip.login(t, b)
	first := ip.session(t, b)
	if first.GetRefreshToken() == "" {
		t.Fatal("no refresh token in the session (offline_access not requested?)")
	}
	seen := map[string]bool{first.GetRefreshToken(): true}
	calls := refreshCalls(ip.IdP)
	for round := range 70 { // 70 × 4.5 min > 5 h
		ip.Clock.Add(4*time.Minute + 30*time.Second) // inside refresh_before_expiry of the 5 min token
		resp := b.get(ip.Front + "/app")
		// The refreshed ID token has no e-mail (as ZITADEL's, unless
		// configured): the identity keeps the one userinfo gives.
		if got := upstreamSaw(t, resp); got.Headers["x-forwarded-user"] != "user-alice" || got.Headers["x-forwarded-email"] != "alice@example.com" {
			t.Fatalf("round %d: %v", round, got.Headers)
		}
		if len(resp.Header.Values("Set-Cookie")) == 0 {
			t.Fatalf("round %d: refreshed but no renewed cookie", round)
		}
		s := ip.session(t, b)
		if seen[s.GetRefreshToken()] {
			t.Fatalf("round %d: the refresh token was not rotated", round)
		}
		seen[s.GetRefreshToken()] = true
		if s.GetExpiresAt() != first.GetExpiresAt() {
			t.Fatalf("round %d: refresh moved the absolute session end", round)
		}
	}
	if got := refreshCalls(ip.IdP) - calls; got != 70 {
		t.Fatalf("refresh calls: %d, want 70", got)
	}
}

// 50 parallel Checks with one expiring cookie: one refresh call, 50 allowed.
// Then 20 Checks with the pre-refresh cookie within the grace period: no
// refresh call, 20 allowed.
func TestParallelChecksRefreshOnce(t *testing.T) {
	ip := startInProcess(t, inprocOptions{})
	b := newBrowser(t, "alice", "alice-password")
	ip.login(t, b)
	oldCookie := cookieHeader(b, ip.Front)
	ip.Clock.Add(6 * time.Minute) // access token expired
	calls := refreshCalls(ip.IdP)
	run := func(n int) (ok int) {
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range n {
			wg.Go(func() {
				<-start
				if rawGet(t, ip.Front+"/page", oldCookie, "text/html").StatusCode == http.StatusOK {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		return ok
	}
	if ok := run(50); ok != 50 {
		t.Fatalf("50 parallel Checks: %d allowed", ok)
	}
	if got := refreshCalls(ip.IdP) - calls; got != 1 {
		t.Fatalf("50 parallel Checks: %d refresh calls, want 1", got)
	}
	ip.Clock.Add(20 * time.Second) // still inside the grace period
	if ok := run(20); ok != 20 {
		t.Fatalf("20 late Checks with the old cookie: %d allowed", ok)
	}
	if got := refreshCalls(ip.IdP) - calls; got != 1 {
		t.Fatalf("late Checks with the old cookie: %d refresh calls in total, want still 1", got)
	}
}

// Refresh token revoked at the IdP: browser → login redirect with cleared
// cookies; API caller → 401.
func TestRevokedRefreshTokenEndsTheSession(t *testing.T) {
	ip := startInProcess(t, inprocOptions{})
	b := newBrowser(t, "alice", "alice-password")
	ip.login(t, b)
	if err := ip.Provider.Revoke(t.Context(), ip.session(t, b).GetRefreshToken(), "refresh_token"); err != nil {
		t.Fatal(err)
	}
	ip.Clock.Add(6 * time.Minute)
	cookie := cookieHeader(b, ip.Front)
	browserResp := rawGet(t, ip.Front+"/", cookie, "text/html")
	if browserResp.StatusCode != http.StatusFound || !strings.HasPrefix(browserResp.Header.Get("Location"), ip.IdP.Issuer) || !clears(browserResp, "_oauth2_proxy") {
		t.Fatalf("browser: %d %v, want the login redirect clearing the session cookie", browserResp.StatusCode, browserResp.Header)
	}
	api := rawGet(t, ip.Front+"/", cookie, "application/json")
	if api.StatusCode != http.StatusUnauthorized || !clears(api, "_oauth2_proxy") {
		t.Fatalf("API: %d %v, want 401 clearing the session cookie", api.StatusCode, api.Header)
	}
}

func clears(r *http.Response, name string) bool {
	for _, sc := range r.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, name+"=;") && strings.Contains(sc, "Max-Age=0") {
			return true
		}
	}
	return false
}

// IdP away: with a still-valid access token the request is allowed and the
// refresh postponed; once expired, 503 with the cookie kept.
func TestRefreshWhileTheIdPIsDown(t *testing.T) {
	ip := startInProcess(t, inprocOptions{})
	b := newBrowser(t, "alice", "alice-password")
	ip.login(t, b)
	ip.IdP.Close()
	ip.Clock.Add(4*time.Minute + 30*time.Second)
	if resp := b.get(ip.Front + "/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("access token still valid, IdP down: %s, want 200", describe(resp))
	}
	ip.Clock.Add(time.Minute)
	resp := b.get(ip.Front + "/")
	if resp.StatusCode != http.StatusServiceUnavailable || clears(resp.Response, "_oauth2_proxy") {
		t.Fatalf("expired, IdP down: %s, want 503 keeping the cookie", describe(resp))
	}
	if _, ok := b.cookie(ip.Front, "_oauth2_proxy"); !ok {
		t.Fatal("the session cookie is gone")
	}
}

// Secret rotation: a cookie made with the old key works after the switch and
// comes back encrypted with the new one.
func TestCookieSecretRotation(t *testing.T) {
	oldSecret := testCookieSecret
	newSecret := strings.Repeat("r!", 16)
	clock := testkit.NewClock(time.Now())
	before := startInProcess(t, inprocOptions{clock: clock, config: map[string]any{"cookie_secrets": []string{oldSecret}}})
	b := newBrowser(t, "alice", "alice-password")
	before.login(t, b)
	after := startInProcess(t, inprocOptions{idp: before.IdP, clock: clock, config: map[string]any{"cookie_secrets": []string{newSecret, oldSecret}}})
	resp := rawGet(t, after.Front+"/", cookieHeader(b, before.Front), "text/html")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("old cookie after rotation: %d", resp.StatusCode)
	}
	var reissued string
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if c, err := http.ParseSetCookie(sc); err == nil && c.Name == "_oauth2_proxy" && c.MaxAge > 0 {
			reissued = c.Value
		}
	}
	if reissued == "" {
		t.Fatal("the old-key cookie was not re-issued")
	}
	newKey, _ := session.DecodeSecret(newSecret)
	onlyNew, _ := session.NewCodec(newKey)
	jar := session.NewJar(onlyNew, session.Options{}, session.WithClock(clock.Now))
	if _, _, err := jar.Load(t.Context(), session.CookieMap(map[string]string{"_oauth2_proxy": reissued})); err != nil {
		t.Fatalf("the re-issued cookie does not open with the new key alone: %v", err)
	}
}

// Sign-out revokes the refresh token at the IdP before the end_session redirect.
func TestSignOutRevokesTheRefreshToken(t *testing.T) {
	ip := startInProcess(t, inprocOptions{})
	b := newBrowser(t, "alice", "alice-password")
	ip.login(t, b)
	rt := ip.session(t, b).GetRefreshToken()
	resp := b.get(ip.Front + "/oauth2/sign_out")
	if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), "/end_session") {
		t.Fatalf("sign_out: %s", describe(resp))
	}
	c := devidp.DefaultClient()
	conf := &oauth2.Config{ClientID: c.ID, ClientSecret: c.Secret, Endpoint: oauth2.Endpoint{TokenURL: ip.IdP.Issuer + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}}
	_, err := conf.TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt}).Token()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("refresh with the signed-out refresh token: %v, want invalid_grant", err)
	}
}

// session_idle_timeout ends sessions not used for that long; use keeps them.
func TestIdleTimeout(t *testing.T) {
	ip := startInProcess(t, inprocOptions{config: map[string]any{"session_idle_timeout": "10m", "refresh_before_expiry": "0s"}})
	b := newBrowser(t, "alice", "alice-password")
	ip.login(t, b)
	ip.Clock.Add(2 * time.Minute)
	if resp := b.get(ip.Front + "/"); resp.StatusCode != http.StatusOK || len(resp.Header.Values("Set-Cookie")) == 0 {
		t.Fatalf("active use: %s, want 200 with a last-seen update", describe(resp))
	}
	if resp := b.get(ip.Front + "/"); len(resp.Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("second request within a minute rewrote the cookie: %v", resp.Header.Values("Set-Cookie"))
	}
	ip.Clock.Add(11 * time.Minute)
	resp := b.get(ip.Front + "/")
	if resp.StatusCode != http.StatusFound || !clears(resp.Response, "_oauth2_proxy") {
		t.Fatalf("after 11 idle minutes: %s, want the login redirect clearing the session", describe(resp))
	}
}

// session_idle_timeout of any size: last-seen is rewritten often enough for
// the timeout (a fifth of it, at most once a minute), so an active user is
// never idle, and an idle one ends right after the timeout.
func TestIdleTimeoutOfAnySize(t *testing.T) {
	for _, tc := range []struct {
		idle, every time.Duration // the timeout, and how often the active user clicks
	}{
		{5 * time.Second, time.Second},
		{30 * time.Second, 5 * time.Second},
		{15 * time.Minute, 2 * time.Minute},
	} {
		t.Run(tc.idle.String(), func(t *testing.T) {
			ip := startInProcess(t, inprocOptions{config: map[string]any{"session_idle_timeout": tc.idle.String()}})
			b := newBrowser(t, "alice", "alice-password")
			ip.login(t, b)
			// Active for three timeouts, one request every `every`.
			for elapsed := time.Duration(0); elapsed < 3*tc.idle; elapsed += tc.every {
				ip.Clock.Add(tc.every)
				if resp := b.get(ip.Front + "/"); resp.StatusCode != http.StatusOK {
					t.Fatalf("active user after %s: %s, want 200", elapsed+tc.every, describe(resp))
				}
			}
			// Then idle for a little longer than the timeout.
			ip.Clock.Add(tc.idle + tc.idle/10)
			resp := b.get(ip.Front + "/")
			if resp.StatusCode != http.StatusFound || !clears(resp.Response, "_oauth2_proxy") {
				t.Fatalf("after %s idle: %s, want the login redirect clearing the session", tc.idle+tc.idle/10, describe(resp))
			}
		})
	}
}

// The built binary wires refresh end to end: offline_access is requested,
// the refresh token kept, renewed cookies sent, refreshes counted.
func TestRefreshThroughTheBinary(t *testing.T) {
	// cookie_refresh of 1 ms: every Check is due for a refresh.
	st := startStack(t, stackOptions{config: map[string]any{"cookie_refresh": "1ms", "refresh_grace_period": "0s"}})
	b := newBrowser(t, "alice", "alice-password")
	st.login(t, b, "/")
	calls := st.IdP.Calls("/oauth/token")
	for i := range 3 {
		resp := b.get(st.Front.URL + "/")
		if upstreamSaw(t, resp).Headers["x-forwarded-user"] != "user-alice" || len(resp.Header.Values("Set-Cookie")) == 0 {
			t.Fatalf("refresh %d: %s", i, describe(resp))
		}
	}
	if got := st.IdP.Calls("/oauth/token") - calls; got != 3 {
		t.Fatalf("token endpoint calls: %d, want 3 refreshes", got)
	}
	if m := scrape(t, st.Server); !strings.Contains(m, `zitadel_ext_authz_idp_calls_total{app="default",call="refresh",outcome="ok"} 4`) {
		t.Errorf("/metrics lacks 4 ok refreshes (the landing page after login refreshed too)")
	}
}
