package oidcflow

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/url"
	"strings"

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
// Without extra it is written from the discovered prefix (authURLForm),
// the same text the library's builder gives: every unauthenticated
// browser request pays for it, and the builder's map, sort and escaping
// were a tenth of that path's CPU.
func (p *Provider) AuthURL(l Login, redirectURI string, extra url.Values) (string, error) {
	d, err := p.current()
	if err != nil {
		return "", err
	}
	challenge := oidc.NewSHACodeChallenge(l.CodeVerifier)
	if len(extra) == 0 && queryPlain(l.State) && queryPlain(l.Nonce) {
		return d.authURL.write(l, challenge, redirectURI), nil
	}
	opts := []rp.AuthURLOpt{
		rp.WithCodeChallenge(challenge),
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

// authURLForm is the authorization URL without extra parameters, its
// fixed parts escaped once at discovery, in the order url.Values.Encode
// gives (keys sorted), so it equals what rp.AuthURL builds.
type authURLForm struct {
	head, tail string // up to "code_challenge=", and "&response_type=code…&state="
}

// newAuthURLForm prepares the form for an authorization endpoint, client
// and scopes (oauth2.Config.AuthCodeURL's parameters).
func newAuthURLForm(endpoint, clientID string, scopes []string) authURLForm {
	sep := "?"
	if strings.Contains(endpoint, "?") {
		sep = "&"
	}
	f := authURLForm{head: endpoint + sep + "client_id=" + url.QueryEscape(clientID) + "&code_challenge="}
	f.tail = "&response_type=code"
	if len(scopes) > 0 {
		f.tail += "&scope=" + url.QueryEscape(strings.Join(scopes, " "))
	}
	f.tail += "&state="
	return f
}

// write is the URL for one login. State and nonce are plain (queryPlain:
// NewLogin's are base64url) and the S256 challenge is base64url, which
// query escaping leaves as they are.
func (f authURLForm) write(l Login, challenge, redirectURI string) string {
	var b strings.Builder
	uri := url.QueryEscape(redirectURI)
	b.Grow(len(f.head) + len(challenge) + len(l.Nonce) + len(uri) + len(f.tail) + len(l.State) + 64)
	b.WriteString(f.head)
	b.WriteString(challenge)
	b.WriteString("&code_challenge_method=S256&nonce=")
	b.WriteString(l.Nonce)
	b.WriteString("&redirect_uri=")
	b.WriteString(uri)
	b.WriteString(f.tail)
	b.WriteString(l.State)
	return b.String()
}

// queryPlain: s is the same after query escaping (base64url and '.', '~').
func queryPlain(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~') {
			return false
		}
	}
	return true
}

// redirectURIParam repeats the redirect_uri of the authorization request in
// the token request, as RFC 6749 §4.1.3 requires.
func redirectURIParam(uri string) rp.CodeExchangeOpt {
	return func() []oauth2.AuthCodeOption {
		return []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("redirect_uri", uri)}
	}
}
