// Package wiring is zitadel-ext-authz's composition root: from a loaded
// configuration it builds the collaborators and connects them: per app
// (the top-level keys' default app and each entry of the apps list) an IdP
// client (oidcflow.Provider), a session jar and an authz.Server; shared by
// all apps, the HTTP client, the issuers' discovery and JWKS, the caches
// and the session stores; and the apps.Router that answers Check. The serve
// command puts listeners, signals and reloads around what Build returns;
// the end-to-end tests build the very same graph in process with a fake
// clock, so there is one wiring to keep right.
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
	// Clock replaces time.Now for the providers, the jars and Check (tests).
	Clock func() time.Time
}

// App is one app's collaborators.
type App struct {
	Name     string
	Config   *config.App
	Provider *oidcflow.Provider
	Jar      *session.Jar
	Server   *authz.Server
	ender    backchannel.Ender
	stop     context.CancelFunc // ends the Provider's Serve; nil until started
	done     chan struct{}
}

// Built is the connected graph.
type Built struct {
	Router   *apps.Router
	Sessions *Sessions
	Issuers  *oidcflow.Issuers

	deps         Deps
	global       *config.Config // the keys shared by every app, as built
	dial         *oidcflow.DialMap
	idpClient    *http.Client
	refreshCache *ristretto.Cache[string, *oidcflow.RefreshEntry]

	tokenOnce  sync.Once
	tokenCache *ristretto.Cache[string, *oidcflow.TokenEntry]
	tokenErr   error

	mu      sync.Mutex
	apps    map[string]*App // by name
	secrets [][]byte        // cookie secrets the apps' keys derive from
	runCtx  context.Context // set by Run: apps added later start in it
	closers []func()
}

// Close stops the apps and releases the caches and the Redis client.
func (b *Built) Close() {
	b.mu.Lock()
	for _, a := range b.apps {
		a.halt()
	}
	b.mu.Unlock()
	for i := len(b.closers) - 1; i >= 0; i-- {
		b.closers[i]()
	}
}

// ErrConfig marks an error the configuration caused (exit code 2).
var ErrConfig = errors.New("configuration")

// Build connects the collaborators for cfg.
func Build(cfg *config.Config, d Deps) (b *Built, err error) {
	b = &Built{deps: d, global: cfg, dial: &oidcflow.DialMap{}, apps: map[string]*App{}}
	defer func() {
		if err != nil {
			b.Close()
		}
	}()
	b.dial.Set(cfg.IssuerDials())
	b.idpClient = oidcflow.NewIdPClient(30*time.Second, b.dial, cfg.IdPTLS)
	if d.Transport != nil {
		b.idpClient.Transport = d.Transport(b.idpClient.Transport)
	}
	b.Issuers = oidcflow.NewIssuers(b.idpClient, d.Clock)
	b.refreshCache, err = ristretto.NewCache(&ristretto.Config[string, *oidcflow.RefreshEntry]{
		NumCounters: 100_000, MaxCost: RefreshCacheBytes, BufferItems: 64, Metrics: true,
	})
	if err != nil {
		return b, fmt.Errorf("refresh cache: %w", err)
	}
	b.closers = append(b.closers, b.refreshCache.Close)
	if b.Sessions, err = newSessions(cfg, d.Metrics, d.Logger); err != nil {
		return b, err
	}
	b.closers = append(b.closers, b.Sessions.close)
	b.secrets = cfg.CookieSecrets
	var noApp authz.Observer
	if d.Metrics != nil {
		noApp = d.Metrics.ForApp(telemetry.NoApp)
	}
	b.Router = apps.NewRouter(apps.NewTable(nil), d.Logger, noApp)
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

// namespace is what keys an app's cookies and cache entries: "" for the
// default app (as before there were apps), else its name.
func namespace(name string) string {
	if name == config.DefaultAppName {
		return ""
	}
	return name
}

// buildApp connects one app's Provider, Jar and Server; it does no I/O.
func (b *Built) buildApp(a *config.App) (*App, error) {
	d := b.deps
	ns := namespace(a.Name)
	logger := d.Logger.With("app", a.Name)
	providerOpts := []oidcflow.Option{
		oidcflow.WithHTTPClient(b.idpClient), oidcflow.WithLogger(logger), oidcflow.WithIssuers(b.Issuers),
		oidcflow.WithRefreshCache(b.refreshCache, b.global.RefreshGrace),
	}
	authzOpts := []authz.Option{authz.WithLogger(logger), authz.WithApp(a.Name)}
	if d.Metrics != nil {
		m := d.Metrics.ForApp(a.Name)
		providerOpts = append(providerOpts, oidcflow.WithObserver(m.ObserveIdP))
		authzOpts = append(authzOpts, authz.WithObserver(m))
	}
	var jarClock []session.JarOption
	if d.Clock != nil {
		providerOpts = append(providerOpts, oidcflow.WithClock(d.Clock))
		authzOpts = append(authzOpts, authz.WithClock(d.Clock))
		jarClock = append(jarClock, session.WithClock(d.Clock))
	}
	if a.BearerEnabled {
		cache, err := b.tokens()
		if err != nil {
			return nil, fmt.Errorf("token cache: %w", err)
		}
		providerOpts = append(providerOpts, oidcflow.WithBearer(a.Bearer, cache))
	}
	provider, err := oidcflow.New(a.OIDC, providerOpts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, where(a), err)
	}
	if a.BearerEnabled {
		authzOpts = append(authzOpts, authz.WithBearerAuth(provider))
	}
	codec, err := session.NewAppCodec(ns, b.secrets...)
	if err != nil {
		return nil, fmt.Errorf("%w: cookie_secret: %w", ErrConfig, err)
	}
	jarOpts, sessionOpts, ender := b.Sessions.forApp(ns, a.Cookie.Expire)
	jar := session.NewJar(codec, a.Cookie, append(jarOpts, jarClock...)...)
	server, err := authz.New(a.Authz, provider, jar, append(sessionOpts, authzOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrConfig, where(a), err)
	}
	return &App{Name: a.Name, Config: a, Provider: provider, Jar: jar, Server: server, ender: ender}, nil
}

// where names an app in errors: nothing for the default app (its keys are
// the top level's), apps[name] for the others.
func where(a *config.App) string {
	if a.Name == config.DefaultAppName {
		return "top level"
	}
	return "apps[" + a.Name + "]"
}

// start runs the app's Provider (discovery, retried until it succeeds).
func (a *App) start(ctx context.Context) {
	ctx, a.stop = context.WithCancel(ctx)
	a.done = make(chan struct{})
	go func() {
		defer close(a.done)
		a.Provider.Serve(ctx)
	}()
}

// halt stops the app's Provider and waits for it.
func (a *App) halt() {
	if a.stop != nil {
		a.stop()
		<-a.done
		a.stop = nil
	}
}

// Run starts every app's Provider and the stores' followers, and stops
// them when ctx ends. Apps added by a reload start in ctx too.
func (b *Built) Run(ctx context.Context) error {
	b.mu.Lock()
	b.runCtx = ctx
	for _, a := range b.apps {
		a.start(ctx)
	}
	b.mu.Unlock()
	err := b.Sessions.Run(ctx)
	b.mu.Lock()
	for _, a := range b.apps {
		a.halt()
	}
	b.mu.Unlock()
	return err
}

// SetApps makes the served apps those of cfg (Build, and every reload):
// new apps are built and started, removed ones stopped (their cookies
// stop working: no other app has their keys), and changed ones changed:
// a change to their policy keys is applied in place, any other change
// (client, secret, issuer, cookie, …) builds the app anew, which keeps
// its sessions (same keys) while the next login uses the new client. A
// change of the cookie secrets re-keys every app. Nothing changes when
// an app can't be built. It reports what changed, by app.
func (b *Built) SetApps(cfg *config.Config) ([]string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rekey := !slices.EqualFunc(b.secrets, cfg.CookieSecrets, func(x, y []byte) bool { return string(x) == string(y) })
	oldSecrets := b.secrets
	b.secrets = cfg.CookieSecrets
	type change struct {
		old, new *App
		policy   *config.App // in-place change
	}
	var changes []change
	var report []string
	next := cfg.AllApps()
	seen := map[string]bool{}
	for _, ca := range next {
		seen[ca.Name] = true
		old := b.apps[ca.Name]
		if old != nil {
			diff := changedKeys(old.Config.AppValues(), ca.AppValues())
			if len(diff) == 0 {
				changes = append(changes, change{old: old, new: old})
				continue
			}
			if !slices.ContainsFunc(diff, func(k string) bool { return k != "hosts" && !config.Reloadable(k) }) {
				changes = append(changes, change{old: old, new: old, policy: ca})
				report = append(report, fmt.Sprintf("%s: %s applied", ca.Name, strings.Join(diff, ", ")))
				continue
			}
			report = append(report, fmt.Sprintf("%s: rebuilt (%s changed)", ca.Name, strings.Join(diff, ", ")))
		} else if len(b.apps) > 0 {
			report = append(report, ca.Name+": added")
		}
		a, err := b.buildApp(ca)
		if err != nil {
			b.secrets = oldSecrets
			return nil, err
		}
		changes = append(changes, change{old: old, new: a})
	}
	// Commit: nothing below fails.
	b.dial.Set(cfg.IssuerDials())
	var table []*apps.App
	var def *apps.App
	running := make(map[string]*App, len(changes))
	for _, c := range changes {
		a := c.new
		if c.policy != nil {
			if err := a.Server.SetConfig(c.policy.Authz); err == nil {
				a.Config = c.policy
			}
		}
		if rekey && a == c.old {
			codec, _ := session.NewAppCodec(namespace(a.Name), cfg.CookieSecrets...)
			a.Jar.SetCodec(codec)
		}
		if a != c.old && b.runCtx != nil {
			a.start(b.runCtx)
		}
		running[a.Name] = a
		ta := &apps.App{Name: a.Name, Hosts: a.Config.Hosts, Check: a.Server}
		if a.Name == config.DefaultAppName {
			def = ta
		} else {
			table = append(table, ta)
		}
	}
	b.Router.SetTable(apps.NewTable(def, table...))
	for _, c := range changes {
		if c.old != nil && c.old != c.new {
			c.old.halt()
		}
	}
	for name, a := range b.apps {
		if !seen[name] {
			a.halt()
			report = append(report, name+": removed")
		}
	}
	b.apps = running
	var issuers []string
	for _, a := range running {
		issuers = append(issuers, a.Config.OIDC.Issuer)
	}
	b.Issuers.Retain(issuers)
	if rekey && len(report) == 0 && b.runCtx != nil {
		report = append(report, "cookie keys of every app re-derived")
	}
	return report, nil
}

// changedKeys lists the keys whose values differ.
func changedKeys(old, next map[string]string) []string {
	var out []string
	for k, v := range next {
		if old[k] != v {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
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
