package oidcflow

import (
	"crypto/rand"
	"net/url"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"
)

// The authorization URL written from the discovered prefix is the very
// text the library's builder (rp.AuthURL, oauth2's AuthCodeURL) gives, for
// endpoints with and without a query, client ids and scopes that need
// escaping, no scopes, and redirect URIs of every shape.
func TestAuthURLFormIsTheLibrarysURL(t *testing.T) {
	endpoints := []string{"https://idp.example.com/oauth/v2/authorize", "https://idp.example.com/authorize?tenant=a%20b"}
	clients := []string{"web@zitadel-ext-authz", "3209482@project name+x/y"}
	scopes := [][]string{nil, {"openid"}, {"openid", "email", "profile", "urn:zitadel:iam:org:project:id:zitadel:aud"}}
	redirects := []string{"https://app.example.com/oauth2/callback", "http://127.0.0.1:8000/oauth2/callback?x=1&y=ä b#f", ""}
	p := &Provider{random: rand.Reader}
	for _, ep := range endpoints {
		for _, id := range clients {
			for _, sc := range scopes {
				party, err := rp.NewRelyingPartyOAuth(&oauth2.Config{ClientID: id, Scopes: sc, Endpoint: oauth2.Endpoint{AuthURL: ep, TokenURL: ep}})
				if err != nil {
					t.Fatal(err)
				}
				form := newAuthURLForm(ep, id, sc)
				for _, uri := range redirects {
					l, err := p.NewLogin()
					if err != nil {
						t.Fatal(err)
					}
					challenge := oidc.NewSHACodeChallenge(l.CodeVerifier)
					want := rp.AuthURL(l.State, party, rp.WithCodeChallenge(challenge),
						rp.AuthURLOpt(rp.WithURLParam("nonce", l.Nonce)), rp.AuthURLOpt(rp.WithURLParam("redirect_uri", uri)))
					if got := form.write(l, challenge, uri); got != want {
						t.Fatalf("endpoint %q client %q scopes %q redirect %q:\n got %s\nwant %s", ep, id, sc, uri, got, want)
					}
				}
			}
		}
	}
}

// A state or nonce that query escaping would change is never written
// as is: it takes the library's path.
func TestQueryPlain(t *testing.T) {
	for _, s := range []string{"abcXYZ019-_.~", "", "a b", "a&b", "a=b", "ä", "a+b", "a/b", "a%20"} {
		if got, want := queryPlain(s), url.QueryEscape(s) == s; got != want {
			t.Errorf("queryPlain(%q) = %v, want %v", s, got, want)
		}
	}
}
