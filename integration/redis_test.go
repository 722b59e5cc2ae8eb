package integration_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session/redisstore"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
)

// replicas is one IdP, one Redis (or a cluster, or Sentinel) and n
// servers, each behind its own front proxy, sharing config.
type replicas struct {
	IdP    *devidp.Server
	Redis  *redisServer // nil on a cluster or Sentinel
	Stacks []*stack
	cfg    map[string]any
}

func startReplicas(t *testing.T, n int, extra map[string]any) *replicas {
	t.Helper()
	r := startRedis(t)
	rp := startReplicasOn(t, n, map[string]any{"redis_url": "redis://" + r.addr}, extra)
	rp.Redis = r
	return rp
}

// startReplicasOn starts n servers with redisKeys (how to reach Redis)
// and extra.
func startReplicasOn(t *testing.T, n int, redisKeys, extra map[string]any) *replicas {
	t.Helper()
	idp := devidp.StartT(t, devidp.Options{})
	rp := &replicas{IdP: idp, cfg: baseConfig(idp.Issuer)}
	maps.Copy(rp.cfg, redisKeys)
	maps.Copy(rp.cfg, extra)
	for range n {
		rp.add(t, nil)
	}
	return rp
}

// add starts one more server with the replicas' config and changes.
func (rp *replicas) add(t *testing.T, changes map[string]any) *stack {
	t.Helper()
	cfg := maps.Clone(rp.cfg)
	maps.Copy(cfg, changes)
	srv := startServer(t, cfg)
	srv.waitReady(t)
	st := frontFor(t, srv)
	st.IdP = rp.IdP
	rp.Stacks = append(rp.Stacks, st)
	return st
}

// logoutToken is a back-channel logout token signed by the dev IdP's key.
func logoutToken(t *testing.T, idp *devidp.Server, edit func(map[string]any)) string {
	t.Helper()
	now := time.Now()
	claims := map[string]any{
		"iss": idp.Issuer, "aud": []string{devidp.DefaultClient().ID}, "sub": "user-alice",
		"iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(), "jti": fmt.Sprint("jti-", now.UnixNano()),
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}
	if edit != nil {
		edit(claims)
	}
	tok, err := idp.SignJWT(t.Context(), claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func postLogout(t *testing.T, s *server, token string) (int, string) {
	t.Helper()
	return postLogoutTo(t, "http://"+s.HTTPAddr, token)
}

func postLogoutTo(t *testing.T, base, token string) (int, string) {
	t.Helper()
	resp, err := http.PostForm(base+"/oauth2/backchannel_logout", url.Values{"logout_token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	bufio.NewReader(resp.Body).WriteTo(&b)
	return resp.StatusCode, b.String()
}

// withCookie sends a browser's cookie for one front to another front.
func withCookie(t *testing.T, from *browser, fromFront, target string) *response {
	t.Helper()
	return newBrowser(t, "nobody", "x").do(http.MethodGet, target, http.Header{"Cookie": {cookieHeader(from, fromFront)}})
}

// Redis mode: a session made on A works on B; a refresh race across A and
// B spends the refresh token once; the cookie holds only a ticket.
func TestRedisSessionsAcrossReplicas(t *testing.T) {
	// cookie_refresh of 1 ms: every Check with an unrefreshed session is
	// due for a refresh.
	rp := startReplicas(t, 2, map[string]any{"session_store_type": "redis", "cookie_refresh": "1ms", "refresh_grace_period": "0s", "pass_access_token": true})
	a, b := rp.Stacks[0], rp.Stacks[1]
	alice := newBrowser(t, "alice", "alice-password")
	cb := beginLogin(t, a, alice, "/")
	if r := alice.get(cb.String()); r.StatusCode != http.StatusFound {
		t.Fatalf("callback on A: %s", describe(r))
	}
	if c := cookieHeader(alice, a.Front.URL); len(c) > 400 {
		t.Errorf("redis mode cookie is %d bytes; a ticket should be small", len(c))
	}

	refreshRace(t, rp, cookieHeader(alice, a.Front.URL))

	// Sign-out on A ends the session on B (whose L1 has it) within a second.
	upstreamSaw(t, withCookie(t, alice, a.Front.URL, b.Front.URL+"/cached-on-b"))
	cookie := cookieHeader(alice, a.Front.URL)
	alice.get(a.Front.URL + "/oauth2/sign_out")
	testkit.Eventually(t, time.Second, "B to refuse the session signed out on A", func() bool {
		return newBrowser(t, "x", "x").do(http.MethodGet, b.Front.URL+"/after-sign-out", http.Header{"Cookie": {cookie}}).StatusCode == http.StatusFound
	})
}

// refreshRace sends 3 requests to A and 3 to B (rp.Stacks[0] and [1]) with
// cookie, whose session is due for a refresh: the first to take the lock
// is held at the IdP until every other waits for it; then exactly one
// refresh happened and all six saw its access token.
func refreshRace(t *testing.T, rp *replicas, cookie string) {
	t.Helper()
	a, b := rp.Stacks[0], rp.Stacks[1]
	before := rp.IdP.Calls("/oauth/token")
	waitingBefore := strings.Count(a.Server.Logs(), `"msg":"lock busy; waiting"`) + strings.Count(b.Server.Logs(), `"msg":"lock busy; waiting"`)
	rp.IdP.HangToken()
	var wg sync.WaitGroup
	results := make([]*response, 6)
	for i := range results {
		st := []*stack{a, b}[i%2]
		wg.Go(func() {
			results[i] = newBrowser(t, "x", "x").do(http.MethodGet, st.Front.URL+"/race", http.Header{"Cookie": {cookie}})
		})
	}
	waitFor(t, "one refresh at the IdP and five Checks waiting for the lock", func() bool {
		waiting := strings.Count(a.Server.Logs(), `"msg":"lock busy; waiting"`) + strings.Count(b.Server.Logs(), `"msg":"lock busy; waiting"`)
		return rp.IdP.Calls("/oauth/token") == before+1 && waiting == waitingBefore+5
	})
	rp.IdP.Release()
	wg.Wait()
	tokens := map[string]bool{}
	for i, r := range results {
		got := upstreamSaw(t, r)
		if got.Headers["x-forwarded-user"] == "" {
			t.Errorf("request %d: %v", i, got.Headers)
		}
		tokens[got.Headers["x-forwarded-access-token"]] = true
	}
	if n := rp.IdP.Calls("/oauth/token") - before; n != 1 {
		t.Errorf("refresh calls across replicas: %d, want 1", n)
	}
	if len(tokens) != 1 {
		t.Errorf("the six requests saw %d access tokens, want the one refreshed token", len(tokens))
	}
}

// Back-channel logout delivered to A ends the session on A and B within a
// second; replays, nonces and foreign audiences are refused.
func TestBackchannelLogoutAcrossReplicas(t *testing.T) {
	for _, mode := range []string{"redis", "cookie"} {
		t.Run(mode, func(t *testing.T) {
			rp := startReplicas(t, 2, map[string]any{"session_store_type": mode, "redis_l1_ttl": "1m"})
			a, b := rp.Stacks[0], rp.Stacks[1]
			alice := newBrowser(t, "alice", "alice-password")
			upstreamSaw(t, a.login(t, alice, "/"))
			// B has seen (and cached) the session too.
			upstreamSaw(t, withCookie(t, alice, a.Front.URL, b.Front.URL+"/"))

			for name, edit := range map[string]func(map[string]any){
				"nonce":      func(c map[string]any) { c["nonce"] = "n-1" },
				"audience":   func(c map[string]any) { c["aud"] = []string{"someone-else"} },
				"no event":   func(c map[string]any) { delete(c, "events") },
				"no sid/sub": func(c map[string]any) { delete(c, "sub") },
				"expired":    func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() },
			} {
				if code, body := postLogout(t, a.Server, logoutToken(t, rp.IdP, edit)); code != http.StatusBadRequest || !strings.Contains(body, `"error":"invalid_request"`) {
					t.Errorf("logout token with %s: %d %s, want 400 invalid_request", name, code, body)
				}
			}
			upstreamSaw(t, withCookie(t, alice, a.Front.URL, b.Front.URL+"/still-in"))

			// Delivered through A's Envoy (route with ext_authz off), as ZITADEL does.
			token := logoutToken(t, rp.IdP, nil)
			if code, body := postLogoutTo(t, a.Front.URL, token); code != http.StatusOK {
				t.Fatalf("logout: %d %s", code, body)
			}
			for _, st := range []*stack{a, b} {
				testkit.Eventually(t, time.Second, "the logout to end the session on "+st.Front.URL, func() bool {
					return withCookie(t, alice, a.Front.URL, st.Front.URL+"/after").StatusCode == http.StatusFound
				})
			}
			if code, _ := postLogout(t, b.Server, token); code != http.StatusBadRequest {
				t.Errorf("replayed logout token on the other replica: %d, want 400", code)
			}
			// A new login works.
			upstreamSaw(t, a.login(t, newBrowser(t, "alice", "alice-password"), "/again"))
		})
	}
}

// One replica with cookie sessions and no Redis: the logout is recorded
// in-process.
func TestBackchannelLogoutWithoutRedis(t *testing.T) {
	st := startStack(t, stackOptions{})
	alice := newBrowser(t, "alice", "alice-password")
	upstreamSaw(t, st.login(t, alice, "/"))
	token := logoutToken(t, st.IdP, nil)
	if code, body := postLogout(t, st.Server, token); code != http.StatusOK {
		t.Fatalf("logout: %d %s", code, body)
	}
	if r := alice.do(http.MethodGet, st.Front.URL+"/after", nil); r.StatusCode != http.StatusFound {
		t.Errorf("after the logout: %s, want the login redirect", describe(r))
	}
	if code, _ := postLogout(t, st.Server, token); code != http.StatusBadRequest {
		t.Errorf("replay: %d, want 400", code)
	}
	waitFor(t, "the log line for the replay", func() bool {
		return strings.Contains(st.Server.Logs(), `"reason":"replayed_logout_token"`)
	})
}

// Redis stopped: sessions in a replica's L1 keep working, others get 503,
// /readyz says so, nothing panics; after a restart everything is back
// without restarting us, and no session is lost.
func TestRedisOutage(t *testing.T) {
	rp := startReplicas(t, 2, map[string]any{"session_store_type": "redis", "redis_l1_ttl": "1m"})
	a, b := rp.Stacks[0], rp.Stacks[1]
	alice := newBrowser(t, "alice", "alice-password")
	upstreamSaw(t, a.login(t, alice, "/"))

	rp.Redis.stop()
	upstreamSaw(t, alice.get(a.Front.URL+"/from-l1"))
	r := withCookie(t, alice, a.Front.URL, b.Front.URL+"/not-in-l1")
	if r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("B without Redis and without the session in L1: %s, want 503", describe(r))
	}
	if resp, err := http.Get("http://" + b.Server.HTTPAddr + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz with Redis down: %v %v", resp, err)
	}
	// A new login can't be stored: 503, not a broken session.
	bob := newBrowser(t, "bob", "bob-password")
	cb := beginLogin(t, b, bob, "/bob")
	if r := bob.get(cb.String()); r.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("callback with Redis down: %s, want 503", describe(r))
	}

	rp.Redis.start()
	waitFor(t, "B to reach Redis again", func() bool {
		return withCookie(t, alice, a.Front.URL, b.Front.URL+"/back").StatusCode == http.StatusOK
	})
	if resp, err := http.Get("http://" + b.Server.HTTPAddr + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz after Redis is back: %v %v", resp, err)
	}
	for _, st := range []*stack{a, b} {
		if strings.Contains(st.Server.Logs(), "panic") {
			t.Error("a replica panicked")
		}
	}
}

// The store's primitives against a real Redis: sessions indexed by sid and
// sub end together, the lock excludes and expires with its holder,
// logout records and replays are seen by every replica.
func TestRedisStorePrimitives(t *testing.T) {
	r := startRedis(t)
	newStore := func() *redisstore.Store {
		return redisstore.New(redis.NewClient(&redis.Options{Addr: r.addr}), slog.New(slog.DiscardHandler))
	}
	a, b := newStore(), newStore()
	defer a.Close()
	defer b.Close()
	ctx := t.Context()

	// B hears A's invalidations.
	ctx2, cancel := context.WithCancel(ctx)
	defer cancel()
	invalidated := make(chan string, 10)
	revoked := make(chan redisstore.Revocation, 10)
	sub, err := b.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	go sub.Deliver(ctx2, redisstore.Events{Invalidate: func(id string) { invalidated <- id }, Revoked: func(r redisstore.Revocation) { revoked <- r }})
	// Subscribe returns once Redis confirmed: the first invalidation is heard.
	if err := a.Save(ctx, "probe", []byte("x"), time.Minute, "", ""); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-invalidated:
		if id != "probe" {
			t.Errorf("B heard %q", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("B didn't hear the first invalidation after subscribing")
	}

	for _, s := range []struct{ id, sid, sub string }{{"s1", "sid-1", "alice"}, {"s2", "sid-1", "alice"}, {"s3", "sid-2", "alice"}, {"s4", "sid-3", "bob"}} {
		if err := a.Save(ctx, s.id, []byte("blob-"+s.id), time.Hour, s.sid, s.sub); err != nil {
			t.Fatal(err)
		}
	}
	if blob, err := b.Load(ctx, "s1"); err != nil || string(blob) != "blob-s1" {
		t.Fatalf("B loads A's session: %q, %v", blob, err)
	}
	if err := b.Replace(ctx, "s2", []byte("blob-s2-refreshed"), time.Hour, "sid-1", "alice"); err != nil {
		t.Fatalf("replace a live session: %v", err)
	}
	if blob, err := a.Load(ctx, "s2"); err != nil || string(blob) != "blob-s2-refreshed" {
		t.Fatalf("A loads B's replaced session: %q, %v", blob, err)
	}
	if n, err := a.EndSessions(ctx, "sid-1", ""); err != nil || n != 2 {
		t.Fatalf("end by sid: %d, %v; want s1 and s2", n, err)
	}
	// A refresh that outlived the logout (kept through an outage, or
	// racing it) is refused by Redis and brings nothing back.
	if err := b.Replace(ctx, "s2", []byte("late"), time.Hour, "sid-1", "alice"); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("replace after the logout: %v, want session.ErrNoSession", err)
	}
	if _, err := a.Load(ctx, "s2"); !errors.Is(err, session.ErrNoSession) {
		t.Fatalf("the logged-out session after a late replace: %v, want it gone", err)
	}
	if _, err := b.Load(ctx, "s3"); err != nil {
		t.Error("ending sid-1 ended another IdP session of the same user")
	}
	if n, _ := a.EndSessions(ctx, "", "alice"); n != 1 {
		t.Errorf("end by sub: %d, want s3", n)
	}
	if _, err := b.Load(ctx, "s4"); err != nil {
		t.Error("bob's session ended")
	}
	for _, id := range []string{"s1", "s2", "s3"} {
		if _, err := b.Load(ctx, id); !errors.Is(err, session.ErrNoSession) {
			t.Errorf("%s still stored: %v", id, err)
		}
	}

	// The lock: B waits while A holds it and gets it once A lets go.
	unlock, err := a.Lock(ctx, "refresh:s4")
	if err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	if _, err := b.Lock(short, "refresh:s4"); err == nil {
		t.Error("B took a lock A holds")
	}
	cancelShort()
	got := make(chan error, 1)
	go func() {
		u, err := b.Lock(ctx, "refresh:s4")
		if err == nil {
			u()
		}
		got <- err
	}()
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Errorf("B after A unlocked: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("B never got the lock A released")
	}

	// Logout records reach B live and are listed for a new replica.
	at := time.Now()
	if err := a.Revoke(ctx, "sid with space", "", at, at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	select {
	case rv := <-revoked:
		if rv.SID != "sid with space" || rv.At.UnixMilli() != at.UnixMilli() {
			t.Errorf("B heard %+v", rv)
		}
	case <-time.After(5 * time.Second):
		t.Error("B didn't hear the logout")
	}
	list, err := newStore().Revocations(ctx)
	if err != nil || len(list) != 1 || list[0].SID != "sid with space" {
		t.Errorf("recorded logouts: %+v, %v", list, err)
	}

	// A logout token id is used once, across replicas.
	if ok, _ := a.FirstUse(ctx, "jti-1", time.Now().Add(time.Minute)); !ok {
		t.Error("first use refused")
	}
	if ok, _ := b.FirstUse(ctx, "jti-1", time.Now().Add(time.Minute)); ok {
		t.Error("replay on B accepted")
	}
}

// ZITADEL's usual logout token names the IdP session (sid), not only the
// user: it ends that session and leaves the user's other sessions alone.
func TestBackchannelLogoutBySID(t *testing.T) {
	for _, mode := range []string{"redis", "cookie"} {
		t.Run(mode, func(t *testing.T) {
			rp := startReplicas(t, 1, map[string]any{"session_store_type": mode})
			st, idp := rp.Stacks[0], rp.IdP
			// The dev IdP puts no sid in ID tokens; ZITADEL does. Add one per login.
			sid := "sid-A"
			idp.SetTamper(tokenTamper(t, idp, resign(t, idp, func(c map[string]any) { c["sid"] = sid })))
			defer idp.SetTamper(nil)
			first := newBrowser(t, "alice", "alice-password")
			upstreamSaw(t, st.login(t, first, "/"))
			sid = "sid-B"
			second := newBrowser(t, "alice", "alice-password")
			upstreamSaw(t, st.login(t, second, "/"))

			token := logoutToken(t, idp, func(c map[string]any) {
				delete(c, "sub")
				c["sid"] = "sid-A"
			})
			if code, body := postLogoutTo(t, st.Front.URL, token); code != http.StatusOK {
				t.Fatalf("logout: %d %s", code, body)
			}
			if r := first.do(http.MethodGet, st.Front.URL+"/after", nil); r.StatusCode != http.StatusFound {
				t.Errorf("the logged-out IdP session: %s, want the login redirect", describe(r))
			}
			upstreamSaw(t, second.get(st.Front.URL+"/other-session"))
		})
	}
}

// Redis over TLS with a private CA and a password: sessions work; a wrong
// password shows in /readyz instead of breaking start-up.
func TestRedisTLSAndPassword(t *testing.T) {
	dir := t.TempDir()
	cert, key, ca := writeTLSFiles(t, dir)
	rds := startRedisWith(t, func(r *redisServer) { r.password, r.tlsFiles = "s3cret-pw", []string{cert, key, ca} })
	idp := devidp.StartT(t, devidp.Options{})
	cfg := baseConfig(idp.Issuer)
	cfg["session_store_type"] = "redis"
	cfg["redis_url"] = "rediss://:s3cret-pw@" + rds.addr
	cfg["redis_ca_file"] = ca
	srv := startServer(t, cfg)
	srv.waitReady(t)
	st := frontFor(t, srv)
	upstreamSaw(t, st.login(t, newBrowser(t, "alice", "alice-password"), "/"))
	if strings.Contains(srv.Logs(), "s3cret-pw") {
		t.Error("the Redis password was logged")
	}

	cfg["redis_url"] = "rediss://:wrong@" + rds.addr
	bad := startServer(t, cfg)
	waitFor(t, "/readyz to name Redis", func() bool {
		resp, err := http.Get("http://" + bad.HTTPAddr + "/readyz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var b strings.Builder
		bufio.NewReader(resp.Body).WriteTo(&b)
		return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(b.String(), "redis")
	})
}
