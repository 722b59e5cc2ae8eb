package wiring

import (
	"net/http"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/config"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// idpTimeout bounds one IdP request when Deps.IdPTimeout is zero.
const idpTimeout = 30 * time.Second

// IdP is how every app reaches its identity provider: one HTTP client
// (timeouts, bounded reads, the issuers' dial overrides, tracing), shared
// by discovery, JWKS, code exchange, refresh and introspection, and each
// issuer's discovery and keys, fetched once for all the apps that share
// it. serve (through Build) and check-config build it here, so
// check-config reaches the IdP exactly as the server would.
type IdP struct {
	Client  *http.Client
	Dial    *oidcflow.DialMap // issuer host → address to dial; a reload replaces it
	Issuers *oidcflow.Issuers
}

// NewIdP builds the IdP client for cfg; it does no I/O.
func NewIdP(cfg *config.Config, d Deps) *IdP {
	dial := &oidcflow.DialMap{}
	dial.Set(cfg.IssuerDials())
	timeout := d.IdPTimeout
	if timeout <= 0 {
		timeout = idpTimeout
	}
	client := oidcflow.NewIdPClient(timeout, dial, cfg.IdPTLS)
	if d.Transport != nil {
		client.Transport = d.Transport(client.Transport)
	}
	return &IdP{Client: client, Dial: dial, Issuers: oidcflow.NewIssuers(client, d.Clock)}
}

// NewProvider is app a's IdP client: oidcflow.New with the shared HTTP
// client and issuers, then opts.
func (p *IdP) NewProvider(a *config.App, opts ...oidcflow.Option) (*oidcflow.Provider, error) {
	shared := []oidcflow.Option{oidcflow.WithHTTPClient(p.Client), oidcflow.WithIssuers(p.Issuers)}
	return oidcflow.New(a.OIDC, append(shared, opts...)...)
}
