package oidcflow

import (
	"errors"
	"net/url"
)

// ErrNoEndSession: the IdP's discovery document has no end_session_endpoint.
var ErrNoEndSession = errors.New("the identity provider has no end_session_endpoint")

// EndSessionURL is where the browser goes to end its SSO session at the IdP
// (RP-initiated logout). It must be opened by the browser: ZITADEL's session
// is a cookie there (zitadel.md §1.7), so a server-side call would not end it.
func (p *Provider) EndSessionURL(idTokenHint, postLogoutRedirectURI, state string) (string, error) {
	d, err := p.current()
	if err != nil {
		return "", err
	}
	if d.config.EndSessionEndpoint == "" {
		return "", ErrNoEndSession
	}
	u, err := url.Parse(d.config.EndSessionEndpoint)
	if err != nil {
		return "", err
	}
	q := u.Query()
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	q.Set("client_id", p.cfg.ClientID)
	if postLogoutRedirectURI != "" {
		q.Set("post_logout_redirect_uri", postLogoutRedirectURI)
	}
	if state != "" {
		q.Set("state", state)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}
