package oidcflow

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// RefreshEntry is a refresh outcome kept for the grace period, keyed by the
// hash of the refresh token it consumed.
type RefreshEntry struct {
	Tokens *Tokens
	Until  time.Time
}

// RefreshCache holds RefreshEntries; *ristretto.Cache[string, *RefreshEntry]
// plugs in directly. Wait is called after each Set: ristretto applies sets
// asynchronously, and a Check arriving right after a refresh must see it,
// or it would spend the rotated (dead) refresh token and log the user out.
type RefreshCache interface {
	Get(key string) (*RefreshEntry, bool)
	SetWithTTL(key string, value *RefreshEntry, cost int64, ttl time.Duration) bool
	Wait()
}

// WithRefreshCache keeps each refresh result for grace, so requests that
// still carry the pre-refresh cookie get the same fresh tokens instead of
// spending the (rotated, now dead) refresh token again.
func WithRefreshCache(c RefreshCache, grace time.Duration) Option {
	return func(p *Provider) { p.refreshes, p.refreshGrace = c, grace }
}

// Refresh trades a refresh token for fresh tokens. ZITADEL rotates refresh
// tokens, so concurrent callers with the same token share one call
// (singleflight), and later callers within the grace period get the cached
// result. The refreshed ID token (if any) is verified; without one,
// Tokens.IDToken is empty and the caller keeps its identity and ID token.
// ErrRejected means the refresh token is dead (invalid_grant): the session
// is over.
func (p *Provider) Refresh(ctx context.Context, refreshToken string) (*Tokens, error) {
	sum := sha256.Sum256([]byte(refreshToken))
	key := "rt:" + string(sum[:])
	if p.refreshes != nil {
		if e, ok := p.refreshes.Get(key); ok && p.now().Before(e.Until) {
			p.observe("refresh", "grace", 0)
			return e.Tokens, nil
		}
	}
	v, shared, err := p.sharedCall(ctx, "refresh", key, func(callCtx context.Context) (any, error) {
		// A flight that finished between our Get and this one stored its
		// result before releasing the key: use it, never the dead token.
		if p.refreshes != nil {
			if e, ok := p.refreshes.Get(key); ok && p.now().Before(e.Until) {
				p.observe("refresh", "grace", 0)
				return e.Tokens, nil
			}
		}
		start := time.Now()
		t, err := p.refresh(callCtx, refreshToken)
		p.observe("refresh", outcomeOf(err), time.Since(start))
		if err != nil {
			return nil, err
		}
		if p.refreshes != nil && p.refreshGrace > 0 {
			p.refreshes.SetWithTTL(key, &RefreshEntry{Tokens: t, Until: p.now().Add(p.refreshGrace)}, int64(len(t.AccessToken)+len(t.IDToken)+len(t.RefreshToken)+256), p.refreshGrace)
			p.refreshes.Wait() // visible before the flight ends (see RefreshCache)
		}
		return t, nil
	})
	if shared {
		p.observe("refresh", "shared", 0)
	}
	if err != nil {
		return nil, err
	}
	return v.(*Tokens), nil
}

func outcomeOf(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrRejected), errors.Is(err, ErrInvalidToken):
		return "rejected"
	default:
		return "error"
	}
}

func (p *Provider) refresh(ctx context.Context, refreshToken string) (*Tokens, error) {
	d, err := p.current()
	if err != nil {
		return nil, err
	}
	assertion, err := p.auth.assertion()
	if err != nil {
		return nil, fmt.Errorf("refresh: %w: %w", ErrClientAuth, err)
	}
	assertionType := ""
	if assertion != "" {
		assertionType = oidc.ClientAssertionTypeJWTAssertion
	}
	raw, err := rp.RefreshTokens[*oidc.IDTokenClaims](withCall(ctx, CallRefresh), d.party, refreshToken, assertion, assertionType)
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", p.classifyClient(ctx, err))
	}
	if idToken, _ := raw.Extra("id_token").(string); !tokenSafe(raw.AccessToken) || !tokenSafe(raw.RefreshToken) || !tokenSafe(idToken) {
		return nil, fmt.Errorf("refresh: %w: a token holds characters not allowed in a header", ErrInvalidToken)
	}
	t := &Tokens{
		AccessToken:  raw.AccessToken,
		RefreshToken: raw.RefreshToken,
		Expiry:       p.expiry(raw.Expiry),
	}
	if t.RefreshToken == "" {
		t.RefreshToken = refreshToken // an IdP that does not rotate
	}
	if granted, _ := raw.Extra("scope").(string); granted != "" {
		t.Scopes = strings.Fields(granted)
	}
	if idToken, _ := raw.Extra("id_token").(string); idToken != "" {
		claims, err := rp.VerifyTokens[*idClaims](trustedKeys(ctx), raw.AccessToken, idToken, d.refreshVerifier)
		if err != nil {
			return nil, fmt.Errorf("verify refreshed id token: %w: %w", ErrInvalidToken, err)
		}
		all, err := claimMap(claims)
		if err != nil {
			return nil, fmt.Errorf("verify refreshed id token: %w: %w", ErrInvalidToken, err)
		}
		t.IDToken, t.SessionID, t.Identity = idToken, claims.SessionID, p.IdentityFromClaims(all)
	}
	return t, nil
}

// expiry translates the token endpoint's expires_in onto our clock.
func (p *Provider) expiry(abs time.Time) time.Time {
	if abs.IsZero() {
		return abs
	}
	return p.now().Add(time.Until(abs))
}

// Revoke revokes a token at the IdP's revocation_endpoint (RFC 7009),
// authenticated as client_auth_method says. hint is "refresh_token" or
// "access_token".
func (p *Provider) Revoke(ctx context.Context, token, hint string) error {
	d, err := p.current()
	if err != nil {
		return err
	}
	if d.config.RevocationEndpoint == "" {
		return errors.New("revoke: the IdP has no revocation_endpoint")
	}
	form := url.Values{"token": {token}, "token_type_hint": {hint}}
	resp, err := p.postForm(ctx, CallRevocation, d.config.RevocationEndpoint, form)
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	// RFC 7009 §2.2.1: an error answer is an OAuth error body.
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBody))
	if oe := readOAuthError(raw); resp.StatusCode < 500 && oe.Code != "" {
		return fmt.Errorf("revoke: status %d: %w", resp.StatusCode, p.refused(rejected(oe.Code)))
	}
	return fmt.Errorf("revoke: %w: status %d", ErrRejected, resp.StatusCode)
}
