package wiring

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/apps"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/backchannel"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/idjwt"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/config"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/telemetry"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

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
	providerOpts := []oidcflow.Option{oidcflow.WithLogger(logger), oidcflow.WithRefreshCache(b.refreshCache, b.global.RefreshGrace)}
	authzOpts := []authz.Option{authz.WithLogger(logger), authz.WithApp(a.Name), authz.WithSigner(b.Assertions),
		authz.WithUpstreamTokenCache(b.upstreamCache)}
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
	provider, err := b.idp.NewProvider(a, providerOpts...)
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

// appChange is what SetApps does to one app of the new configuration:
// keep it (new == old), change its policy in place (policy set), or
// replace it with a new build (new != old; old is nil for an added app).
type appChange struct {
	old, new *App
	policy   *config.App
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
	keys, err := assertionKeys(cfg)
	if err != nil {
		return nil, err
	}
	oldSecrets := b.secrets
	b.secrets = cfg.CookieSecrets // the apps built below derive their keys from them
	changes, report, err := b.planApps(cfg)
	if err != nil {
		b.secrets = oldSecrets
		return nil, err
	}
	// Commit: nothing below fails.
	b.idp.Dial.Set(cfg.IssuerDials())
	b.Assertions.Set(keys)
	running := b.switchApps(changes, rekey)
	report = append(report, b.retireApps(changes, running)...)
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

// planApps decides each app's change and builds the apps that need it,
// touching nothing that serves: a build that fails leaves all as it was.
// b.mu held.
func (b *Built) planApps(cfg *config.Config) ([]appChange, []string, error) {
	var changes []appChange
	var report []string
	for _, ca := range cfg.AllApps() {
		old := b.apps[ca.Name]
		if old != nil {
			diff := changedKeys(old.Config.AppValues(), ca.AppValues())
			if len(diff) == 0 {
				changes = append(changes, appChange{old: old, new: old})
				continue
			}
			if !slices.ContainsFunc(diff, func(k string) bool { return k != "hosts" && !config.Reloadable(k) }) {
				changes = append(changes, appChange{old: old, new: old, policy: ca})
				report = append(report, fmt.Sprintf("%s: %s applied", ca.Name, strings.Join(diff, ", ")))
				continue
			}
			report = append(report, fmt.Sprintf("%s: rebuilt (%s changed)", ca.Name, strings.Join(diff, ", ")))
		} else if len(b.apps) > 0 {
			report = append(report, ca.Name+": added")
		}
		a, err := b.buildApp(ca)
		if err != nil {
			return nil, nil, err
		}
		changes = append(changes, appChange{old: old, new: a})
	}
	return changes, report, nil
}

// switchApps applies the planned changes and points the Router at the
// resulting apps in one step, so a Check sees the old set or the new one,
// never a mix; it returns the apps now served, by name. b.mu held.
func (b *Built) switchApps(changes []appChange, rekey bool) map[string]*App {
	var table []*apps.Entry
	var def *apps.Entry
	running := make(map[string]*App, len(changes))
	for _, c := range changes {
		a := c.new
		if c.policy != nil {
			if err := a.Server.SetConfig(c.policy.Authz); err == nil {
				a.Config = c.policy
			}
		}
		if rekey && a == c.old {
			codec, _ := session.NewAppCodec(namespace(a.Name), b.secrets...)
			a.Jar.SetCodec(codec)
		}
		if a != c.old && b.runCtx != nil {
			a.start(b.runCtx)
		}
		running[a.Name] = a
		ta := &apps.Entry{Name: a.Name, Hosts: a.Config.Hosts, Server: a.Server}
		if a.Name == config.DefaultAppName {
			def = ta
		} else {
			table = append(table, ta)
		}
	}
	b.Router.SetTable(apps.NewTable(def, table...))
	return running
}

// retireApps stops the apps no longer served (replaced or removed) once
// the Router has moved on, and reports the removed ones. Their jars may
// still hold refreshed sessions waiting for the store: Close stops those
// writers. b.mu held.
func (b *Built) retireApps(changes []appChange, running map[string]*App) []string {
	var report []string
	retire := func(a *App) {
		a.halt()
		b.retired = append(b.retired, a.Jar)
	}
	for _, c := range changes {
		if c.old != nil && c.old != c.new {
			retire(c.old)
		}
	}
	for name, a := range b.apps {
		if _, ok := running[name]; !ok {
			retire(a)
			report = append(report, name+": removed")
		}
	}
	b.retired = slices.DeleteFunc(b.retired, func(j *session.Jar) bool { return j.PendingLen() == 0 })
	return report
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

// noAppObserver is what the Router reports Checks no app claims to.
func noAppObserver(m *telemetry.Metrics) authz.Observer {
	if m == nil {
		return nil
	}
	return m.ForApp(telemetry.NoApp)
}

// assertionKeys are the identity assertion's keys: identity_jwt_key_file's,
// else one derived from each cookie secret (every replica derives the
// same; the first signs).
func assertionKeys(cfg *config.Config) (idjwt.Keys, error) {
	if len(cfg.IdentityJWTKeys) > 0 {
		return cfg.IdentityJWTKeys, nil
	}
	keys, err := idjwt.FromSecrets(cfg.CookieSecrets)
	if err != nil {
		return nil, fmt.Errorf("%w: identity_jwt keys: %w", ErrConfig, err)
	}
	return keys, nil
}
