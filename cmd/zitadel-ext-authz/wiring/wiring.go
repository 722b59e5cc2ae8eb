// Package wiring builds the object graph of zitadel-ext-authz from a
// loaded configuration: per app (the top-level keys' default app and each
// entry of the apps list) an IdP client (oidcflow.Provider), a session jar
// and an authz.Server; shared by all apps, the IdP HTTP client with the
// issuers' discovery and JWKS (NewIdP), the caches and the session stores;
// and the apps.Router that answers Check. Build does no I/O; Start and
// Stop run and end what the graph keeps running (discovery, the other
// replicas' announcements, refreshed sessions waiting for the store).
//
// It leaves out listeners, signals, logging and reloads: the composition
// root, cmd/zitadel-ext-authz, puts those around the graph. The end-to-end
// tests build this very graph in process with a fake clock, and
// check-config reaches the IdP through NewIdP, so there is one wiring to
// keep right.
package wiring

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/ristretto/v2"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/apps"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/backchannel"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/idjwt"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/config"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/telemetry"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/internal/closablecache"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// RefreshCacheBytes bounds the refresh grace cache (one entry per session
// refreshed within the grace period).
const RefreshCacheBytes = 16 << 20

// UpstreamTokenCacheBytes bounds the cache of tokens exchanged for
// upstreams (upstream_token_audience; an entry is about 3 KB).
const UpstreamTokenCacheBytes = 32 << 20

// Deps are what the caller provides.
type Deps struct {
	Logger  *slog.Logger
	Metrics *telemetry.Metrics // nil: no metrics
	// Transport wraps the IdP client's transport (tracing); nil: none.
	Transport func(http.RoundTripper) http.RoundTripper
	// Clock replaces time.Now for the providers, the jars, Check and the
	// session stores (tests).
	Clock func() time.Time
	// IdPTimeout bounds one IdP request; 0: 30 s.
	IdPTimeout time.Duration
}

// Built is the connected graph.
type Built struct {
	Router   *apps.Router
	Sessions *Sessions
	Issuers  *oidcflow.Issuers
	// Assertions signs every app's identity assertions and publishes
	// their keys (one key set for the process).
	Assertions *idjwt.Ring

	deps         Deps
	global       *config.Config // the keys shared by every app, as built
	idp          *IdP
	refreshCache *closablecache.Cache[string, *oidcflow.RefreshEntry]
	// upstreamCache keeps the tokens exchanged for upstreams, for every
	// app (each Server keys its entries with its own seeds).
	upstreamCache *closablecache.Cache[uint64, *authz.UpstreamToken]

	tokenOnce  sync.Once
	tokenCache *ristretto.Cache[string, *oidcflow.TokenEntry]
	tokenErr   error

	mu      sync.Mutex
	apps    map[string]*App // by name
	secrets [][]byte        // cookie secrets the apps' keys derive from
	runCtx  context.Context // set by Run: apps added later start in it
	retired []*session.Jar  // of apps no longer served, still writing kept sessions
	closers []func()

	stopRun context.CancelFunc // ends what Start runs; nil until started
	runDone chan struct{}
}

// pendingStopWait bounds how long Close waits for the writers of kept
// sessions (each ends at once; a store call in flight is cancelled).
const pendingStopWait = 3 * time.Second

// Close stops the apps and the writers of refreshed sessions waiting for
// the store, and releases the caches and the Redis client.
func (b *Built) Close() {
	b.mu.Lock()
	jars := slices.Clone(b.retired)
	for _, a := range b.apps {
		a.halt()
		jars = append(jars, a.Jar)
	}
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), pendingStopWait)
	for _, j := range jars {
		j.StopPending(ctx)
	}
	cancel()
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}

// ErrConfig marks an error the configuration caused (exit code 2).
var ErrConfig = errors.New("configuration")

// Build connects the collaborators for cfg.
func Build(cfg *config.Config, d Deps) (b *Built, err error) {
	b = &Built{deps: d, global: cfg, idp: NewIdP(cfg, d), apps: map[string]*App{}}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	b.Issuers = b.idp.Issuers
	// Both are filled by IdP calls that run detached from the request
	// and may outlive shutdown: closablecache lets them close meanwhile.
	if b.refreshCache, err = closablecache.Bounded[string, *oidcflow.RefreshEntry](RefreshCacheBytes); err != nil {
		return b, fmt.Errorf("refresh cache: %w", err)
	}
	b.closers = append(b.closers, b.refreshCache.Close)
	if b.upstreamCache, err = closablecache.Bounded[uint64, *authz.UpstreamToken](UpstreamTokenCacheBytes); err != nil {
		return b, fmt.Errorf("upstream token cache: %w", err)
	}
	b.closers = append(b.closers, b.upstreamCache.Close)
	if d.Metrics != nil {
		d.Metrics.WatchCache("upstream_token", b.upstreamCache.Metrics())
	}
	if b.Sessions, err = newSessions(cfg, d.Metrics, d.Logger, d.Clock); err != nil {
		return b, err
	}
	b.closers = append(b.closers, b.Sessions.close)
	b.secrets = cfg.CookieSecrets
	keys, err := assertionKeys(cfg)
	if err != nil {
		return b, err
	}
	clock := d.Clock
	if clock == nil {
		clock = time.Now
	}
	b.Assertions = idjwt.NewRing(keys, clock)
	b.Router = apps.NewRouter(apps.NewTable(nil), d.Logger, noAppObserver(d.Metrics))
	if _, err := b.SetApps(cfg); err != nil {
		return b, err
	}
	return b, nil
}

// tokens is the bearer token cache every app shares (its keys are salted
// per app), built when the first app accepts bearer tokens.
func (b *Built) tokens() (*ristretto.Cache[string, *oidcflow.TokenEntry], error) {
	b.tokenOnce.Do(func() {
		size := b.global.TokenCacheSize
		b.tokenCache, b.tokenErr = ristretto.NewCache(&ristretto.Config[string, *oidcflow.TokenEntry]{
			NumCounters: max(size/30, 1000), // entries cost ~300 bytes
			MaxCost:     max(size, 1),
			BufferItems: 64,
			Metrics:     true,
		})
		if b.tokenErr != nil {
			return
		}
		b.closers = append(b.closers, b.tokenCache.Close)
		if b.deps.Metrics != nil {
			b.deps.Metrics.WatchCache("token", b.tokenCache.Metrics)
		}
	})
	return b.tokenCache, b.tokenErr
}

// Run starts every app's Provider and the stores' followers, and stops
// them when ctx ends. Apps added by a reload start in ctx too.
func (b *Built) Run(ctx context.Context) {
	b.mu.Lock()
	b.runCtx = ctx
	for _, a := range b.apps {
		a.start(ctx)
	}
	b.mu.Unlock()
	b.Sessions.Run(ctx)
	b.mu.Lock()
	for _, a := range b.apps {
		a.halt()
	}
	b.mu.Unlock()
}

// Start is the graph as a unit of the server: it loads what the other
// replicas recorded (Sessions.Follow), so the first Check already knows
// every logout, then runs the graph (Run) until Stop. Start it before the
// listeners, and Stop it after them: discovery and the announcements keep
// serving the Checks still in flight.
func (b *Built) Start(ctx context.Context) error {
	b.Sessions.Follow(ctx, b.deps.Logger)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	b.stopRun, b.runDone = cancel, make(chan struct{})
	go func() {
		defer close(b.runDone)
		b.Run(runCtx)
	}()
	return nil
}

// Stop ends what Start runs, waiting for it until ctx ends, then Closes.
func (b *Built) Stop(ctx context.Context) {
	if b.stopRun != nil {
		b.stopRun()
		select {
		case <-b.runDone:
		case <-ctx.Done():
		}
	}
	b.Close()
}

// App returns the running app called name (config.DefaultAppName for the
// top-level keys' app), or nil.
func (b *Built) App(name string) *App {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.apps[name]
}

// Apps lists the running apps.
func (b *Built) Apps() []*App {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Collect(maps.Values(b.apps))
}

// Ready reports whether every app's IdP is discovered and its JWKS
// loaded, naming the issuers (and their apps) that are not yet.
func (b *Built) Ready() (bool, string) {
	waiting := map[string][]string{} // issuer → apps
	for _, a := range b.Apps() {
		if !a.Provider.Ready() {
			waiting[a.Config.OIDC.Issuer] = append(waiting[a.Config.OIDC.Issuer], a.Name)
		}
	}
	if len(waiting) == 0 {
		return true, ""
	}
	var parts []string
	for _, iss := range slices.Sorted(maps.Keys(waiting)) {
		names := waiting[iss]
		slices.Sort(names)
		parts = append(parts, fmt.Sprintf("%s (apps %s)", iss, strings.Join(names, ", ")))
	}
	return false, "identity provider discovery or JWKS not loaded yet: " + strings.Join(parts, "; ")
}

// LogoutHandler is POST /oauth2/backchannel_logout for every app.
func (b *Built) LogoutHandler() http.Handler {
	var observe func(string)
	if b.deps.Metrics != nil {
		observe = b.deps.Metrics.LogoutOutcome
	}
	return b.Sessions.LogoutHandler(func() []backchannel.Audience {
		running := b.Apps()
		slices.SortFunc(running, func(x, y *App) int { return strings.Compare(x.Name, y.Name) })
		out := make([]backchannel.Audience, len(running))
		for i, a := range running {
			out[i] = backchannel.Audience{App: a.Name, Verifier: a.Provider, Ender: a.ender}
		}
		return out
	}, b.deps.Logger, observe)
}
