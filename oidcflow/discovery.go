package oidcflow

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// discoveryDocument is the discovery document with the fields
// zitadel/oidc's type lacks.
type discoveryDocument struct {
	oidc.DiscoveryConfiguration
	// RFC 9207 §3: the IdP puts iss in every authorization response.
	// Read from the raw document: only JSON true counts.
	AuthorizationResponseIssParameterSupported bool `json:"-"`
}

// maxDiscoveryBytes bounds the discovery document we read.
const maxDiscoveryBytes = 1 << 20

// Endpoints are an IdP's endpoints when it has no discovery document
// (oauth2-proxy's skip_oidc_discovery with login_url, redeem_url,
// oidc_jwks_url and profile_url).
type Endpoints struct {
	Authorization, Token, JWKS, Userinfo string
}

// configuredEndpoints is discovery from Config.Endpoints.
func (p *Provider) configuredEndpoints(context.Context) (*discoveryDocument, error) {
	e := p.cfg.Endpoints
	return &discoveryDocument{DiscoveryConfiguration: oidc.DiscoveryConfiguration{
		Issuer: p.cfg.Issuer, AuthorizationEndpoint: e.Authorization, TokenEndpoint: e.Token,
		JwksURI: e.JWKS, UserinfoEndpoint: e.Userinfo,
	}}, nil
}

// fetchDiscovery loads issuer/.well-known/openid-configuration and checks
// that it names the issuer exactly (OIDC Discovery §4.3).
func (p *Provider) fetchDiscovery(ctx context.Context) (*discoveryDocument, error) {
	return fetchDiscoveryOf(ctx, p.client, p.cfg.Issuer)
}

// fetchDiscoveryOf is fetchDiscovery for any issuer (extra_jwt_issuers).
func fetchDiscoveryOf(ctx context.Context, client *http.Client, issuer string) (*discoveryDocument, error) {
	url := strings.TrimSuffix(issuer, "/") + oidc.DiscoveryEndpoint
	req, err := http.NewRequestWithContext(withCall(ctx, CallDiscovery), http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("discovery: %s answered %d", url, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscoveryBytes))
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	doc := &discoveryDocument{}
	if err := json.Unmarshal(body, &doc.DiscoveryConfiguration); err != nil {
		return nil, fmt.Errorf("discovery: %s is not a discovery document: %w", url, err)
	}
	var extra struct {
		Iss json.RawMessage `json:"authorization_response_iss_parameter_supported"`
	}
	if err := json.Unmarshal(body, &extra); err == nil && len(extra.Iss) > 0 {
		// Anything but JSON true counts as not advertised.
		doc.AuthorizationResponseIssParameterSupported = string(extra.Iss) == "true"
	}
	if doc.Issuer != issuer {
		return nil, fmt.Errorf("discovery: the issuer in %s (%q) differs from oidc_issuer_url %q; set oidc_issuer_url exactly as the IdP prints it: %w", url, doc.Issuer, issuer, oidc.ErrIssuerInvalid)
	}
	if doc.AuthorizationEndpoint == "" || doc.TokenEndpoint == "" || doc.JwksURI == "" {
		return nil, errors.New("discovery: document lacks authorization_endpoint, token_endpoint or jwks_uri")
	}
	return doc, nil
}

// CheckResponseIssuer applies RFC 9207 §2.4 to the iss parameter of an
// authorization response (present: whether the parameter was there at
// all): when present it must equal the issuer exactly, whatever discovery
// says; when the IdP advertises authorization_response_iss_parameter_supported
// it must be present.
func (p *Provider) CheckResponseIssuer(iss string, present bool) error {
	if present {
		if iss != p.cfg.Issuer {
			return fmt.Errorf("%w: iss %q, want %q", ErrIssuerMismatch, iss, p.cfg.Issuer)
		}
		return nil
	}
	d := p.state.Load()
	if d != nil && d.issInResponses {
		return fmt.Errorf("%w: no iss, but the IdP advertises authorization_response_iss_parameter_supported", ErrIssuerMismatch)
	}
	return nil
}
