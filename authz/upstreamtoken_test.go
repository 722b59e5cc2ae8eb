package authz

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/internal/closablecache"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
	"google.golang.org/protobuf/proto"
)

// The user's tokens, distinct enough that any header carrying one is
// found.
const (
	userAccessToken = "user-access-token-of-alice"
	userIDToken     = "user-id-token-of-alice"
	callerToken     = "caller-access-token-of-bob"
)

// exchangeIdP is a stub IdP whose token exchange issues "x:AUDIENCE:n"
// for the nth exchange, valid for five minutes from t0, and counts the
// exchanges; err (when set) is its answer instead.
type exchangeIdP struct {
	stubIdP
	calls    atomic.Int64
	subjects sync.Map // subject token → true
	err      error
	noExpiry bool
	// block, when set, holds every exchange until it is closed.
	block chan struct{}
}

func newExchangeIdP() *exchangeIdP {
	x := &exchangeIdP{}
	x.tokenExchange = func(ctx context.Context, subject, audience string) (*oidcflow.ExchangedToken, error) {
		n := x.calls.Add(1)
		x.subjects.Store(subject, true)
		if x.block != nil {
			select {
			case <-x.block:
			case <-ctx.Done():
				return nil, errors.Join(oidcflow.ErrIdPUnavailable, ctx.Err())
			}
		}
		if x.err != nil {
			return nil, x.err
		}
		t := &oidcflow.ExchangedToken{AccessToken: "x:" + audience + ":" + string(rune('0'+n))}
		if !x.noExpiry {
			t.Expiry = t0.Add(5 * time.Minute)
		}
		return t, nil
	}
	return x
}

// exchangeServer is a test server with a ristretto cache of upstream
// tokens and a clock the test moves (*now).
func exchangeServer(t *testing.T, cfg Config, idp IdP) (*Server, *sessionpb.Session, string, *time.Time) {
	t.Helper()
	s, jar := newTestServer(t, cfg, idp, nil)
	raw, err := ristretto.NewCache(&ristretto.Config[uint64, *UpstreamToken]{NumCounters: 1000, MaxCost: 1 << 20, BufferItems: 64})
	if err != nil {
		t.Fatal(err)
	}
	// As the binary's: an exchange a test's Check stopped waiting for may
	// still be keeping its token when the test ends and closes the cache.
	cache := closablecache.New(raw)
	t.Cleanup(cache.Close)
	WithUpstreamTokenCache(cache)(s)
	now := t0
	s.now = func() time.Time { return now }
	sess := alice()
	sess.AccessToken, sess.IdToken = userAccessToken, userIDToken
	return s, sess, sessionCookie(t, jar, sess), &now
}

// check runs one Check on a route with ext, as a browser (html) or a
// program.
func check(t *testing.T, s *Server, ext, headers map[string]string) *authv3.CheckResponse {
	t.Helper()
	req := envoyRequest("GET", "/api/orders", headers)
	req.Attributes.ContextExtensions = ext
	resp, err := s.Check(t.Context(), req)
	if err != nil {
		t.Fatalf("Check: gRPC error %v", err)
	}
	return resp
}

// upstreamHeaders are the headers an allowed answer sets upstream; nil
// when it isn't allowed.
func upstreamHeaders(resp *authv3.CheckResponse) map[string]string {
	if resp.GetStatus().GetCode() != 0 {
		return nil
	}
	out := map[string]string{}
	for _, h := range resp.GetOkResponse().GetHeaders() {
		out[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	return out
}

// carriesToken names the headers whose value holds tok.
func carriesToken(headers map[string]string, tok string) []string {
	var names []string
	for k, v := range headers {
		if strings.Contains(v, tok) {
			names = append(names, k)
		}
	}
	return names
}

// A route's upstream_token_audience puts the exchanged token where the
// configuration sends the user's (replace), or in upstream_token_header
// beside it; for sessions and bearer callers alike.
func TestUpstreamTokenHeaders(t *testing.T) {
	bob := &oidcflow.Bearer{Identity: oidcflow.Identity{Subject: "user-bob", User: "user-bob", Email: "bob@example.com", EmailVerified: true}, Via: "jwt"}
	aud := map[string]string{"upstream_token_audience": "orders-api"}
	beside := map[string]string{"upstream_token_audience": "orders-api", "upstream_token_header": "x-upstream-token"}
	cases := []struct {
		name    string
		cfg     Config
		bearer  bool
		ext     map[string]string
		want    map[string]string // header → value
		subject string            // the token exchanged
		user    string            // the user's token, which replace mode never sends
	}{
		{"session, pass_access_token: replaced", Config{PassAccessToken: true, SetXAuthRequest: true}, false, aud,
			map[string]string{"x-forwarded-access-token": "x:orders-api:1", "x-auth-request-access-token": "x:orders-api:1"}, userAccessToken, userAccessToken},
		{"session, pass_authorization_header: the ID token's place", Config{PassAuthorizationHeader: true}, false, aud,
			map[string]string{"authorization": "Bearer x:orders-api:1"}, userAccessToken, userIDToken},
		{"session, beside", Config{PassAccessToken: true}, false, beside,
			map[string]string{"x-upstream-token": "x:orders-api:1", "x-forwarded-access-token": userAccessToken}, userAccessToken, ""},
		{"bearer caller: replaced, its own authorization too", Config{PassAccessToken: true}, true, aud,
			map[string]string{"x-forwarded-access-token": "x:orders-api:1", "authorization": "Bearer x:orders-api:1"}, callerToken, callerToken},
		{"bearer caller without pass_access_token: authorization replaced", Config{}, true, aud,
			map[string]string{"authorization": "Bearer x:orders-api:1"}, callerToken, callerToken},
		{"bearer caller, beside", Config{PassAccessToken: true}, true, beside,
			map[string]string{"x-upstream-token": "x:orders-api:1", "x-forwarded-access-token": callerToken}, callerToken, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			idp := newExchangeIdP()
			s, _, cookie, _ := exchangeServer(t, tc.cfg, idp)
			headers := map[string]string{"cookie": cookie, "accept": "text/html", "x_upstream_token": "forged"}
			if tc.bearer {
				s.bearerAuth = stubBearer{b: bob}
				headers = map[string]string{"authorization": "Bearer " + callerToken, "accept": "application/json", "x_upstream_token": "forged"}
			}
			resp := check(t, s, tc.ext, headers)
			got := upstreamHeaders(resp)
			if got == nil {
				t.Fatalf("Check(%s): not allowed: %v", tc.name, resp)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("Check(%s): upstream %s = %q, want %q", tc.name, k, got[k], v)
				}
			}
			if tc.user != "" {
				if names := carriesToken(got, tc.user); len(names) > 0 {
					t.Errorf("Check(%s): the user's own token still goes upstream in %v", tc.name, names)
				}
			}
			if _, ok := idp.subjects.Load(tc.subject); !ok || idp.calls.Load() != 1 {
				t.Errorf("Check(%s): %d exchanges, want one of the user's token", tc.name, idp.calls.Load())
			}
			if _, ok := tc.ext["upstream_token_header"]; ok {
				removed := resp.GetOkResponse().GetHeadersToRemove()
				if !strings.Contains(strings.Join(removed, ","), "x_upstream_token") {
					t.Errorf("Check(%s): the client's x_upstream_token passes (removed %v)", tc.name, removed)
				}
			}
		})
	}
}

// A route without the key is answered as before: no exchange, the user's
// token where the configuration puts it.
func TestUpstreamTokenOnlyWhereTheRouteAsks(t *testing.T) {
	idp := newExchangeIdP()
	s, _, cookie, _ := exchangeServer(t, Config{PassAccessToken: true}, idp)
	got := upstreamHeaders(check(t, s, map[string]string{"allowed_groups": "admin"}, map[string]string{"cookie": cookie}))
	if got["x-forwarded-access-token"] != userAccessToken || idp.calls.Load() != 0 {
		t.Fatalf("route without upstream_token_audience: token %q, %d exchanges; want the user's, none", got["x-forwarded-access-token"], idp.calls.Load())
	}
}

// Exchanged tokens are kept per user token and audience until shortly
// before they expire.
func TestUpstreamTokenCache(t *testing.T) {
	idp := newExchangeIdP()
	s, sess, cookie, now := exchangeServer(t, Config{PassAccessToken: true}, idp)
	orders := map[string]string{"upstream_token_audience": "orders-api"}
	token := func(ext map[string]string, cookie string) string {
		t.Helper()
		got := upstreamHeaders(check(t, s, ext, map[string]string{"cookie": cookie}))
		if got == nil {
			t.Fatal("not allowed")
		}
		return got["x-forwarded-access-token"]
	}
	steps := []struct {
		name      string
		run       func() string
		want      string
		exchanges int64
	}{
		{"first Check exchanges", func() string { return token(orders, cookie) }, "x:orders-api:1", 1},
		{"second Check is a cache hit", func() string { return token(orders, cookie) }, "x:orders-api:1", 1},
		{"another audience is another exchange", func() string {
			return token(map[string]string{"upstream_token_audience": "billing-api"}, cookie)
		}, "x:billing-api:2", 2},
		{"another session (user token) is another exchange", func() string {
			other := proto.CloneOf(sess)
			other.AccessToken = "user-access-token-of-alice-2"
			_, jar := newTestServer(t, Config{}, idp, nil)
			return token(orders, sessionCookie(t, jar, other))
		}, "x:orders-api:3", 3},
		{"still cached 4 minutes later", func() string { *now = t0.Add(4 * time.Minute); return token(orders, cookie) }, "x:orders-api:1", 3},
		{"within the margin before expiry: exchanged anew", func() string { *now = t0.Add(4*time.Minute + 31*time.Second); return token(orders, cookie) }, "x:orders-api:4", 4},
	}
	for _, st := range steps {
		if got := st.run(); got != st.want || idp.calls.Load() != st.exchanges {
			t.Fatalf("%s: token %q after %d exchanges, want %q after %d", st.name, got, idp.calls.Load(), st.want, st.exchanges)
		}
	}

	// An IdP that states no expiry: the token is used, never kept.
	idp2 := newExchangeIdP()
	idp2.noExpiry = true
	s2, _, cookie2, _ := exchangeServer(t, Config{PassAccessToken: true}, idp2)
	for range 2 {
		check(t, s2, orders, map[string]string{"cookie": cookie2})
	}
	if n := idp2.calls.Load(); n != 2 {
		t.Fatalf("tokens without expiry: %d exchanges for 2 Checks, want 2 (none kept)", n)
	}
}

// The IdP refusing is a 502 (a page for browsers, JSON naming the cause
// for programs), unreachable or slow 503/504; never an allowed answer
// with the user's own token.
func TestUpstreamTokenFailures(t *testing.T) {
	refused := &oidcflow.ExchangeError{Status: 400, Code: "invalid_target"}
	ext := map[string]string{"upstream_token_audience": "orders-api"}
	cases := []struct {
		name       string
		err        error
		block      bool
		bearer     bool
		api        bool
		ext        map[string]string
		cfg        Config
		status     int
		reason     Reason
		jsonCause  string // in the JSON error_description
		exchanges  int64
		retryAfter bool
	}{
		{"refused, browser: 502 page", refused, false, false, false, ext, Config{PassAccessToken: true}, 502, ReasonTokenExchange, "", 1, false},
		{"refused, program: 502 JSON naming the cause", refused, false, false, true, ext, Config{PassAccessToken: true}, 502, ReasonTokenExchange, "invalid_target", 1, false},
		{"refused, bearer caller: 502 JSON", refused, false, true, true, ext, Config{}, 502, ReasonTokenExchange, "invalid_target", 1, false},
		{"client refused: 502", &oidcflow.ExchangeError{Status: 401, Code: "unauthorized_client"}, false, false, true, ext, Config{PassAccessToken: true}, 502, ReasonTokenExchange, "unauthorized_client", 1, false},
		{"unusable answer: 502", oidcflow.ErrInvalidToken, false, false, true, ext, Config{PassAccessToken: true}, 502, ReasonTokenExchange, "not a usable access token", 1, false},
		{"unreachable: 503", oidcflow.ErrIdPUnavailable, false, false, false, ext, Config{PassAccessToken: true}, 503, ReasonIdPUnavailable, "", 1, true},
		{"slower than idp_timeout: 504", nil, true, true, true, ext, Config{IDPTimeout: 20 * time.Millisecond}, 504, ReasonIdPTimeout, "", 1, true},
		{"bad upstream_token_header: 500, no exchange", nil, false, false, false,
			map[string]string{"upstream_token_audience": "orders-api", "upstream_token_header": "authorization"}, Config{PassAccessToken: true}, 500, ReasonBadRouteConfig, "", 0, false},
		{"upstream_token_header with '_': 500", nil, false, true, true,
			map[string]string{"upstream_token_audience": "orders-api", "upstream_token_header": "x_upstream"}, Config{}, 500, ReasonBadRouteConfig, "", 0, false},
		{"upstream_token_header the configuration sets: 500", nil, false, false, false,
			map[string]string{"upstream_token_audience": "orders-api", "upstream_token_header": "x-id-token"}, Config{IDTokenHeader: "x-id-token"}, 500, ReasonBadRouteConfig, "", 0, false},
		{"no header carries a session's token: 500, no exchange", nil, false, false, false, ext, Config{}, 500, ReasonBadRouteConfig, "", 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			idp := newExchangeIdP()
			idp.err = tc.err
			if tc.block {
				idp.block = make(chan struct{})
				defer close(idp.block)
			}
			s, _, cookie, _ := exchangeServer(t, tc.cfg, idp)
			headers := map[string]string{"cookie": cookie, "accept": "text/html"}
			if tc.api {
				headers["accept"] = "application/json"
			}
			if tc.bearer {
				s.bearerAuth = stubBearer{b: &oidcflow.Bearer{Identity: oidcflow.Identity{Subject: "user-bob", User: "user-bob"}, Via: "jwt"}}
				headers = map[string]string{"authorization": "Bearer " + callerToken, "accept": "application/json"}
			}
			var d *Decision
			s.observer = observerFunc(func(got *Decision) { d = got })
			resp := check(t, s, tc.ext, headers)
			if resp.GetStatus().GetCode() == 0 {
				t.Fatalf("Check(%s): allowed with %v, want %d", tc.name, upstreamHeaders(resp), tc.status)
			}
			denied := resp.GetDeniedResponse()
			if int(denied.GetStatus().GetCode()) != tc.status || d == nil || d.Reason != tc.reason {
				t.Fatalf("Check(%s): got %d %v, want %d %s", tc.name, denied.GetStatus().GetCode(), d, tc.status, tc.reason)
			}
			if n := idp.calls.Load(); n != tc.exchanges {
				t.Errorf("Check(%s): %d exchanges, want %d", tc.name, n, tc.exchanges)
			}
			for _, tok := range []string{userAccessToken, userIDToken, callerToken} {
				if strings.Contains(denied.String(), tok) {
					t.Errorf("Check(%s): the answer holds the user's token", tc.name)
				}
			}
			ct, retry := "", false
			for _, h := range denied.GetHeaders() {
				switch h.GetHeader().GetKey() {
				case "content-type":
					ct = h.GetHeader().GetValue()
				case "retry-after":
					retry = true
				}
			}
			if retry != tc.retryAfter {
				t.Errorf("Check(%s): retry-after %v, want %v", tc.name, retry, tc.retryAfter)
			}
			switch {
			case tc.jsonCause != "":
				var body struct {
					Error            string `json:"error"`
					ErrorDescription string `json:"error_description"`
				}
				err := json.Unmarshal([]byte(denied.GetBody()), &body)
				if err != nil || ct != "application/json" || body.Error != string(ReasonTokenExchange) || !strings.Contains(body.ErrorDescription, tc.jsonCause) {
					t.Errorf("Check(%s): body %q (%s), want JSON error %s naming %q", tc.name, denied.GetBody(), ct, ReasonTokenExchange, tc.jsonCause)
				}
			case !tc.api && tc.status != 500:
				if !strings.HasPrefix(ct, "text/html") {
					t.Errorf("Check(%s): content-type %q, want a page", tc.name, ct)
				}
			}
		})
	}
}

type observerFunc func(*Decision)

func (f observerFunc) Decided(_ context.Context, d *Decision, _ time.Duration) { f(d) }

// Fifty concurrent Checks for one session and audience make one exchange,
// and all get its token.
func TestUpstreamTokenCoalesced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		idp := newExchangeIdP()
		idp.block = make(chan struct{})
		s, _, cookie, _ := exchangeServer(t, Config{PassAccessToken: true}, idp)
		ext := map[string]string{"upstream_token_audience": "orders-api"}
		const n = 50
		got := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				got[i] = upstreamHeaders(check(t, s, ext, map[string]string{"cookie": cookie}))["x-forwarded-access-token"]
			})
		}
		synctest.Wait() // every Check waits for the one exchange
		close(idp.block)
		wg.Wait()
		if c := idp.calls.Load(); c != 1 {
			t.Errorf("%d concurrent Checks made %d exchanges, want 1", n, c)
		}
		for i, tok := range got {
			if tok != "x:orders-api:1" {
				t.Fatalf("Check %d: upstream token %q, want the exchanged one", i, tok)
			}
		}
	})
}

// BenchmarkCheckUpstreamToken is BenchmarkCheck's cached session on a
// route with an exchanged token cached (replacing the user's, and
// beside it), and on the same route without the key for comparison.
func BenchmarkCheckUpstreamToken(b *testing.B) {
	sessions, err := ristretto.NewCache(&ristretto.Config[string, *session.Entry]{KeyToHash: session.KeyToHash, NumCounters: 10000, MaxCost: 1 << 26, BufferItems: 64})
	if err != nil {
		b.Fatal(err)
	}
	defer sessions.Close()
	tokens, err := ristretto.NewCache(&ristretto.Config[uint64, *UpstreamToken]{NumCounters: 10000, MaxCost: 1 << 24, BufferItems: 64})
	if err != nil {
		b.Fatal(err)
	}
	defer tokens.Close()
	idp := newExchangeIdP()
	s, jar := newTestServer(b, Config{PassAccessToken: true}, idp, sessions)
	WithUpstreamTokenCache(tokens)(s)
	cookie := sessionCookie(b, jar, benchSession())
	sessions.Wait()
	for _, bc := range []struct {
		name string
		ext  map[string]string
	}{
		{"route_without_key", map[string]string{"allowed_groups": "admin,reader"}},
		{"replace_cached", map[string]string{"allowed_groups": "admin,reader", "upstream_token_audience": "orders-api"}},
		{"beside_cached", map[string]string{"allowed_groups": "admin,reader", "upstream_token_audience": "orders-api", "upstream_token_header": "x-upstream-token"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := realisticRequest(cookie)
			req.Attributes.ContextExtensions = bc.ext
			ctx := b.Context()
			for range 2 { // the exchange, then the identity block with its token
				if resp, _ := s.Check(ctx, req); resp.GetStatus().GetCode() != 0 {
					b.Fatalf("setup: not allowed: %v", resp)
				}
			}
			calls := idp.calls.Load()
			b.ReportAllocs()
			for b.Loop() {
				if resp, _ := s.Check(ctx, req); resp.GetStatus().GetCode() != 0 {
					b.Fatal("denied")
				}
			}
			if idp.calls.Load() != calls {
				b.Fatalf("exchanged during the loop: the token was not cached")
			}
		})
	}
}
