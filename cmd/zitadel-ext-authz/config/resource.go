package config

import (
	"maps"
	"net/url"
	"slices"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
)

// buildResource: the app's RFC 9728 protected-resource metadata
// (resource_*; authz.ProtectedResource), which the app serves when it
// takes bearer tokens. Its authorization servers are the app's issuer
// and its extra_jwt_issuers; the scopes clients are told to ask for
// default to the app's own scope: MCP clients ask for exactly these
// (SEP-835), so they must do at ZITADEL, which wants openid in every
// authorization request, what the app's own login does (the organization
// scopes, offline_access for a refresh token).
func (r *resolver) buildResource(c *Config) {
	pr := authz.ProtectedResource{
		URL:           r.str("resource_url"),
		Name:          r.str("resource_name"),
		Documentation: r.str("resource_documentation"),
	}
	if pr.URL != "" {
		if u, err := url.Parse(pr.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
			r.fail("resource_url", "%q: want an http(s) URL without user, query or fragment, such as https://app.example.com/mcp (RFC 9728 §1.2)", pr.URL)
		}
	}
	if d := pr.Documentation; d != "" {
		if u, err := url.Parse(d); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			r.fail("resource_documentation", "%q is not an http(s) URL", d)
		}
	}
	if c.OIDC.Issuer != "" {
		pr.AuthorizationServers = append([]string{c.OIDC.Issuer}, slices.Sorted(maps.Keys(c.Bearer.ExtraIssuers))...)
	}
	if _, set := r.raw("resource_scopes_supported"); set {
		pr.ScopesSupported = r.list("resource_scopes_supported") // [] lists none
	} else {
		pr.ScopesSupported = slices.Clone(c.OIDC.Scopes)
	}
	c.Authz.ProtectedResource = pr
}
