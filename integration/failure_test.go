package integration_test

import (
	"cmp"
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
	// withQuery walks to the callback and visits it with its query edited.
	withQuery := func(edit func(url.Values)) func(*testing.T, *browser) (*browser, *response) {
		return func(t *testing.T, b *browser) (*browser, *response) {
			cb := beginLogin(t, st, b, "/")
			q := cb.Query()
			edit(q)
			cb.RawQuery = q.Encode()
			return b, b.get(cb.String())
		}
	}
	for _, tc := range []struct {
		name     string
		password string
		// visit walks alice's browser b to the callback and returns the
		// browser that opened it and the answer; a nil answer means the
		// walk (and its own checks) ended before the callback.
		visit func(t *testing.T, b *browser) (*browser, *response)
		want  int
		// page checks the answer's body, when set.
		page func(t *testing.T, body string)
	}{
		{
			name: "error from the IdP gives a readable 403 page of our words",
			visit: func(t *testing.T, b *browser) (*browser, *response) {
				return b, b.get(st.Front.URL + "/oauth2/callback?error=access_denied&error_description=" + url.QueryEscape("<script>alert(1)</script>"))
			},
			want: http.StatusForbidden,
			page: func(t *testing.T, body string) {
				if !strings.Contains(body, "access_denied") {
					t.Fatalf("the page doesn't name the error: %s", body)
				}
				// error_description is anyone's text: the log has it, the
				// page doesn't (not even escaped).
				if strings.Contains(body, "alert(1)") || strings.Contains(body, "script") {
					t.Fatalf("the page shows the unauthenticated error_description: %s", body)
				}
			},
		},
		{
			name:  "forged state",
			visit: withQuery(func(q url.Values) { q.Set("state", strings.Repeat("A", 43)) }),
			want:  http.StatusForbidden,
		},
		{
			name: "callback opened in another browser (no state cookie)",
			visit: func(t *testing.T, b *browser) (*browser, *response) {
				cb := beginLogin(t, st, b, "/")
				other := newBrowser(t, "", "")
				return other, other.get(cb.String())
			},
			want: http.StatusForbidden,
		},
		{
			name:  "missing code",
			visit: withQuery(func(q url.Values) { q.Del("code") }),
			want:  http.StatusBadRequest,
		},
		{
			name: "replayed callback",
			visit: func(t *testing.T, b *browser) (*browser, *response) {
				cb := beginLogin(t, st, b, "/")
				stateCookies := b.jar.Cookies(cb)
				if first := b.get(cb.String()); first.StatusCode != http.StatusFound {
					t.Fatalf("first callback: %s", describe(first))
				}
				attacker := newBrowser(t, "", "")
				attacker.jar.SetCookies(cb, stateCookies) // even with the old state cookie
				return attacker, attacker.get(cb.String())
			},
			want: http.StatusForbidden,
		},
		{
			name:     "wrong password never reaches the callback",
			password: "wrong",
			visit: func(t *testing.T, b *browser) (*browser, *response) {
				resp := b.get(st.Front.URL + "/")
				if _, err := devidp.LoginForm(b.client, resp.Header.Get("Location"), b.user, b.password); err == nil {
					t.Fatal("login with a wrong password succeeded")
				}
				return b, nil
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			password := cmp.Or(tc.password, "alice-password")
			by, resp := tc.visit(t, newBrowser(t, "alice", password))
			if resp == nil {
				return
			}
			if resp.StatusCode != tc.want {
				t.Fatalf("got %s, want %d", describe(resp), tc.want)
			}
			if tc.page != nil {
				tc.page(t, resp.Body)
			}
			noSession(t, by, st, resp)
		})
	}
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
