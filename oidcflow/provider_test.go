package oidcflow_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

const redirectURI = "http://127.0.0.1:8000/oauth2/callback"

var noRedirects = testkit.NoRedirects()

func startIdP(t testing.TB) *devidp.Server {
	t.Helper()
	idp, err := devidp.Start(devidp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { idp.Close() })
	return idp
}

func startProvider(t testing.TB, issuer string) *oidcflow.Provider {
	t.Helper()
	c := devidp.DefaultClient()
	p, err := oidcflow.New(oidcflow.Config{Issuer: issuer, ClientID: c.ID, ClientSecret: c.Secret, Scopes: []string{"openid", "email", "profile"}})
	if err != nil {
		t.Fatal(err)
	}
	serve(t, p)
	return p
}

// serve runs p (discovery, key refresh) until the test ends.
func serve(t testing.TB, p *oidcflow.Provider) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func waitReady(t testing.TB, p *oidcflow.Provider) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, "the provider to be ready", p.Ready)
}

// login runs the browser part and returns code and state.
func login(t *testing.T, p *oidcflow.Provider, l oidcflow.Login, user, pass string) string {
	t.Helper()
	authURL, err := p.AuthURL(l, redirectURI, nil)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := devidp.LoginForm(noRedirects, authURL, user, pass)
	if err != nil {
		t.Fatal(err)
	}
	if got := cb.Query().Get("state"); got != l.State {
		t.Fatalf("callback state: got %q, want %q", got, l.State)
	}
	return cb.Query().Get("code")
}

func TestCodeFlow(t *testing.T) {
	idp := startIdP(t)
	p := startProvider(t, idp.Issuer)
	waitReady(t, p)
	l, err := p.NewLogin()
	if err != nil {
		t.Fatal(err)
	}
	authURL, _ := p.AuthURL(l, redirectURI, nil)
	for _, want := range []string{"response_type=code", "client_id=web%40zitadel-ext-authz", "code_challenge_method=S256", "nonce=" + l.Nonce, "scope=openid+email+profile"} {
		if !contains(authURL, want) {
			t.Errorf("AuthURL %s lacks %s", authURL, want)
		}
	}
	code := login(t, p, l, "alice", "alice-password")
	tok, err := p.Exchange(t.Context(), code, redirectURI, l)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	id := tok.Identity
	if id.Subject != "user-alice" || id.Email != "alice@example.com" || id.PreferredUsername != "alice" {
		t.Errorf("identity: got %+v", id)
	}
	if !slices.Equal(id.Groups, []string{"admin", "reader"}) {
		t.Errorf("groups from ZITADEL role claims: got %v, want [admin reader]", id.Groups)
	}
	if tok.AccessToken == "" || tok.IDToken == "" || tok.Expiry.IsZero() {
		t.Errorf("tokens incomplete: %+v", tok)
	}

	t.Run("code replay is rejected", func(t *testing.T) {
		if _, err := p.Exchange(t.Context(), code, redirectURI, l); !errors.Is(err, oidcflow.ErrRejected) {
			t.Fatalf("Exchange(replayed code): got %v, want ErrRejected", err)
		}
	})
	t.Run("wrong nonce is an invalid token", func(t *testing.T) {
		l2, _ := p.NewLogin()
		code := login(t, p, l2, "bob", "bob-password")
		l2.Nonce = "not-the-nonce"
		if _, err := p.Exchange(t.Context(), code, redirectURI, l2); !errors.Is(err, oidcflow.ErrInvalidToken) {
			t.Fatalf("Exchange(wrong nonce): got %v, want ErrInvalidToken", err)
		}
	})
	t.Run("wrong PKCE verifier is rejected", func(t *testing.T) {
		l3, _ := p.NewLogin()
		code := login(t, p, l3, "bob", "bob-password")
		// A different verifier of the same length (never equal to the real one).
		if l3.CodeVerifier[0] == 'x' {
			l3.CodeVerifier = "y" + l3.CodeVerifier[1:]
		} else {
			l3.CodeVerifier = "x" + l3.CodeVerifier[1:]
		}
		if _, err := p.Exchange(t.Context(), code, redirectURI, l3); !errors.Is(err, oidcflow.ErrRejected) {
			t.Fatalf("Exchange(wrong verifier): got %v, want ErrRejected", err)
		}
	})
	t.Run("hanging token endpoint hits the deadline", func(t *testing.T) {
		l4, _ := p.NewLogin()
		code := login(t, p, l4, "bob", "bob-password")
		idp.HangToken()
		defer idp.Release()
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		_, err := p.Exchange(ctx, code, redirectURI, l4)
		if !errors.Is(err, oidcflow.ErrIdPUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Exchange(hung IdP): got %v, want ErrIdPUnavailable + DeadlineExceeded", err)
		}
	})
	t.Run("end session URL", func(t *testing.T) {
		u, err := p.EndSessionURL(tok.IDToken, "http://127.0.0.1:8000/", "")
		if err != nil || !contains(u, "id_token_hint=") || !contains(u, "client_id=web%40zitadel-ext-authz") || !contains(u, "post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A8000%2F") {
			t.Fatalf("EndSessionURL: %s, %v", u, err)
		}
	})
}

// An app switched to JWT access tokens: the at_hash check runs on a JWT.
func TestCodeFlowWithJWTAccessTokens(t *testing.T) {
	c := devidp.DefaultClient()
	c.JWTAccessTokens = true
	idp, err := devidp.Start(devidp.Options{Clients: []devidp.Client{c}})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	p := startProvider(t, idp.Issuer)
	waitReady(t, p)
	l, _ := p.NewLogin()
	code := login(t, p, l, "alice", "alice-password")
	tok, err := p.Exchange(t.Context(), code, redirectURI, l)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if strings.Count(tok.AccessToken, ".") != 2 || !slices.Equal(tok.Identity.Groups, []string{"admin", "reader"}) {
		t.Fatalf("want a JWT access token and roles, got %q %v", tok.AccessToken, tok.Identity.Groups)
	}
}

func TestStartsBeforeTheIdP(t *testing.T) {
	// Reserve an address, start the provider against it while nothing
	// listens, then bring the IdP up there: the provider becomes ready
	// without a restart.
	idp := startIdP(t)
	addr := idp.Issuer[len("http://"):]
	idp.Close()
	p := startProvider(t, idp.Issuer)
	l, _ := p.NewLogin()
	if _, err := p.AuthURL(l, redirectURI, nil); !errors.Is(err, oidcflow.ErrIdPUnavailable) {
		t.Fatalf("AuthURL before discovery: got %v, want ErrIdPUnavailable", err)
	}
	idp2, err := devidp.Start(devidp.Options{Addr: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer idp2.Close()
	waitReady(t, p)
}

func TestGroups(t *testing.T) {
	roles := map[string]any{"admin": map[string]any{"1": "a.example"}}
	cases := []struct {
		name   string
		claims map[string]any
		want   []string
	}{
		{"groups list", map[string]any{"groups": []any{"b", "a"}}, []string{"a", "b"}},
		{"groups string", map[string]any{"groups": "ops"}, []string{"ops"}},
		{"zitadel project roles", map[string]any{"urn:zitadel:iam:org:project:roles": roles}, []string{"admin"}},
		{"zitadel per-project roles", map[string]any{"urn:zitadel:iam:org:project:123:roles": map[string]any{"dev": map[string]any{}}}, []string{"dev"}},
		{"docs array shape", map[string]any{"urn:zitadel:iam:org:project:roles": []any{roles}}, []string{"admin"}},
		{"both names deduplicated plus groups", map[string]any{"groups": []any{"ops"}, "urn:zitadel:iam:org:project:roles": roles, "urn:zitadel:iam:org:project:9:roles": roles}, []string{"admin", "ops"}},
		{"unrelated urn ignored", map[string]any{"urn:zitadel:iam:user:metadata": map[string]any{"k": "dg"}}, nil},
	}
	for _, tc := range cases {
		if got := oidcflow.Groups(tc.claims, "groups"); !slices.Equal(got, tc.want) {
			t.Errorf("Groups(%s): got %v, want %v", tc.name, got, tc.want)
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// BenchmarkAuthURL is the authorization URL of one login, as every
// unauthenticated browser request builds it.
func BenchmarkAuthURL(b *testing.B) {
	p := startProvider(b, startIdP(b).Issuer)
	waitReady(b, p)
	l, err := p.NewLogin()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.AuthURL(l, redirectURI, nil); err != nil {
			b.Fatal(err)
		}
	}
}
