package oidcflow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// verifyJWT verifies an access token locally: the library checks the
// signature by the issuer's JWKS (ours, or an extra_jwt_issuers issuer's),
// iss, exp and the algorithm allow-list; sub, nbf and aud are checked here.
func (p *Provider) verifyJWT(ctx context.Context, d *discovered, token string) (*Bearer, error) {
	verifier, accept := d.accessVerifier, p.acceptedAudience
	if iss := unverifiedIssuer(token); iss != p.cfg.Issuer && p.bearerCfg.ExtraIssuers[iss] != nil {
		v, err := p.extraVerifier(ctx, iss)
		if err != nil {
			return nil, fmt.Errorf("verify jwt of extra issuer %s: %w: %w", iss, ErrIdPUnavailable, err)
		}
		audiences := p.bearerCfg.ExtraIssuers[iss]
		verifier, accept = v, func(aud string) bool { return slices.Contains(audiences, aud) }
	}
	claims, err := op.VerifyAccessToken[*oidc.AccessTokenClaims](ctx, token, verifier)
	if err != nil {
		if errors.Is(err, ErrIdPUnavailable) {
			return nil, err
		}
		return nil, fmt.Errorf("verify jwt: %w: %w", ErrInvalidToken, err)
	}
	now := p.now()
	if claims.Subject == "" {
		return nil, fmt.Errorf("verify jwt: %w: no sub", ErrInvalidToken)
	}
	if nbf := claims.NotBefore.AsTime(); !nbf.IsZero() && nbf.After(now.Add(30*time.Second)) {
		return nil, fmt.Errorf("verify jwt: %w: not valid before %s", ErrInvalidToken, nbf)
	}
	if !slices.ContainsFunc(claims.Audience, accept) {
		return nil, fmt.Errorf("verify jwt: %w: audience %v has neither the client id, the project id nor an extra_jwt_audiences entry", ErrInvalidToken, claims.Audience)
	}
	m, err := claimMap(claims)
	if err != nil {
		return nil, fmt.Errorf("verify jwt: %w: %w", ErrInvalidToken, err)
	}
	return &Bearer{
		Identity:  p.IdentityFromClaims(m),
		Scopes:    scopesOf(claims.Scopes, m),
		Audiences: claims.Audience,
		ClientID:  claims.ClientID,
		Expiry:    claims.GetExpiration(),
		Via:       "jwt",
	}, nil
}

// acceptedAudience reports whether aud names us: the client id, the
// ZITADEL project or an extra_jwt_audiences entry.
func (p *Provider) acceptedAudience(aud string) bool {
	return aud == p.cfg.ClientID || (aud != "" && aud == p.bearerCfg.ProjectID) || slices.Contains(p.bearerCfg.ExtraAudiences, aud)
}

// extraVerifier verifies access tokens of an extra_jwt_issuers issuer:
// its discovery and JWKS are fetched once (shared through Issuers) and
// the verifier kept.
func (p *Provider) extraVerifier(ctx context.Context, iss string) (*op.AccessTokenVerifier, error) {
	if v, ok := p.extraVerifiers.Load(iss); ok {
		return v.(*op.AccessTokenVerifier), nil
	}
	doc, keys, err := p.issuers.discover(ctx, iss, func(ctx context.Context) (*discoveryDocument, error) {
		return fetchDiscoveryOf(ctx, p.client, iss)
	})
	if err != nil {
		return nil, err
	}
	v := op.NewAccessTokenVerifier(iss, keys, op.WithSupportedAccessTokenSigningAlgorithms(signingAlgs(doc.IDTokenSigningAlgValuesSupported)...))
	p.extraVerifiers.Store(iss, v)
	return v, nil
}
