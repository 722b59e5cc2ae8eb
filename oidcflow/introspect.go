package oidcflow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/client/rs"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// introspect asks the IdP about a token (RFC 7662) and accepts it only
// when it is active, unexpired and meant for us.
func (p *Provider) introspect(ctx context.Context, d *discovered, token string) (*Bearer, error) {
	if d.introspector == nil {
		return nil, fmt.Errorf("introspect: %w: %w", ErrInvalidToken, errNoIntrospection)
	}
	resp, err := rs.Introspect[*oidc.IntrospectionResponse](withCall(ctx, CallIntrospection), d.introspector, token)
	if err != nil {
		if clientAuthFailed(err) {
			return nil, fmt.Errorf("introspect: %w: the IdP refused our client authentication; check introspection_client_id and introspection_client_secret or introspection_key_file", ErrIdPUnavailable)
		}
		return nil, fmt.Errorf("introspect: %w", classify(ctx, err))
	}
	if !resp.Active {
		return nil, fmt.Errorf("introspect: %w: inactive", ErrInvalidToken)
	}
	// The IdP says the token is good, not that it is for us: ZITADEL
	// answers for every token of the project to an API app. The token must
	// name our client, the project or an extra_jwt_audiences entry, in aud
	// or as the client it was issued to, as a JWT's aud must.
	if !slices.ContainsFunc(resp.Audience, p.acceptedAudience) && !p.acceptedAudience(resp.ClientID) {
		return nil, fmt.Errorf("introspect: %w: audience %v and client_id %q name neither the client id, the project id nor an extra_jwt_audiences entry", ErrInvalidToken, []string(resp.Audience), resp.ClientID)
	}
	exp := resp.Expiration.AsTime()
	if !exp.IsZero() && !exp.After(p.now()) {
		return nil, fmt.Errorf("introspect: %w: expired", ErrInvalidToken)
	}
	m, err := claimMap(resp)
	if err != nil {
		return nil, fmt.Errorf("introspect: %w: %w", ErrInvalidToken, err)
	}
	id := p.IdentityFromClaims(m)
	if id.PreferredUsername == "" {
		id.PreferredUsername = resp.Username
	}
	return &Bearer{Identity: id, Scopes: scopesOf(resp.Scope, m), Audiences: resp.Audience, ClientID: resp.ClientID, Expiry: exp, Via: "introspection"}, nil
}

// errNoIntrospection: an opaque token and nowhere to introspect it.
var errNoIntrospection = errors.New("an opaque token, and the IdP has no introspection_endpoint (set introspection_url)")

// newIntrospector builds the rs client from discovery (no second discovery).
func (p *Provider) newIntrospector(ctx context.Context, cfg *oidc.DiscoveryConfiguration) (rs.ResourceServer, error) {
	endpoint := cfg.IntrospectionEndpoint
	if p.bearerCfg.IntrospectionURL != "" {
		endpoint = p.bearerCfg.IntrospectionURL
	}
	if endpoint == "" {
		if p.tokens != nil || p.bearerOn {
			p.logger.Warn("bearer tokens are accepted, but the IdP's discovery lists no introspection_endpoint and introspection_url is unset: opaque (non-JWT) tokens will be refused",
				"issuer", p.cfg.Issuer, "fix", "set introspection_url to the IdP's RFC 7662 endpoint (Ory Hydra: its admin port's /admin/oauth2/introspect)")
		}
		return nil, nil
	}
	opts := []rs.Option{rs.WithClient(p.client), rs.WithStaticEndpoints(cfg.TokenEndpoint, endpoint)}
	if k := p.bearerCfg.IntrospectionKey; k != nil {
		return rs.NewResourceServerJWTProfile(ctx, p.cfg.Issuer, k.ClientID, k.KeyID, []byte(k.Key), opts...)
	}
	if id := p.bearerCfg.IntrospectionClientID; id != "" {
		return rs.NewResourceServerClientCredentials(ctx, p.cfg.Issuer, id, p.bearerCfg.IntrospectionClientSecret, opts...)
	}
	// No introspection client: the login client, as it authenticates.
	switch p.auth.method {
	case AuthPrivateKeyJWT:
		k := p.cfg.ClientKey
		return rs.NewResourceServerJWTProfile(ctx, p.cfg.Issuer, p.cfg.ClientID, k.KeyID, []byte(k.Key), opts...)
	case AuthNone:
		if p.tokens != nil || p.bearerOn {
			p.logger.Warn("bearer tokens are accepted, but the login client is public (client_auth_method none) and can't introspect: opaque (non-JWT) tokens will be refused",
				"issuer", p.cfg.Issuer, "fix", "set introspection_key_file (a ZITADEL API app's key) or introspection_client_id and introspection_client_secret")
		}
		return nil, nil
	}
	return rs.NewResourceServerClientCredentials(ctx, p.cfg.Issuer, p.cfg.ClientID, p.auth.secret, opts...)
}

// clientAuthFailed recognises the IdP rejecting our own credentials at the
// introspection endpoint. An OAuth error body gives a typed *oidc.Error;
// otherwise httphelper.HttpRequest returns only text ("http status not ok:
// 401 …"), so the status is read from it: there is no typed error to match.
func clientAuthFailed(err error) bool {
	var oerr *oidc.Error
	if errors.As(err, &oerr) {
		return oerr.ErrorType == oidc.InvalidClient || oerr.ErrorType == oidc.UnauthorizedClient
	}
	msg := err.Error()
	return strings.HasPrefix(msg, "http status not ok: 401") || strings.HasPrefix(msg, "http status not ok: 403")
}
