package oidcflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"
)

// Tokens is the verified result of a code exchange.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	IDToken      string
	Expiry       time.Time // access token expiry; zero when the IdP gave none
	SessionID    string    // the ID token's sid, if any
	Scopes       []string  // granted scopes (the response's scope, else the requested ones)
	Identity     Identity
}

// Exchange trades an authorization code for tokens (authenticated as
// client_auth_method says),
// verifies the ID token against the login's nonce, and resolves the
// identity, asking the userinfo endpoint when the ID token lacks the e-mail
// (ZITADEL leaves profile claims out of ID tokens unless configured).
func (p *Provider) Exchange(ctx context.Context, code, redirectURI string, l Login) (*Tokens, error) {
	d, err := p.current()
	if err != nil {
		return nil, err
	}
	opts := []rp.CodeExchangeOpt{rp.WithCodeVerifier(l.CodeVerifier), redirectURIParam(redirectURI)}
	assertion, err := p.auth.assertion()
	if err != nil {
		return nil, fmt.Errorf("exchange code: %w: %w", ErrClientAuth, err)
	}
	if assertion != "" {
		opts = append(opts, rp.WithClientAssertionJWT(assertion))
	}
	raw, err := rp.CodeExchange[*oidc.IDTokenClaims](withCall(ctx, CallToken), code, d.party, opts...)
	if err != nil {
		return nil, fmt.Errorf("exchange code: %w", p.classifyClient(ctx, err))
	}
	idToken, _ := raw.Extra("id_token").(string)
	if !tokenSafe(raw.AccessToken) || !tokenSafe(raw.RefreshToken) || !tokenSafe(idToken) {
		return nil, fmt.Errorf("exchange code: %w: a token holds characters not allowed in a header", ErrInvalidToken)
	}
	if idToken == "" {
		return nil, fmt.Errorf("exchange code: %w: the token response has no id_token (is the openid scope granted?)", ErrInvalidToken)
	}
	claims, err := rp.VerifyTokens[*idClaims](trustedKeys(context.WithValue(ctx, nonceKey{}, l.Nonce)), raw.AccessToken, idToken, d.verifier)
	if err != nil {
		if errors.Is(err, ErrIdPUnavailable) {
			return nil, fmt.Errorf("verify id token: %w", err)
		}
		return nil, fmt.Errorf("verify id token: %w: %w", ErrInvalidToken, err)
	}
	if len(claims.Dropped) > 0 {
		p.logger.Debug("optional ID token claims of the wrong type ignored", "claims", claims.Dropped)
	}
	all, err := claimMap(claims)
	if err != nil {
		return nil, fmt.Errorf("verify id token: %w: %w", ErrInvalidToken, err)
	}
	if err := p.completeFromUserinfo(ctx, d, all, raw.AccessToken, claims.Subject); err != nil {
		return nil, err
	}
	scopes := p.cfg.Scopes
	if granted, _ := raw.Extra("scope").(string); granted != "" {
		scopes = strings.Fields(granted)
	}
	return &Tokens{
		Scopes:       scopes,
		AccessToken:  raw.AccessToken,
		RefreshToken: raw.RefreshToken,
		IDToken:      idToken,
		Expiry:       p.expiry(raw.Expiry),
		SessionID:    claims.SessionID,
		Identity:     p.IdentityFromClaims(all),
	}, nil
}

// completeFromUserinfo adds the userinfo endpoint's claims to an ID
// token's (all) when it lacks the e-mail: ZITADEL leaves profile claims
// out of ID tokens unless configured. The ID token's own claims win; a
// userinfo answer for another subject is refused. (A refresh doesn't ask:
// the session keeps what the login got, authz's user.refreshed.)
func (p *Provider) completeFromUserinfo(ctx context.Context, d *discovered, all map[string]any, accessToken, sub string) error {
	if _, hasEmail := all[p.cfg.EmailClaim]; hasEmail || d.config.UserinfoEndpoint == "" || accessToken == "" {
		return nil
	}
	info, err := p.userinfo(ctx, d, accessToken)
	if err != nil {
		return err
	}
	if stringClaim(info, "sub") != sub {
		return fmt.Errorf("userinfo: %w: sub differs from the ID token's", ErrInvalidToken)
	}
	for k, v := range info {
		if _, ok := all[k]; !ok {
			all[k] = v
		}
	}
	return nil
}

// claimMap flattens verified claims (an ID token's, an access token's or an
// introspection response's) into one map: the library's typed fields and
// the unknown ones, where ZITADEL's role claims land, alike.
func claimMap(c any) (map[string]any, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

func (p *Provider) userinfo(ctx context.Context, d *discovered, accessToken string) (map[string]any, error) {
	req, err := http.NewRequestWithContext(withCall(ctx, CallUserinfo), http.MethodGet, d.config.UserinfoEndpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("userinfo: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("userinfo: %w", classify(ctx, err))
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode >= 500:
		return nil, fmt.Errorf("userinfo: %w: status %d", ErrIdPUnavailable, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("userinfo: %w: status %d", ErrRejected, resp.StatusCode)
	}
	var info map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&info); err != nil {
		return nil, fmt.Errorf("userinfo: %w: %w", ErrIdPUnavailable, err)
	}
	return info, nil
}

// rejected is an OAuth error answer: ErrClientAuth when it is about our
// client, ErrRejected otherwise.
func rejected(code string) error {
	if code == string(oidc.InvalidClient) || code == string(oidc.UnauthorizedClient) {
		return fmt.Errorf("%w: %s", ErrClientAuth, code)
	}
	return fmt.Errorf("%w: %s", ErrRejected, code)
}

// classify wraps a token- or userinfo-call error onto a sentinel: the IdP
// answering with an OAuth error is ErrRejected, everything else (network,
// timeout, 5xx, unreadable body) is ErrIdPUnavailable. The deadline stays in
// the chain, so callers can answer 504 rather than 502.
func classify(ctx context.Context, err error) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode < 500 && re.ErrorCode != "" {
		return rejected(re.ErrorCode)
	}
	// The library's own token calls (refresh) return the OAuth error body
	// as *oidc.Error; only server_error / temporarily_unavailable are the
	// IdP's fault.
	var oe *oidc.Error
	if errors.As(err, &oe) && oe.ErrorType != oidc.ServerError && oe.ErrorType != "temporarily_unavailable" && oe.ErrorType != "" {
		return rejected(string(oe.ErrorType))
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ErrIdPUnavailable, ctx.Err())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", ErrIdPUnavailable, context.DeadlineExceeded)
	}
	if errors.As(err, &re) && re.Response != nil {
		return fmt.Errorf("%w: status %d", ErrIdPUnavailable, re.Response.StatusCode)
	}
	return fmt.Errorf("%w: %w", ErrIdPUnavailable, err)
}
