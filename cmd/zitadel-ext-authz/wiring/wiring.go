// Package wiring is zitadel-ext-authz's composition root: from a loaded
// configuration it builds the collaborators and connects them, the IdP
// client (oidcflow.Provider) with its refresh and token caches, the session
// jar and stores, and the authz.Server that answers Check. The serve
// command puts listeners, signals and reloads around what Build returns;
// the end-to-end tests build the very same graph in process with a fake
// clock, so there is one wiring to keep right.
package wiring

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/config"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/telemetry"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// RefreshCacheBytes bounds the refresh grace cache (one entry per session
// refreshed within the grace period).
const RefreshCacheBytes = 16 << 20

// Deps are what the caller provides.
type Deps struct {
	Logger  *slog.Logger
	Metrics *telemetry.Metrics // nil: no metrics
	// Transport wraps the IdP client's transport (tracing); nil: none.
	Transport func(http.RoundTripper) http.RoundTripper
	// Clock replaces time.Now for the provider, the jar and Check (tests).
	Clock func() time.Time
}

// Built is the connected graph.
type Built struct {
	Provider *oidcflow.Provider
	Jar      *session.Jar
	Server   *authz.Server
	Sessions *Sessions
	closers  []func()
}

// Close releases the caches and the Redis client.
func (b *Built) Close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}

// ErrConfig marks an error the configuration caused (exit code 2).
var ErrConfig = errors.New("configuration")

// Build connects the collaborators for cfg.
func Build(cfg *config.Config, d Deps) (b *Built, err error) {
	b = &Built{}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	idpClient := oidcflow.NewHTTPClientDialing(30*time.Second, cfg.IssuerDial)
	if d.Transport != nil {
		idpClient.Transport = d.Transport(idpClient.Transport)
	}
	providerOpts := []oidcflow.Option{oidcflow.WithHTTPClient(idpClient), oidcflow.WithLogger(d.Logger)}
	var authzOpts []authz.Option
	var jarOpts []session.JarOption
	if d.Metrics != nil {
		providerOpts = append(providerOpts, oidcflow.WithObserver(d.Metrics.ObserveIdP))
		authzOpts = append(authzOpts, authz.WithObserver(d.Metrics))
	}
	if d.Clock != nil {
		providerOpts = append(providerOpts, oidcflow.WithClock(d.Clock))
		authzOpts = append(authzOpts, authz.WithClock(d.Clock))
		jarOpts = append(jarOpts, session.WithClock(d.Clock))
	}
	refreshCache, err := ristretto.NewCache(&ristretto.Config[string, *oidcflow.RefreshEntry]{
		NumCounters: 100_000, MaxCost: RefreshCacheBytes, BufferItems: 64, Metrics: true,
	})
	if err != nil {
		return b, fmt.Errorf("refresh cache: %w", err)
	}
	b.closers = append(b.closers, refreshCache.Close)
	providerOpts = append(providerOpts, oidcflow.WithRefreshCache(refreshCache, cfg.RefreshGrace))
	if cfg.BearerEnabled {
		tokenCache, err := ristretto.NewCache(&ristretto.Config[string, *oidcflow.TokenEntry]{
			NumCounters: max(cfg.TokenCacheSize/30, 1000), // entries cost ~300 bytes
			MaxCost:     max(cfg.TokenCacheSize, 1),
			BufferItems: 64,
			Metrics:     true,
		})
		if err != nil {
			return b, fmt.Errorf("token cache: %w", err)
		}
		b.closers = append(b.closers, tokenCache.Close)
		if d.Metrics != nil {
			d.Metrics.WatchCache("token", tokenCache.Metrics)
		}
		providerOpts = append(providerOpts, oidcflow.WithBearer(cfg.Bearer, tokenCache))
	}
	if b.Provider, err = oidcflow.New(cfg.OIDC, providerOpts...); err != nil {
		return b, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg.BearerEnabled {
		authzOpts = append(authzOpts, authz.WithBearerAuth(b.Provider))
	}
	if b.Sessions, err = newSessions(cfg, d.Metrics, d.Logger); err != nil {
		return b, err
	}
	b.closers = append(b.closers, b.Sessions.close)
	codec, err := session.NewCodec(cfg.CookieSecrets...)
	if err != nil {
		return b, fmt.Errorf("%w: cookie_secret: %w", ErrConfig, err)
	}
	b.Jar = session.NewJar(codec, cfg.Cookie, append(b.Sessions.jarOpts, jarOpts...)...)
	authzOpts = append(authzOpts, b.Sessions.authzOpts...)
	if b.Server, err = authz.New(cfg.Authz, b.Provider, b.Jar, append(authzOpts, authz.WithLogger(d.Logger))...); err != nil {
		return b, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return b, nil
}
