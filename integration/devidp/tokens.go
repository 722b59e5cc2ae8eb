package devidp

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/integration/testkit"
	"golang.org/x/oauth2"
)

// Tokens logs username in through client c with the code flow and PKCE,
// as an API client would, and returns the token response.
func (s *Server) Tokens(ctx context.Context, c Client, username, password string, scopes ...string) (*oauth2.Token, error) {
	return TokensAt(ctx, s.Issuer, c, username, password, scopes...)
}

// TokensAt is Tokens for a dev IdP at issuer that runs in another process
// (make demo's).
func TokensAt(ctx context.Context, issuer string, c Client, username, password string, scopes ...string) (*oauth2.Token, error) {
	return tokensAt(ctx, issuer, c, username, password, nil, scopes)
}

// TokensForResource is Tokens with an RFC 8707 resource indicator in the
// authorization request: the access token's aud names it besides the
// client (audience.go).
func (s *Server) TokensForResource(ctx context.Context, c Client, username, password, resource string, scopes ...string) (*oauth2.Token, error) {
	return tokensAt(ctx, s.Issuer, c, username, password, []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("resource", resource)}, scopes)
}

func tokensAt(ctx context.Context, issuer string, c Client, username, password string, opts []oauth2.AuthCodeOption, scopes []string) (*oauth2.Token, error) {
	if len(scopes) == 0 {
		scopes = []string{"openid", "email", "profile"}
	}
	conf := &oauth2.Config{
		ClientID: c.ID, ClientSecret: c.Secret, Scopes: scopes,
		RedirectURL: "http://127.0.0.1:1/oauth2/callback",
		Endpoint:    oauth2.Endpoint{AuthURL: issuer + "/auth", TokenURL: issuer + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader},
	}
	verifier := oauth2.GenerateVerifier()
	noFollow := testkit.NoRedirects()
	cb, err := LoginForm(noFollow, conf.AuthCodeURL("state-0123456789", append(opts, oauth2.S256ChallengeOption(verifier))...), username, password)
	if err != nil {
		return nil, err
	}
	code := cb.Query().Get("code")
	if code == "" {
		return nil, fmt.Errorf("no code in %s", cb.Redacted())
	}
	return conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
}

// SignJWT signs claims with the IdP's own signing key, for tests of tokens
// that are correctly signed but wrong in content (issuer, audience, expiry).
func (s *Server) SignJWT(ctx context.Context, claims map[string]any) (string, error) {
	key, err := s.store.SigningKey(ctx)
	if err != nil {
		return "", err
	}
	return SignWith(key.SignatureAlgorithm(), key.Key(), key.ID(), claims)
}

// KeyFile is the ZITADEL key file (JSON) of an API app with APIKey.
func KeyFile(c Client) ([]byte, error) {
	if c.APIKey == nil {
		return nil, fmt.Errorf("client %s has no API key", c.ID)
	}
	der := x509.MarshalPKCS1PrivateKey(c.APIKey)
	return json.Marshal(map[string]string{
		"type":     "application",
		"keyId":    c.KeyID,
		"key":      string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der})),
		"clientId": c.ID,
		"appId":    "290676120311234567",
	})
}
