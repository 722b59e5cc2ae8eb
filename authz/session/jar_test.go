package session

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
)

// t0 is where the tests' clocks start.
var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// browser applies Set-Cookie values to a cookie map the way a browser would.
func browser(t *testing.T, jar map[string]string, setCookies []string) {
	t.Helper()
	for _, sc := range setCookies {
		c, err := http.ParseSetCookie(sc)
		if err != nil {
			t.Fatalf("ParseSetCookie(%q): %v", sc, err)
		}
		if len(sc) > 4096 {
			t.Fatalf("Set-Cookie of %d bytes exceeds the browser limit", len(sc))
		}
		if c.MaxAge < 0 {
			delete(jar, c.Name)
			continue
		}
		jar[c.Name] = c.Value
	}
}

// newTestJar is a jar sealing with secretA, reading the time from clk.
func newTestJar(t testing.TB, opts Options, clk *testkit.Clock, o ...JarOption) *Jar {
	return NewJar(mustCodec(t, secretA), opts, append([]JarOption{WithClock(clk.Now)}, o...)...)
}

func TestJarSessionRoundTripAndChunks(t *testing.T) {
	clk := testkit.NewClock(t0)
	j := newTestJar(t, Options{}, clk)
	for _, tc := range []struct {
		name       string
		tokenBytes int
		wantChunks bool
	}{
		{"small session is one cookie", 100, false},
		{"large session is split into chunks under 4 KB", 9000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &sessionpb.Session{Subject: "id1", AccessToken: strings.Repeat("a", tc.tokenBytes), CreatedAt: t0.Unix(), ExpiresAt: t0.Add(time.Hour).Unix()}
			cookies := map[string]string{}
			sc, err := j.Save(t.Context(), s, "app.example.com", CookieMap(cookies))
			if err != nil {
				t.Fatal(err)
			}
			browser(t, cookies, sc)
			_, single := cookies["_oauth2_proxy"]
			_, chunk0 := cookies["_oauth2_proxy_0"]
			if single == tc.wantChunks || chunk0 != tc.wantChunks {
				t.Fatalf("Write: cookies %v, want chunks=%v", keys(cookies), tc.wantChunks)
			}
			got, _, err := j.Load(t.Context(), CookieMap(cookies))
			if err != nil || got.Session.GetAccessToken() != s.GetAccessToken() {
				t.Fatalf("Read: got %v, want the written session", err)
			}
		})
	}
}

func TestJarStaleChunksCleared(t *testing.T) {
	clk := testkit.NewClock(t0)
	j := newTestJar(t, Options{}, clk)
	cookies := map[string]string{}
	big := &sessionpb.Session{Subject: "id1", AccessToken: strings.Repeat("a", 12000), ExpiresAt: t0.Add(time.Hour).Unix()}
	sc, _ := j.Save(t.Context(), big, "h", CookieMap(cookies))
	browser(t, cookies, sc)
	if _, ok := cookies["_oauth2_proxy_3"]; !ok {
		t.Fatalf("want 4 chunks, got %v", keys(cookies))
	}
	small := &sessionpb.Session{Subject: "id1", AccessToken: "short", ExpiresAt: t0.Add(time.Hour).Unix()}
	sc, _ = j.Save(t.Context(), small, "h", CookieMap(cookies))
	browser(t, cookies, sc)
	if len(cookies) != 1 || cookies["_oauth2_proxy"] == "" {
		t.Fatalf("after a smaller session: cookies %v, want only _oauth2_proxy", keys(cookies))
	}
	got, _, err := j.Load(t.Context(), CookieMap(cookies))
	if err != nil || got.Session.GetAccessToken() != "short" {
		t.Fatalf("Read: %v", err)
	}
}

func TestJarRejectsBadSessions(t *testing.T) {
	j := newTestJar(t, Options{}, testkit.NewClock(t0))
	good := map[string]string{}
	sc, _ := j.Save(t.Context(), &sessionpb.Session{Subject: "id1", CreatedAt: t0.Unix(), ExpiresAt: t0.Add(time.Hour).Unix()}, "h", CookieMap(good))
	browser(t, good, sc)
	big := map[string]string{}
	sc, _ = j.Save(t.Context(), &sessionpb.Session{Subject: "id1", AccessToken: strings.Repeat("x", 9000), CreatedAt: t0.Unix(), ExpiresAt: t0.Add(time.Hour).Unix()}, "h", CookieMap(big))
	browser(t, big, sc)
	missingChunk := map[string]string{"_oauth2_proxy_0": big["_oauth2_proxy_0"], "_oauth2_proxy_2": big["_oauth2_proxy_2"]}

	cases := []struct {
		name    string
		cookies map[string]string
		later   time.Duration // how long after t0 the cookies are read
	}{
		{"no cookie", map[string]string{}, 0},
		{"expired", good, 2 * time.Hour},
		{"tampered", map[string]string{"_oauth2_proxy": flipChar(good["_oauth2_proxy"], 20)}, 0},
		{"missing middle chunk", missingChunk, 0},
		{"foreign", map[string]string{"_oauth2_proxy": func() string {
			v, _ := mustCodec(t, secretB).Seal("_oauth2_proxy", PurposeSession, &sessionpb.Session{Subject: "x", ExpiresAt: t0.Add(time.Hour).Unix()})
			return v
		}()}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := testkit.NewClock(t0)
			clk.Add(tc.later)
			j := newTestJar(t, Options{}, clk)
			if _, _, err := j.Load(t.Context(), CookieMap(tc.cookies)); !errors.Is(err, ErrNoSession) {
				t.Fatalf("Read(%s): got %v, want ErrNoSession", tc.name, err)
			}
		})
	}
}

func TestJarCacheServesRepeatedReads(t *testing.T) {
	cache, err := ristretto.NewCache(&ristretto.Config[string, *Entry]{KeyToHash: KeyToHash, NumCounters: 1000, MaxCost: 1 << 20, BufferItems: 64})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	clk := testkit.NewClock(t0)
	j := newTestJar(t, Options{}, clk, WithCache(cache))
	cookies := map[string]string{}
	sc, _ := j.Save(t.Context(), &sessionpb.Session{Subject: "id1", CreatedAt: t0.Unix(), ExpiresAt: t0.Add(time.Hour).Unix()}, "h", CookieMap(cookies))
	browser(t, cookies, sc)
	cache.Wait()
	first, _, err := j.Load(t.Context(), CookieMap(cookies))
	if err != nil {
		t.Fatal(err)
	}
	second, _, _ := j.Load(t.Context(), CookieMap(cookies))
	if first != second {
		t.Fatal("Read twice: want the same cached *Session, got a fresh decode")
	}
	clk.Add(2 * time.Hour)
	if _, _, err := j.Load(t.Context(), CookieMap(cookies)); !errors.Is(err, ErrNoSession) {
		t.Fatalf("a cached session past its expiry: got %v, want ErrNoSession", err)
	}
}

func TestJarStateFlows(t *testing.T) {
	clk := testkit.NewClock(t0)
	j := newTestJar(t, Options{MaxFlows: 3}, clk)
	cookies := map[string]string{}
	start := func(state string) {
		ls := &sessionpb.LoginState{State: state, Nonce: "n-" + state, CreatedAt: clk.Now().Unix(), ExpiresAt: clk.Now().Add(15 * time.Minute).Unix()}
		sc, err := j.WriteState(ls, "h", CookieMap(cookies))
		if err != nil {
			t.Fatal(err)
		}
		browser(t, cookies, sc)
		clk.Add(time.Second)
	}
	start("tab-one-state-aaaaaaaaaaaaaa")
	start("tab-two-state-bbbbbbbbbbbbbb")
	for _, s := range []string{"tab-one-state-aaaaaaaaaaaaaa", "tab-two-state-bbbbbbbbbbbbbb"} {
		ls, err := j.ReadState(s, CookieMap(cookies))
		if err != nil || ls.GetNonce() != "n-"+s {
			t.Fatalf("ReadState(%s) with two tabs: %v", s, err)
		}
	}
	for i := range 10 {
		start(strings.Repeat(string(rune('c'+i)), 14) + "-abandoned")
	}
	n := 0
	for name := range cookies {
		if strings.Contains(name, "_csrf_") {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("after 12 flows: %d state cookies, want at most MaxFlows=3", n)
	}
	if _, err := j.ReadState("tab-one-state-aaaaaaaaaaaaaa", CookieMap(cookies)); !errors.Is(err, ErrNoSession) {
		t.Fatalf("the oldest flow should have been evicted, got %v", err)
	}
	last := strings.Repeat("l", 14) + "-abandoned"
	if _, err := j.ReadState(last, CookieMap(cookies)); err != nil {
		t.Fatalf("newest flow: %v", err)
	}
	if _, err := j.ReadState(strings.Repeat("l", 14)+"-forged", CookieMap(cookies)); !errors.Is(err, ErrNoSession) {
		t.Fatalf("a state sharing the cookie prefix but not equal must fail, got %v", err)
	}
	clk.Add(time.Hour)
	if _, err := j.ReadState(last, CookieMap(cookies)); !errors.Is(err, ErrNoSession) {
		t.Fatalf("expired flow: got %v, want ErrNoSession", err)
	}
}

func TestJarCookieAttributes(t *testing.T) {
	clk := testkit.NewClock(t0)
	j := newTestJar(t, Options{Secure: true, HTTPOnly: true, SameSite: http.SameSiteStrictMode, Domains: []string{".example.com"}}, clk)
	sc, _ := j.Save(t.Context(), &sessionpb.Session{Subject: "id1", ExpiresAt: t0.Add(time.Hour).Unix()}, "app.example.com:8443", CookieMap(map[string]string{}))
	c, _ := http.ParseSetCookie(sc[0])
	if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Domain != "example.com" || c.Path != "/" || c.MaxAge != 3600 {
		t.Fatalf("session cookie attributes: %q", sc[0])
	}
	st, _ := j.WriteState(&sessionpb.LoginState{State: "s123456789012345", ExpiresAt: t0.Add(time.Minute).Unix()}, "other.org", CookieMap(map[string]string{}))
	c, _ = http.ParseSetCookie(st[0])
	if c.SameSite != http.SameSiteLaxMode || c.Domain != "" {
		t.Fatalf("state cookie must be Lax and host-only for a foreign host: %q", st[0])
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func flipChar(s string, i int) string {
	b := []byte(s)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

func TestHostPrefixForcesSecureHostOnlyRootPath(t *testing.T) {
	j := newTestJar(t, Options{Name: "__Host-session", Secure: false, Path: "/app", Domains: []string{".example.com"}}, testkit.NewClock(t0))
	s := &sessionpb.Session{Subject: "u", CreatedAt: t0.Unix(), ExpiresAt: t0.Add(time.Hour).Unix(), IdToken: strings.Repeat("x", 6000)}
	set, err := j.Save(t.Context(), s, "app.example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := j.WriteState(&sessionpb.LoginState{State: "s-1234567890123456789012345678901234", ExpiresAt: t0.Add(time.Minute).Unix()}, "app.example.com", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The sign-out's deletions too: a browser ignores a __Host- cookie
	// without Secure, deletion included, and the session would survive
	// (Envoy CVE-2025-55162).
	var sent []string
	for _, c := range set {
		p, _ := http.ParseSetCookie(c)
		sent = append(sent, p.Name+"="+p.Value)
	}
	cleared := j.ClearCookies("app.example.com", CookieMap(cookieMap(sent)))
	if len(cleared) < len(set) {
		t.Fatalf("sign-out cleared %d of %d cookies", len(cleared), len(set))
	}
	for _, c := range append(append(set, ws...), cleared...) {
		p, err := http.ParseSetCookie(c)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(p.Name, "__Host-") || !p.Secure || p.Path != "/" || p.Domain != "" {
			t.Errorf("%s: Secure %v Path %q Domain %q; __Host- needs Secure, Path=/ and no Domain", p.Name, p.Secure, p.Path, p.Domain)
		}
	}
	if len(set) < 2 {
		t.Errorf("want a chunked session for this test, got %d cookies", len(set))
	}
}

func cookieMap(pairs []string) map[string]string {
	m := map[string]string{}
	for _, p := range pairs {
		k, v, _ := strings.Cut(p, "=")
		m[k] = v
	}
	return m
}

// A hash collision in the decoded-session cache can't serve one user's
// session to another user's cookie: here every key collides (a constant
// hash, the worst an attacker could hope for), and each cookie still gets
// its own session, found by a full comparison of the cookie.
func TestJarCacheCollisionServesNoOtherSession(t *testing.T) {
	cache, err := ristretto.NewCache(&ristretto.Config[string, *Entry]{
		KeyToHash:   func(string) (uint64, uint64) { return 42, 0 },
		NumCounters: 1000, MaxCost: 1 << 20, BufferItems: 64,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	j := newTestJar(t, Options{}, testkit.NewClock(t0), WithCache(cache))
	alice, mallory := map[string]string{}, map[string]string{}
	sc, _ := j.Save(t.Context(), &sessionpb.Session{Subject: "alice", CreatedAt: t0.Unix(), ExpiresAt: t0.Add(time.Hour).Unix()}, "h", CookieMap(alice))
	browser(t, alice, sc)
	cache.Wait()
	if e, _, err := j.Load(t.Context(), CookieMap(alice)); err != nil || e.Session.GetSubject() != "alice" {
		t.Fatalf("alice: %v %v", e, err)
	}
	sc, _ = j.Save(t.Context(), &sessionpb.Session{Subject: "mallory", CreatedAt: t0.Unix(), ExpiresAt: t0.Add(time.Hour).Unix()}, "h", CookieMap(mallory))
	browser(t, mallory, sc)
	cache.Wait()
	// Both cookies hash alike: whichever entry the cache holds, each cookie
	// must get its own subject, and a forged cookie none.
	for range 3 {
		if e, _, err := j.Load(t.Context(), CookieMap(alice)); err != nil || e.Session.GetSubject() != "alice" {
			t.Fatalf("alice's cookie got %v, %v", e.Session.GetSubject(), err)
		}
		if e, _, err := j.Load(t.Context(), CookieMap(mallory)); err != nil || e.Session.GetSubject() != "mallory" {
			t.Fatalf("mallory's cookie got %v, %v", e.Session.GetSubject(), err)
		}
		cache.Wait()
	}
	if _, _, err := j.Load(t.Context(), CookieMap(map[string]string{"_oauth2_proxy": "forged"})); !errors.Is(err, ErrNoSession) {
		t.Fatalf("a forged cookie colliding with cached ones: %v, want ErrNoSession", err)
	}
}
