package oidcflow

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

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

// BackendLogout calls an operator's logout URL with GET (oauth2-proxy's
// backend_logout_url; the caller fills in the ID token): the application's
// own session ends with ours. Any answer but 2xx is an error.
func (p *Provider) BackendLogout(ctx context.Context, target string) error {
	// The URL carries the ID token ({id_token}): no error may quote it.
	// *url.Error and url.Parse's errors do, so only the origin and path
	// are named, and the cause without its URL.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return errors.New("backend logout: backend_logout_url is not a valid URL")
	}
	where := req.URL.Scheme + "://" + req.URL.Host // the path may hold {id_token} too
	resp, err := p.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("backend logout %s: %w", where, err)
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("backend logout %s: status %d", where, resp.StatusCode)
	}
	return nil
}
