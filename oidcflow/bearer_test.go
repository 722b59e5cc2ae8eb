package oidcflow_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// jwtClient is a second app of the same project whose access tokens are JWTs.
var jwtClient = devidp.Client{ID: "api-jwt@zitadel-ext-authz", Secret: "api-secret", RedirectURIGlobs: []string{"http://127.0.0.1:*/oauth2/callback"}, JWTAccessTokens: true}

type bearerRig struct {
	idp   *devidp.Server
	p     *oidcflow.Provider
	cache *ristretto.Cache[string, *oidcflow.TokenEntry]
	clk   *testkit.Clock
}

func newBearerRig(t *testing.T, cfg oidcflow.BearerConfig, maxCost int64) *bearerRig {
	t.Helper()
	idp, err := devidp.Start(devidp.Options{Clients: []devidp.Client{devidp.DefaultClient(), jwtClient}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	cache, err := ristretto.NewCache(&ristretto.Config[string, *oidcflow.TokenEntry]{NumCounters: max(maxCost/30, 1000), MaxCost: maxCost, BufferItems: 64, Metrics: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cache.Close)
	clk := testkit.NewClock(time.Now())
	c := devidp.DefaultClient()
	if cfg.ExtraAudiences == nil {
		cfg.ExtraAudiences = []string{jwtClient.ID}
	}
	p, err := oidcflow.New(oidcflow.Config{Issuer: idp.Issuer, ClientID: c.ID, ClientSecret: c.Secret},
		oidcflow.WithBearer(cfg, cache), oidcflow.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	serve(t, p)
	waitReady(t, p)
	return &bearerRig{idp: idp, p: p, cache: cache, clk: clk}
}

func (r *bearerRig) token(t *testing.T, c devidp.Client, user string) string {
	t.Helper()
	tok, err := r.idp.Tokens(t.Context(), c, user, user+"-password")
	if err != nil {
		t.Fatal(err)
	}
	return tok.AccessToken
}

func TestBearerOpaqueAndJWT(t *testing.T) {
	r := newBearerRig(t, oidcflow.BearerConfig{}, 1<<20)
	for _, tc := range []struct {
		name   string
		client devidp.Client
		via    string
	}{
		{"opaque token by introspection", devidp.DefaultClient(), "introspection"},
		{"JWT verified locally", jwtClient, "jwt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := r.p.Authenticate(t.Context(), r.token(t, tc.client, "alice"))
			if err != nil {
				t.Fatalf("Authenticate: %v", err)
			}
			if b.Via != tc.via || b.Identity.Subject != "user-alice" || !slices.Equal(b.Identity.Groups, []string{"admin", "reader"}) || b.Expiry.IsZero() {
				t.Fatalf("Authenticate: %+v", b)
			}
		})
	}
	t.Run("forced introspection of a JWT", func(t *testing.T) {
		r := newBearerRig(t, oidcflow.BearerConfig{ForceIntrospection: true}, 1<<20)
		// The JWT client's token can only be introspected by its own client.
		tok := r.token(t, devidp.DefaultClient(), "bob")
		b, err := r.p.Authenticate(t.Context(), tok)
		if err != nil || b.Via != "introspection" {
			t.Fatalf("Authenticate: %+v %v", b, err)
		}
	})
}

// 100 concurrent Checks with one new opaque token: one introspection call.
func TestConcurrentMissesShareOneIntrospection(t *testing.T) {
	r := newBearerRig(t, oidcflow.BearerConfig{}, 1<<20)
	tok := r.token(t, devidp.DefaultClient(), "alice")
	var wg sync.WaitGroup
	var failures atomic.Int64
	start := make(chan struct{})
	for range 100 {
		wg.Go(func() {
			<-start
			if _, err := r.p.Authenticate(context.Background(), tok); err != nil {
				failures.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d of 100 concurrent Authenticate calls failed", failures.Load())
	}
	if n := r.idp.Calls("/oauth/introspect"); n != 1 {
		t.Fatalf("introspection calls = %d, want 1", n)
	}
}

// Fake clock: a positive entry lives until the token's exp, a negative one
// for the negative TTL.
func TestTokenCacheLifetimes(t *testing.T) {
	r := newBearerRig(t, oidcflow.BearerConfig{PositiveTTL: time.Hour, NegativeTTL: 10 * time.Second}, 1<<20)
	tok := r.token(t, devidp.DefaultClient(), "alice")
	b, err := r.p.Authenticate(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	r.cache.Wait()
	calls := func() int64 { return r.idp.Calls("/oauth/introspect") }
	if _, err := r.p.Authenticate(t.Context(), tok); err != nil || calls() != 1 {
		t.Fatalf("cached token: err %v, introspections %d, want 1", err, calls())
	}
	r.clk.Add(b.Expiry.Sub(r.clk.Now()) - time.Second)
	if _, _ = r.p.Authenticate(t.Context(), tok); calls() != 1 {
		t.Fatalf("one second before exp: introspections %d, want still 1", calls())
	}
	r.clk.Add(2 * time.Second)
	r.p.Authenticate(t.Context(), tok)
	if calls() != 2 {
		t.Fatalf("after exp: introspections %d, want a new call", calls())
	}

	bad := "opaque-token-that-the-idp-does-not-know"
	if _, err := r.p.Authenticate(t.Context(), bad); !errors.Is(err, oidcflow.ErrInvalidToken) {
		t.Fatalf("unknown token: %v, want ErrInvalidToken", err)
	}
	r.cache.Wait()
	n := calls()
	r.clk.Add(9 * time.Second)
	if _, err := r.p.Authenticate(t.Context(), bad); !errors.Is(err, oidcflow.ErrInvalidToken) || calls() != n {
		t.Fatalf("negative entry within its TTL: %v, introspections %d → %d", err, n, calls())
	}
	r.clk.Add(2 * time.Second)
	r.p.Authenticate(t.Context(), bad)
	if calls() != n+1 {
		t.Fatalf("negative entry after its TTL: introspections %d, want %d", calls(), n+1)
	}
}

// The IdP goes away: cached tokens keep working; a new one is "unavailable".
func TestIdPDownAfterCaching(t *testing.T) {
	r := newBearerRig(t, oidcflow.BearerConfig{}, 1<<20)
	cached := r.token(t, devidp.DefaultClient(), "alice")
	fresh := r.token(t, devidp.DefaultClient(), "bob")
	if _, err := r.p.Authenticate(t.Context(), cached); err != nil {
		t.Fatal(err)
	}
	r.cache.Wait()
	r.idp.Close()
	if _, err := r.p.Authenticate(t.Context(), cached); err != nil {
		t.Fatalf("cached token with the IdP down: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	if _, err := r.p.Authenticate(ctx, fresh); !errors.Is(err, oidcflow.ErrIdPUnavailable) {
		t.Fatalf("new token with the IdP down: %v, want ErrIdPUnavailable", err)
	}
}

// 200,000 distinct random bearer tokens keep the cache within its bound.
func TestTokenFloodStaysWithinTheCacheBound(t *testing.T) {
	const bound = 1 << 20
	r := newBearerRig(t, oidcflow.BearerConfig{}, bound)
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"nope"}`))
	buf := make([]byte, 48)
	for range 200_000 {
		rand.Read(buf)
		tok := header + "." + base64.RawURLEncoding.EncodeToString(buf[:24]) + "." + base64.RawURLEncoding.EncodeToString(buf[24:])
		if _, err := r.p.Authenticate(t.Context(), tok); !errors.Is(err, oidcflow.ErrInvalidToken) {
			t.Fatalf("random token: %v, want ErrInvalidToken", err)
		}
	}
	r.cache.Wait()
	m := r.cache.Metrics
	held := int64(m.CostAdded()) - int64(m.CostEvicted())
	if held > bound || m.KeysAdded() == 0 {
		t.Fatalf("cache holds cost %d (added %d, evicted %d, keys %d), bound %d", held, m.CostAdded(), m.CostEvicted(), m.KeysAdded(), bound)
	}
	if n := r.idp.Calls("/keys"); n > 2 {
		t.Fatalf("random kids caused %d JWKS fetches, want at most the initial one and one refetch", n)
	}
	t.Logf("200000 random tokens: cache cost held %d of %d, keys added %d, evicted %d", held, bound, m.KeysAdded(), m.KeysEvicted())
}

// Scopes come from scope (a string) or, as Hydra, Okta and Azure AD send
// them, scp (a list or a string).
func TestBearerScopesFromScp(t *testing.T) {
	r := newBearerRig(t, oidcflow.BearerConfig{}, 1<<20)
	now := time.Now()
	for name, tc := range map[string]struct {
		claims map[string]any
		want   []string
	}{
		"scp list":   {map[string]any{"scp": []string{"read:items", "write:items"}}, []string{"read:items", "write:items"}},
		"scp string": {map[string]any{"scp": "read:items write:items"}, []string{"read:items", "write:items"}},
		"scope wins": {map[string]any{"scope": "openid", "scp": []string{"other"}}, []string{"openid"}},
	} {
		claims := map[string]any{"iss": r.idp.Issuer, "sub": "user-alice", "aud": []string{jwtClient.ID}, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": name}
		for k, v := range tc.claims {
			claims[k] = v
		}
		tok, err := r.idp.SignJWT(t.Context(), claims)
		if err != nil {
			t.Fatal(err)
		}
		b, err := r.p.Authenticate(t.Context(), tok)
		if err != nil || !slices.Equal(b.Scopes, tc.want) {
			t.Errorf("%s: scopes %v (%v), want %v", name, b, err, tc.want)
		}
	}
}

// An IdP whose discovery lists no introspection endpoint (Ory Hydra serves
// it on its admin port): a warning at start, opaque tokens refused with
// the reason in the log, and introspection_url makes them work.
func TestIntrospectionURLWhenDiscoveryHasNone(t *testing.T) {
	idp, err := devidp.Start(devidp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	idp.SetTamper(func(r *http.Request, status int, body []byte) (int, []byte) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			return status, body
		}
		var doc map[string]any
		json.Unmarshal(body, &doc)
		delete(doc, "introspection_endpoint")
		out, _ := json.Marshal(doc)
		return status, out
	})
	token, err := idp.Tokens(t.Context(), devidp.DefaultClient(), "alice", "alice-password")
	if err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{"", idp.Issuer + "/oauth/introspect"} {
		var logs bytes.Buffer
		c := devidp.DefaultClient()
		p, err := oidcflow.New(oidcflow.Config{Issuer: idp.Issuer, ClientID: c.ID, ClientSecret: c.Secret},
			oidcflow.WithBearer(oidcflow.BearerConfig{IntrospectionURL: url}, nil), oidcflow.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Discover(t.Context()); err != nil {
			t.Fatal(err)
		}
		b, err := p.Authenticate(t.Context(), token.AccessToken)
		if url == "" {
			if !errors.Is(err, oidcflow.ErrInvalidToken) || !strings.Contains(logs.String(), "no introspection_endpoint") || !strings.Contains(logs.String(), "reason=no_introspection_endpoint") {
				t.Errorf("no endpoint: %v, logs:\n%s", err, logs.String())
			}
			if strings.Contains(logs.String(), token.AccessToken) {
				t.Error("the token was logged")
			}
		} else if err != nil || b.Identity.Subject != "user-alice" {
			t.Errorf("introspection_url %s: %+v, %v", url, b, err)
		}
	}
}

// Made-up opaque tokens can't make us call the IdP once each: past
// introspection_budget per second an unknown token is answered
// ErrOverBudget without a call (not "invalid", and not remembered: it may
// be good, and is checked once the flood passes); a token that can't be an
// RFC 6750 token costs no call at all.
func TestIntrospectionBudgetBoundsUnknownTokens(t *testing.T) {
	r := newBearerRig(t, oidcflow.BearerConfig{IntrospectionBudget: 20, NegativeTTL: time.Minute, PositiveTTL: time.Minute}, 1<<20)
	calls := func() int64 { return r.idp.Calls("/oauth/introspect") }
	good := r.token(t, devidp.DefaultClient(), "alice")
	invalid, over := 0, 0
	for i := range 1000 {
		raw := make([]byte, 48)
		_, _ = rand.Read(raw)
		tok := base64.RawURLEncoding.EncodeToString(raw)
		_, err := r.p.Authenticate(t.Context(), tok)
		switch {
		case errors.Is(err, oidcflow.ErrInvalidToken):
			invalid++
		case errors.Is(err, oidcflow.ErrOverBudget):
			over++
		default:
			t.Fatalf("random token %d: %v, want ErrInvalidToken or ErrOverBudget", i, err)
		}
	}
	if n := calls(); n != 20 || invalid != 20 || over != 980 {
		t.Fatalf("1,000 random tokens within one second: %d introspections, %d invalid, %d over budget; want the budget's 20, 20, 980", n, invalid, over)
	}
	if _, err := r.p.Authenticate(t.Context(), good); !errors.Is(err, oidcflow.ErrOverBudget) || calls() != 20 {
		t.Fatalf("a real token during the flood: %v after %d calls, want ErrOverBudget without a call", err, calls())
	}
	r.clk.Add(time.Second)
	if b, err := r.p.Authenticate(t.Context(), good); err != nil || b.Identity.Subject == "" {
		t.Fatalf("the real token once the budget refilled: %v", err)
	}
	before := calls()
	for _, bad := range []string{"short", "has space in it........", "repeated-authorization,Bearer second-token", "quote\"token..........", "ünïcode-token-0123456789", strings.Repeat("a", 17<<10), "abc=def=========="} {
		if _, err := r.p.Authenticate(t.Context(), bad); !errors.Is(err, oidcflow.ErrInvalidToken) {
			t.Errorf("%.20q: %v, want ErrInvalidToken", bad, err)
		}
	}
	if n := calls() - before; n != 0 {
		t.Fatalf("tokens of no RFC 6750 shape made %d introspections, want none", n)
	}
}

// A reload that narrows the accepted audiences rebuilds the Provider on
// the same token cache: the new one never serves a verdict the old one
// made under the old rules.
func TestRebuiltProviderServesNoOldVerdict(t *testing.T) {
	r := newBearerRig(t, oidcflow.BearerConfig{ExtraAudiences: []string{jwtClient.ID}, PositiveTTL: time.Hour}, 1<<20)
	tok := r.token(t, jwtClient, "alice")
	if _, err := r.p.Authenticate(t.Context(), tok); err != nil {
		t.Fatalf("accepted audience: %v", err)
	}
	c := devidp.DefaultClient()
	narrowed, err := oidcflow.New(oidcflow.Config{Issuer: r.idp.Issuer, ClientID: c.ID, ClientSecret: c.Secret},
		oidcflow.WithBearer(oidcflow.BearerConfig{ExtraAudiences: []string{"another-api"}, PositiveTTL: time.Hour}, r.cache), oidcflow.WithClock(r.clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	serve(t, narrowed)
	waitReady(t, narrowed)
	if _, err := narrowed.Authenticate(t.Context(), tok); !errors.Is(err, oidcflow.ErrInvalidToken) {
		t.Fatalf("after the audience was dropped: %v, want ErrInvalidToken (an old verdict was served)", err)
	}
}
