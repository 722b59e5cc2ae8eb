package oidcflow

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/url"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"
)

// Login is one pending authorization-code flow. The caller keeps it (in a
// state cookie) between AuthURL and Exchange; the provider stays stateless.
type Login struct {
	State        string
	Nonce        string
	CodeVerifier string
}

// NewLogin draws a fresh state, nonce and PKCE verifier: 32 random bytes
// each, base64url.
func (p *Provider) NewLogin() (Login, error) {
	var buf [96]byte
	if _, err := io.ReadFull(p.random, buf[:]); err != nil {
		return Login{}, fmt.Errorf("new login: %w", err)
	}
	enc := base64.RawURLEncoding
	return Login{
		State:        enc.EncodeToString(buf[0:32]),
		Nonce:        enc.EncodeToString(buf[32:64]),
		CodeVerifier: enc.EncodeToString(buf[64:96]),
	}, nil
}

// AuthURL is where the browser goes to log in: the authorization endpoint
// with response_type=code, client_id, redirect_uri, scope, state, nonce and
// the S256 code challenge. extra adds parameters (for example prompt).
func (p *Provider) AuthURL(l Login, redirectURI string, extra url.Values) (string, error) {
	d, err := p.current()
	if err != nil {
		return "", err
	}
	opts := []rp.AuthURLOpt{
		rp.WithCodeChallenge(oidc.NewSHACodeChallenge(l.CodeVerifier)),
		rp.AuthURLOpt(rp.WithURLParam("nonce", l.Nonce)),
		rp.AuthURLOpt(rp.WithURLParam("redirect_uri", redirectURI)),
	}
	for k, vs := range extra {
		for _, v := range vs {
			opts = append(opts, rp.AuthURLOpt(rp.WithURLParam(k, v)))
		}
	}
	return rp.AuthURL(l.State, d.party, opts...), nil
}

// redirectURIParam repeats the redirect_uri of the authorization request in
// the token request, as RFC 6749 §4.1.3 requires.
func redirectURIParam(uri string) rp.CodeExchangeOpt {
	return func() []oauth2.AuthCodeOption {
		return []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("redirect_uri", uri)}
	}
}
