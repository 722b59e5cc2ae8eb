package oidcflow_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/devidp"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// userToken signs alice in through p and returns her access token.
func userToken(t *testing.T, p *oidcflow.Provider) string {
	t.Helper()
	l, err := p.NewLogin()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := p.Exchange(t.Context(), login(t, p, l, "alice", "alice-password"), redirectURI, l)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	return tok.AccessToken
}

// The exchanged token is a JWT for the upstream's audience with the
// user's subject, the IdP saw one exchange per call, and every way the
// IdP can refuse or fail maps onto its sentinel.
func TestExchangeToken(t *testing.T) {
	idp := startIdP(t)
	p := startProvider(t, idp.Issuer)
	waitReady(t, p)
	at := userToken(t, p)

	got, err := p.ExchangeToken(t.Context(), at, devidp.ProjectID)
	if err != nil {
		t.Fatalf("ExchangeToken: %v", err)
	}
	if got.AccessToken == at {
		t.Fatal("ExchangeToken returned the user's own token")
	}
	claims, err := devidp.Claims(got.AccessToken)
	if err != nil {
		t.Fatalf("exchanged token is not a JWT: %v", err)
	}
	if aud, _ := claims["aud"].([]any); !slices.Equal(aud, []any{devidp.ProjectID}) {
		t.Errorf("exchanged token aud: got %v, want [%s]", claims["aud"], devidp.ProjectID)
	}
	if claims["sub"] != "user-alice" {
		t.Errorf("exchanged token sub: got %v, want user-alice", claims["sub"])
	}
	if until := time.Until(got.Expiry); until < time.Minute || until > 6*time.Minute {
		t.Errorf("Expiry in %v, want the dev IdP's five minutes", until)
	}
	if n := idp.TokenExchanges(devidp.ProjectID); n != 1 {
		t.Errorf("token exchanges at the IdP: got %d, want 1", n)
	}

	refusals := []struct {
		name     string
		subject  string
		audience string
		setup    func(t *testing.T)
		want     error
		code     string
	}{
		{"refused audience is invalid_target", at, "refused-api", func(t *testing.T) { idp.RefuseTokenExchange("refused-api") }, oidcflow.ErrRejected, "invalid_target"},
		{"unknown subject token is invalid_request", "not-a-token-of-this-idp", "api", nil, oidcflow.ErrRejected, "invalid_request"},
		{"no audience never reaches the IdP", at, "", nil, oidcflow.ErrRejected, ""},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				tc.setup(t)
			}
			_, err := p.ExchangeToken(t.Context(), tc.subject, tc.audience)
			if !errors.Is(err, tc.want) || errors.Is(err, oidcflow.ErrIdPUnavailable) {
				t.Fatalf("ExchangeToken: got %v, want %v", err, tc.want)
			}
			if strings.Contains(err.Error(), at) {
				t.Errorf("the error holds the user's token: %v", err)
			}
			if tc.code == "" {
				return
			}
			xe, ok := errors.AsType[*oidcflow.ExchangeError](err)
			if !ok || xe.Code != tc.code || xe.Status != http.StatusBadRequest {
				t.Errorf("ExchangeToken: got %#v, want an ExchangeError 400 %s", xe, tc.code)
			}
		})
	}

	t.Run("hanging token endpoint hits the deadline", func(t *testing.T) {
		idp.HangToken()
		defer idp.Release()
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		_, err := p.ExchangeToken(ctx, at, "api")
		if !errors.Is(err, oidcflow.ErrIdPUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("ExchangeToken(hung IdP): got %v, want ErrIdPUnavailable + DeadlineExceeded", err)
		}
	})

	tampered := []struct {
		name   string
		status int
		body   string
		want   error
	}{
		{"5xx is unavailable", http.StatusBadGateway, `{"error":"server_error"}`, oidcflow.ErrIdPUnavailable},
		{"an ID token is no access token", http.StatusOK, `{"access_token":"x.y.z","issued_token_type":"urn:ietf:params:oauth:token-type:id_token","token_type":"N_A"}`, oidcflow.ErrInvalidToken},
		{"no access_token", http.StatusOK, `{"token_type":"Bearer"}`, oidcflow.ErrInvalidToken},
		{"a token unfit for a header", http.StatusOK, `{"access_token":"a\nb","token_type":"Bearer"}`, oidcflow.ErrInvalidToken},
		{"not JSON", http.StatusOK, `<html>`, oidcflow.ErrInvalidToken},
		{"4xx without an OAuth body", http.StatusForbidden, `forbidden`, oidcflow.ErrRejected},
	}
	for _, tc := range tampered {
		t.Run(tc.name, func(t *testing.T) {
			idp.SetTamper(func(r *http.Request, status int, body []byte) (int, []byte) {
				if r.URL.Path != "/oauth/token" {
					return status, body
				}
				return tc.status, []byte(tc.body)
			})
			defer idp.SetTamper(nil)
			if _, err := p.ExchangeToken(t.Context(), at, "api"); !errors.Is(err, tc.want) {
				t.Fatalf("ExchangeToken: got %v, want %v", err, tc.want)
			}
		})
	}

	t.Run("an unreachable IdP is unavailable", func(t *testing.T) {
		idp.Stop()
		defer idp.Resume()
		if _, err := p.ExchangeToken(t.Context(), at, "api"); !errors.Is(err, oidcflow.ErrIdPUnavailable) {
			t.Fatalf("ExchangeToken(IdP down): got %v, want ErrIdPUnavailable", err)
		}
	})
}

// The exchange authenticates the client as the code exchange does, in
// each of ZITADEL's methods, and a wrong secret is ErrClientAuth.
func TestExchangeTokenClientAuth(t *testing.T) {
	methods := []oidc.AuthMethod{oidc.AuthMethodBasic, oidc.AuthMethodPost, oidc.AuthMethodNone, oidc.AuthMethodPrivateKeyJWT}
	var clients []devidp.Client
	for _, m := range methods {
		clients = append(clients, devidp.MethodClient(m))
	}
	idp, err := devidp.Start(devidp.Options{Clients: clients})
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	names := map[oidc.AuthMethod]string{oidc.AuthMethodBasic: oidcflow.AuthBasic, oidc.AuthMethodPost: oidcflow.AuthPost,
		oidc.AuthMethodNone: oidcflow.AuthNone, oidc.AuthMethodPrivateKeyJWT: oidcflow.AuthPrivateKeyJWT}
	for _, c := range clients {
		t.Run(names[c.AuthMethod], func(t *testing.T) {
			cfg := oidcflow.Config{Issuer: idp.Issuer, ClientID: c.ID, ClientSecret: c.Secret, AuthMethod: names[c.AuthMethod], Scopes: []string{"openid", "email"}}
			if c.APIKey != nil {
				raw, err := devidp.KeyFile(c)
				if err != nil {
					t.Fatal(err)
				}
				if cfg.ClientKey, err = oidcflow.ParseKeyFile(raw); err != nil {
					t.Fatal(err)
				}
			}
			p, err := oidcflow.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			serve(t, p)
			waitReady(t, p)
			at := userToken(t, p)
			x, err := p.ExchangeToken(t.Context(), at, "api")
			if err != nil {
				t.Fatalf("ExchangeToken(%s): %v", c.AuthMethod, err)
			}
			if claims, err := devidp.Claims(x.AccessToken); err != nil || claims["sub"] != "user-alice" {
				t.Fatalf("ExchangeToken(%s): claims %v, %v", c.AuthMethod, claims, err)
			}
			if c.Secret == "" {
				return
			}
			cfg.ClientSecret = "wrong"
			wrong, err := oidcflow.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			serve(t, wrong)
			waitReady(t, wrong)
			if _, err := wrong.ExchangeToken(t.Context(), at, "api"); !errors.Is(err, oidcflow.ErrClientAuth) {
				t.Fatalf("ExchangeToken(wrong secret): got %v, want ErrClientAuth", err)
			}
		})
	}
}
