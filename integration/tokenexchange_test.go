package integration_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/echo"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
)

// Token exchange for upstreams (RFC 8693) through the real Envoy: routes
// with upstream_token_audience get a token the dev IdP issued for their
// audience in exchange for the user's, never the user's own.

// The upstreams' audiences: the dev IdP issues tokens for the first and
// refuses the second (invalid_target).
const (
	ordersAudience  = devidp.ProjectID
	refusedAudience = "290675836227099999"
)

// exchangeStack is the stack behind the real Envoy with a route per way
// of passing the exchanged token, a refused one, and bearer tokens of the
// JWT client.
func exchangeStack(t *testing.T) *stack {
	t.Helper()
	cfg := rulesBearerKeys()
	cfg["pass_access_token"] = true
	return startStack(t, stackOptions{
		config:  cfg,
		clients: []devidp.Client{devidp.DefaultClient(), jwtClient},
		envoy: withRuleRoutes(t,
			ruleRoute{"/orders/", map[string]string{"upstream_token_audience": ordersAudience}},
			ruleRoute{"/beside/", map[string]string{"upstream_token_audience": ordersAudience, "upstream_token_header": "x-upstream-token"}},
			ruleRoute{"/refused/", map[string]string{"upstream_token_audience": refusedAudience}},
		),
		front:    realEnvoy, // the emulator reads the shipped routes, not these
		idpSetup: func(idp *devidp.Server) { idp.RefuseTokenExchange(refusedAudience) },
	})
}

// exchangedFor checks that tok is a JWT of the dev IdP for audience and
// sub, and not the user's own token (user).
func exchangedFor(t *testing.T, what, tok, user, audience, sub string) {
	t.Helper()
	if tok == "" || tok == user {
		t.Fatalf("%s: the upstream got %q, want an exchanged token (the user's is %.20q…)", what, tok, user)
	}
	claims, err := devidp.Claims(tok)
	if err != nil {
		t.Fatalf("%s: the upstream's token is not a JWT: %v", what, err)
	}
	aud, _ := claims["aud"].([]any)
	if !slices.Equal(aud, []any{audience}) || claims["sub"] != sub {
		t.Fatalf("%s: the upstream's token has aud %v, sub %v; want [%s], %s", what, claims["aud"], claims["sub"], audience, sub)
	}
}

func TestTokenExchangeThroughEnvoy(t *testing.T) {
	st := exchangeStack(t)

	// A browser: signed in on a route without the key, its own token goes
	// upstream as configured.
	alice := newBrowser(t, "alice", "alice-password")
	own := upstreamSaw(t, st.login(t, alice, "/app/")).Headers["x-forwarded-access-token"]
	if own == "" {
		t.Fatal("the route without upstream_token_audience sent no access token")
	}
	if n := st.IdP.TokenExchanges(ordersAudience); n != 0 {
		t.Fatalf("a route without upstream_token_audience made %d token exchanges", n)
	}

	t.Run("replace: the exchanged token instead of the user's", func(t *testing.T) {
		got := upstreamSaw(t, alice.get(st.Front.URL+"/orders/list"))
		exchangedFor(t, "/orders/", got.Headers["x-forwarded-access-token"], own, ordersAudience, "user-alice")
		for k, v := range got.Headers {
			if strings.Contains(v, own) {
				t.Errorf("/orders/: the upstream got the user's own token in %s", k)
			}
		}
	})

	t.Run("beside: the exchanged token in its header, the user's as configured", func(t *testing.T) {
		got := upstreamSaw(t, alice.get(st.Front.URL+"/beside/list"))
		exchangedFor(t, "/beside/", got.Headers["x-upstream-token"], own, ordersAudience, "user-alice")
		if got.Headers["x-forwarded-access-token"] != own {
			t.Errorf("/beside/: x-forwarded-access-token %.20q…, want the user's own", got.Headers["x-forwarded-access-token"])
		}
	})

	t.Run("one exchange for 50 parallel requests of a session", func(t *testing.T) {
		bob := newBrowser(t, "bob", "bob-password")
		bobsOwn := upstreamSaw(t, st.login(t, bob, "/app/")).Headers["x-forwarded-access-token"]
		front, err := url.Parse(st.Front.URL)
		if err != nil {
			t.Fatal(err)
		}
		cookies := bob.jar.Cookies(front)
		before := st.IdP.TokenExchanges(ordersAudience)
		const n = 50
		tokens := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodGet, st.Front.URL+"/orders/item", nil)
				req.Header.Set("Accept", "application/json")
				for _, c := range cookies {
					req.AddCookie(c)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs[i] = err
					return
				}
				defer resp.Body.Close()
				var got echo.Request
				body, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &got) != nil {
					errs[i] = &statusError{resp.StatusCode, string(body)}
					return
				}
				tokens[i] = got.Headers["x-forwarded-access-token"]
			})
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("request %d: %v", i, errs[i])
			}
			if tokens[i] != tokens[0] {
				t.Fatalf("request %d got another upstream token than request 0", i)
			}
		}
		exchangedFor(t, "bob's /orders/", tokens[0], bobsOwn, ordersAudience, "user-bob")
		if got := st.IdP.TokenExchanges(ordersAudience) - before; got != 1 {
			t.Fatalf("%d parallel requests of one session made %d token exchanges at the IdP, want 1", n, got)
		}
	})

	t.Run("a bearer caller's token is exchanged too", func(t *testing.T) {
		tok := st.accessToken(t, jwtClient, "alice")
		got := upstreamSaw(t, apiCall(t, st, "/orders/list", tok))
		exchangedFor(t, "bearer /orders/", got.Headers["x-forwarded-access-token"], tok, ordersAudience, "user-alice")
		if got.Headers["authorization"] != "Bearer "+got.Headers["x-forwarded-access-token"] {
			t.Errorf("bearer /orders/: authorization %.30q…, want the exchanged token", got.Headers["authorization"])
		}
	})

	t.Run("an IdP refusal is the error answer; the upstream isn't reached", func(t *testing.T) {
		page := refusedBy(t, st, "browser on /refused/", http.StatusBadGateway, func() *response { return alice.get(st.Front.URL + "/refused/x") })
		if !strings.HasPrefix(page.Header.Get("Content-Type"), "text/html") || !strings.Contains(page.Body, "Upstream sign-in failed") {
			t.Errorf("browser on /refused/: got %s, want the token_exchange_failed page", describe(page))
		}
		tok := st.accessToken(t, jwtClient, "alice")
		r := refusedBy(t, st, "bearer on /refused/", http.StatusBadGateway, func() *response { return apiCall(t, st, "/refused/x", tok) })
		var body struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if err := json.Unmarshal([]byte(r.Body), &body); err != nil || body.Error != "token_exchange_failed" || !strings.Contains(body.Description, "invalid_target") {
			t.Errorf("bearer on /refused/: got %s, want JSON token_exchange_failed naming invalid_target", describe(r))
		}
		if st.IdP.TokenExchanges(refusedAudience) == 0 {
			t.Error("the refusal never came from the IdP")
		}
		// The server's log reaches us through a pipe: wait for the line.
		testkit.Eventually(t, 10*time.Second, "a log line naming the IdP's refusal (invalid_target)", func() bool {
			rec := logRecord(st.Server, map[string]string{"reason": "token_exchange_failed", "audience": refusedAudience})
			msg, _ := rec["error"].(string)
			return strings.Contains(msg, "invalid_target")
		})
		for _, secret := range []string{own, tok} {
			if strings.Contains(st.Server.Logs(), secret) {
				t.Error("the server logged a user's token")
			}
		}
	})
}

type statusError struct {
	status int
	body   string
}

func (e *statusError) Error() string {
	return http.StatusText(e.status) + ": " + clipBody(e.body, 200)
}

// clipBody bounds a body in a failure message.
func clipBody(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
