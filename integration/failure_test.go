package integration_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
)

// beginLogin walks a browser to the point where the IdP redirects back with
// a code: it returns the callback URL, not yet visited.
func beginLogin(t *testing.T, st *stack, b *browser, path string) *url.URL {
	t.Helper()
	resp := b.get(st.Front.URL + path)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("GET %s: %s", path, describe(resp))
	}
	cb, err := devidp.LoginForm(b.client, resp.Header.Get("Location"), b.user, b.password)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cb.String(), st.Front.URL+"/oauth2/callback?") {
		t.Fatalf("IdP redirected to %s, want our callback", cb)
	}
	return cb
}

func noSession(t *testing.T, b *browser, st *stack, resp *response) {
	t.Helper()
	for _, sc := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(sc, "_oauth2_proxy=") && !strings.Contains(sc, "Max-Age=0") {
			t.Fatalf("a session cookie was set: %s", sc)
		}
	}
	if _, ok := b.cookie(st.Front.URL, "_oauth2_proxy"); ok {
		t.Fatal("the browser holds a session cookie")
	}
}

// Contract rows: callback failures are Denied 4xx without a session.
func TestCallbackFailures(t *testing.T) {
	st := startStack(t, stackOptions{})

	t.Run("error from the IdP gives a readable 403 page of our words", func(t *testing.T) {
		b := newBrowser(t, "alice", "alice-password")
		resp := b.get(st.Front.URL + "/oauth2/callback?error=access_denied&error_description=" + url.QueryEscape("<script>alert(1)</script>"))
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(resp.Body, "access_denied") {
			t.Fatalf("got %s, want a 403 page naming the error", describe(resp))
		}
		// error_description is anyone's text: the log has it, the page
		// doesn't (not even escaped).
		if strings.Contains(resp.Body, "alert(1)") || strings.Contains(resp.Body, "script") {
			t.Fatalf("the page shows the unauthenticated error_description: %s", resp.Body)
		}
		noSession(t, b, st, resp)
	})
	t.Run("forged state", func(t *testing.T) {
		b := newBrowser(t, "alice", "alice-password")
		cb := beginLogin(t, st, b, "/")
		q := cb.Query()
		q.Set("state", strings.Repeat("A", 43))
		cb.RawQuery = q.Encode()
		resp := b.get(cb.String())
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("forged state: got %s, want 403", describe(resp))
		}
		noSession(t, b, st, resp)
	})
	t.Run("callback opened in another browser (no state cookie)", func(t *testing.T) {
		b := newBrowser(t, "alice", "alice-password")
		cb := beginLogin(t, st, b, "/")
		other := newBrowser(t, "", "")
		resp := other.get(cb.String())
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("got %s, want 403", describe(resp))
		}
		noSession(t, other, st, resp)
	})
	t.Run("missing code", func(t *testing.T) {
		b := newBrowser(t, "alice", "alice-password")
		cb := beginLogin(t, st, b, "/")
		q := cb.Query()
		q.Del("code")
		cb.RawQuery = q.Encode()
		resp := b.get(cb.String())
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("got %s, want 400", describe(resp))
		}
		noSession(t, b, st, resp)
	})
	t.Run("replayed callback", func(t *testing.T) {
		b := newBrowser(t, "alice", "alice-password")
		cb := beginLogin(t, st, b, "/")
		stateCookies := b.jar.Cookies(cb)
		if first := b.get(cb.String()); first.StatusCode != http.StatusFound {
			t.Fatalf("first callback: %s", describe(first))
		}
		attacker := newBrowser(t, "", "")
		attacker.jar.SetCookies(cb, stateCookies) // even with the old state cookie
		resp := attacker.get(cb.String())
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("replayed code: got %s, want 403", describe(resp))
		}
		noSession(t, attacker, st, resp)
	})
	t.Run("wrong password never reaches the callback", func(t *testing.T) {
		b := newBrowser(t, "alice", "wrong")
		resp := b.get(st.Front.URL + "/")
		if _, err := devidp.LoginForm(b.client, resp.Header.Get("Location"), "alice", "wrong"); err == nil {
			t.Fatal("login with a wrong password succeeded")
		}
	})
}

// Contract row: tampered, truncated or foreign cookies are "no session".
func TestBadSessionCookiesAreNoSession(t *testing.T) {
	st := startStack(t, stackOptions{})
	b := newBrowser(t, "alice", "alice-password")
	st.login(t, b, "/")
	good, _ := b.cookie(st.Front.URL, "_oauth2_proxy")
	foreignStack := startStack(t, stackOptions{config: map[string]any{"cookie_secret": strings.Repeat("k", 32)}})
	fb := newBrowser(t, "alice", "alice-password")
	foreignStack.login(t, fb, "/")
	foreign, _ := fb.cookie(foreignStack.Front.URL, "_oauth2_proxy")
	flip := []byte(good)
	flip[len(flip)/2] ^= 0x01
	for name, value := range map[string]string{
		"tampered":  string(flip),
		"truncated": good[:len(good)-10],
		"foreign":   foreign,
		"garbage":   "not-a-session",
	} {
		t.Run(name, func(t *testing.T) {
			c := newBrowser(t, "", "")
			resp := c.do(http.MethodGet, st.Front.URL+"/", http.Header{"Cookie": {"_oauth2_proxy=" + value}})
			if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), st.IdP.Issuer) {
				t.Fatalf("%s cookie: got %s, want the login redirect", name, describe(resp))
			}
			api := c.do(http.MethodGet, st.Front.URL+"/", http.Header{"Cookie": {"_oauth2_proxy=" + value}, "Accept": {"application/json"}})
			if api.StatusCode != http.StatusUnauthorized {
				t.Fatalf("%s cookie, API caller: got %d, want 401", name, api.StatusCode)
			}
		})
	}
}

// Contract row: callback while the IdP is unreachable or slower than
// idp_timeout → 502/503/504, no session, answered before Envoy's deadline.
func TestCallbackWhileTheIdPFails(t *testing.T) {
	for _, tc := range []struct {
		name    string
		config  map[string]any
		timeout time.Duration
	}{
		{"slower than idp_timeout", map[string]any{"idp_timeout": "300ms"}, 0},
		{"Envoy's deadline shorter than idp_timeout", map[string]any{"idp_timeout": "30s"}, 500 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := startStack(t, stackOptions{config: tc.config, timeout: tc.timeout})
			b := newBrowser(t, "alice", "alice-password")
			cb := beginLogin(t, st, b, "/")
			st.IdP.HangToken()
			defer st.IdP.Release()
			resp := b.get(cb.String())
			if resp.StatusCode != http.StatusGatewayTimeout {
				t.Fatalf("got %s, want our own 504 before Envoy's deadline (not its status_on_error)", describe(resp))
			}
			noSession(t, b, st, resp)
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		st := startStack(t, stackOptions{})
		b := newBrowser(t, "alice", "alice-password")
		cb := beginLogin(t, st, b, "/")
		st.IdP.Close()
		resp := b.get(cb.String())
		if resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("got %s, want 502 or 503", describe(resp))
		}
		noSession(t, b, st, resp)
	})
}

// The server starts while the IdP is down: not ready, logins get 503; once
// the IdP is up it becomes ready without a restart.
func TestStartsBeforeTheIdP(t *testing.T) {
	idp := devidp.StartT(t, devidp.Options{})
	addr := idp.Issuer[len("http://"):]
	idp.Close()
	srv := startServer(t, baseConfig(idp.Issuer))
	resp, err := http.Get("http://" + srv.HTTPAddr + "/readyz")
	if err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with the IdP down: %v %v, want 503", err, resp)
	}
	resp.Body.Close()
	if h, err := http.Get("http://" + srv.HTTPAddr + "/healthz"); err != nil || h.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %v %v, want 200", err, h)
	}
	front := startFront(t, frontOptions{grpcAddr: srv.GRPCAddr, opsAddr: srv.HTTPAddr, upstream: "http://127.0.0.1:1"}).URL
	b := newBrowser(t, "", "")
	if r := b.get(front + "/"); r.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("login while the IdP is down: got %s, want 503", describe(r))
	}
	devidp.StartT(t, devidp.Options{Addr: addr})
	srv.waitReady(t)
	if r := b.get(front + "/"); r.StatusCode != http.StatusFound {
		t.Fatalf("login after the IdP came up: got %s, want 302", describe(r))
	}
}
