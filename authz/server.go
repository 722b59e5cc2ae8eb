package authz

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/session"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// IdP is what the login routes need from the OpenID Provider;
// *oidcflow.Provider implements it.
type IdP interface {
	NewLogin() (oidcflow.Login, error)
	AuthURL(l oidcflow.Login, redirectURI string, extra url.Values) (string, error)
	CheckResponseIssuer(iss string, present bool) error
	Exchange(ctx context.Context, code, redirectURI string, l oidcflow.Login) (*oidcflow.Tokens, error)
	EndSessionURL(idTokenHint, postLogoutRedirectURI, state string) (string, error)
	Refresh(ctx context.Context, refreshToken string) (*oidcflow.Tokens, error)
	Revoke(ctx context.Context, token, hint string) error
	// BackendLogout calls an operator's logout URL (backend_logout_url).
	BackendLogout(ctx context.Context, url string) error
	// ExchangeToken trades the user's access token for one for an
	// upstream's audience (RFC 8693; upstreamtoken.go).
	ExchangeToken(ctx context.Context, subjectToken, audience string) (*oidcflow.ExchangedToken, error)
}

// Server implements envoy.service.auth.v3.Authorization.
type Server struct {
	authv3.UnimplementedAuthorizationServer

	cfg         atomic.Pointer[settings] // replaced whole by SetConfig
	idp         IdP
	jar         *session.Jar
	logger      *slog.Logger
	now         func() time.Time
	bearerAuth  BearerAuth  // nil: bearer tokens are not accepted
	observer    Observer    // nil: none
	refreshLock Locker      // nil: single replica, no cross-replica lock
	revocations Revocations // nil: none (back-channel logout in cookie mode)
	app         string      // the app's name, in dynamic metadata (WithApp)
	reasonMeta  reasonCache // dynamic metadata of answers without a user
	signer      Signer      // nil: no identity assertions
	blocks      *blockCache // identity blocks of sessions the jar doesn't cache; nil when it does

	// upstream are the tokens exchanged for upstreams (upstreamtoken.go).
	upstream upstreamTokens
}

// WithApp names the app this Server answers for (several apps on one
// server), for the answers' dynamic metadata.
func WithApp(name string) Option { return func(s *Server) { s.app = name } }

// Locker is a lock shared by all replicas (Redis), held around a refresh so
// two replicas never spend one rotating refresh token.
type Locker interface {
	Lock(ctx context.Context, key string) (unlock func(), err error)
}

// Revocations is the record of cookie sessions that ended while their
// cookies live on: back-channel logouts (by the IdP's session id, or every
// session of a subject that began before the logout; createdAtMs: login
// time, Unix milliseconds) and sign-outs (by the sign-in's login id).
type Revocations interface {
	Revoked(sid, sub string, createdAtMs int64) bool
	SignedOut(loginID string) bool
	// SignOut records that the sign-in loginID ended, until its cookie
	// expires, on every replica.
	SignOut(ctx context.Context, loginID string, until time.Time) error
}

// WithRefreshLock takes l around every refresh of a stored session.
func WithRefreshLock(l Locker) Option { return func(s *Server) { s.refreshLock = l } }

// WithRevocations rejects sessions that r reports as logged out.
func WithRevocations(r Revocations) Option { return func(s *Server) { s.revocations = r } }

// Observer sees every decision with the Check's context (metrics, trace
// attributes). It runs on the Check's goroutine: it must not block.
type Observer interface {
	Decided(ctx context.Context, d *Decision, elapsed time.Duration)
}

// Option customises a Server.
type Option func(*Server)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.logger = l } }

// WithObserver reports every decision to o.
func WithObserver(o Observer) Option { return func(s *Server) { s.observer = o } }

// WithClock replaces time.Now.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// New returns a Server. It does no I/O.
func New(cfg Config, idp IdP, jar *session.Jar, opts ...Option) (*Server, error) {
	set, err := compile(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{idp: idp, jar: jar, logger: slog.Default(), now: time.Now}
	s.cfg.Store(set)
	for _, o := range opts {
		o(s)
	}
	if jar != nil && !jar.Caches() {
		s.blocks = &blockCache{}
	}
	return s, nil
}

// settings is a Config with what is derived from it, replaced whole.
type settings struct {
	Config
	callbackPath string      // redirect_url's path
	redirectAbs  bool        // redirect_url is absolute
	redirectOrig string      // its scheme://host when absolute (the assertion's default iss)
	headerSets   []headerSet // the identity headers sent upstream
	paths        paths       // our endpoints under proxy_prefix
	pageHeaders  []Header    // of every page (the CSP allows a custom logo)
	routes       *routeCache // the routes' context_extensions, parsed and checked
	// assertionPerHost: the identity assertion's iss or aud is the
	// request's host (neither identity_jwt_issuer nor an absolute
	// redirect_url, or no identity_jwt_audience), so a session seen on
	// another host needs another one.
	assertionPerHost bool
	// resourceMetaPath and resourceMetaURL are where the document of
	// ProtectedResource.URL is (its path, and absolute); "" without one
	// (resource.go).
	resourceMetaPath, resourceMetaURL string
	// configured are the upstream headers configuration keys name, which
	// Check removes when a client sends them (configuredHeaders).
	configured []configuredHeader
}

// paths are our endpoints under ProxyPrefix (oauth2-proxy's names).
type paths struct{ start, signIn, signOut, userinfo, jwks string }

// Defaults of the Config, which the configuration's key table shows.
const (
	// DefaultProxyPrefix is proxy_prefix's default, as in oauth2-proxy.
	DefaultProxyPrefix = "/oauth2"
	// DefaultIDPTimeout bounds each IdP call inside a Check (idp_timeout).
	DefaultIDPTimeout = oidcflow.DefaultCallTimeout
)

// compile fills defaults into cfg and derives what Checks need from it.
func compile(cfg Config) (*settings, error) {
	if cfg.ProxyPrefix == "" {
		cfg.ProxyPrefix = DefaultProxyPrefix
	}
	if cfg.ProxyPrefix[0] != '/' || strings.HasSuffix(cfg.ProxyPrefix, "/") {
		return nil, errors.New("proxy_prefix: want a path such as /oauth2 (a leading slash, none at the end)")
	}
	if cfg.RedirectURL == "" {
		cfg.RedirectURL = cfg.ProxyPrefix + "/callback"
	}
	u, err := url.Parse(cfg.RedirectURL)
	if err != nil || u.Path == "" || u.Path[0] != '/' {
		return nil, errors.New("redirect_url: want an absolute URL or a path such as /oauth2/callback")
	}
	if cfg.IDPTimeout <= 0 {
		cfg.IDPTimeout = DefaultIDPTimeout
	}
	if cfg.ProviderDisplayName == "" {
		cfg.ProviderDisplayName = DefaultProviderDisplayName
	}
	p := cfg.ProxyPrefix
	orig := ""
	if u.IsAbs() {
		orig = u.Scheme + "://" + u.Host
	}
	set := &settings{Config: cfg, callbackPath: u.Path, redirectAbs: u.IsAbs(), redirectOrig: orig, headerSets: headerSets(cfg),
		paths:       paths{start: p + "/start", signIn: p + "/sign_in", signOut: p + "/sign_out", userinfo: p + "/userinfo", jwks: p + "/jwks"},
		pageHeaders: pageHeadersFor(cfg.Pages), routes: &routeCache{ignored: cfg.IgnoredRouteKeys, rules: cfg.Rules}}
	set.configured = configuredHeaders(&cfg)
	set.assertionPerHost = len(cfg.IdentityJWT.Audience) == 0 || (cfg.IdentityJWT.Issuer == "" && orig == "")
	if r := cfg.ProtectedResource.URL; r != "" {
		origin, path, err := resourceLocation(r)
		if err != nil {
			return nil, err
		}
		set.resourceMetaPath, set.resourceMetaURL = path, origin+path
	}
	return set, nil
}

// conf is the configuration in force. A Check reads it through here once
// per use, so a SetConfig while Checks run never mixes two configurations
// within one field.
func (s *Server) conf() *settings { return s.cfg.Load() }

// SetConfig replaces the configuration (hot reload); Checks already running
// finish with the one they started with.
func (s *Server) SetConfig(cfg Config) error {
	set, err := compile(cfg)
	if err != nil {
		return err
	}
	s.cfg.Store(set)
	return nil
}

// Check answers one Envoy ext_authz request. Every decision, including bad
// input and internal failures, is a CheckResponse with a nil error.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	r, err := ParseRequest(req)
	if err != nil {
		var start time.Time
		if s.observer != nil {
			start = time.Now()
		}
		d := BadRequest(err)
		s.attachMetadata(d)
		s.decided(ctx, "", d, start)
		return d.Response(), nil
	}
	return s.Answer(ctx, r), nil
}

// Answer decides for a parsed request (apps.Router parses once for every
// app) and renders the answer; a panic is a 500 page, never a crash.
func (s *Server) Answer(ctx context.Context, r *Request) (resp *authv3.CheckResponse) {
	var start time.Time
	if s.observer != nil {
		start = time.Now() // only the observer wants the latency
	}
	var d *Decision
	defer func() {
		if p := recover(); p != nil {
			s.logger.Error("check panicked; denying", "request_id", r.ID, "reason", ReasonPanic, "panic", p)
			d = s.deny(ReasonInternalError)
			s.attachMetadata(d)
			resp = d.Response()
		}
		s.decided(ctx, r.ID, d, start)
	}()
	d = s.Decide(ctx, r)
	s.attachMetadata(d)
	return d.Response()
}

// decided logs one line per denied request (LogDecision) and tells the
// observer.
func (s *Server) decided(ctx context.Context, requestID string, d *Decision, start time.Time) {
	if d == nil {
		return
	}
	LogDecision(ctx, s.logger, requestID, d)
	if s.observer != nil {
		s.observer.Decided(ctx, d, time.Since(start))
	}
}

// LogDecision logs one line for a denied answer, at its reason's level
// (reasons.go); allowed answers are left to Envoy's access log.
func LogDecision(ctx context.Context, logger *slog.Logger, requestID string, d *Decision, extra ...slog.Attr) {
	if d.Allow {
		return
	}
	level := d.Reason.Level(d.Status)
	if !logger.Enabled(ctx, level) {
		return
	}
	attrs := append([]slog.Attr{slog.String("request_id", requestID), slog.String("decision", d.Kind()), slog.Int("status", d.Status),
		slog.String("reason", string(d.Reason))}, extra...)
	if d.Rule != "" {
		attrs = append(attrs, slog.String("rule", d.Rule))
	}
	if d.Subject != "" {
		attrs = append(attrs, slog.String("sub", d.Subject))
	}
	logger.LogAttrs(ctx, level, "not allowed", attrs...)
}

// Decide routes a parsed request: the oauth2 endpoints first, then
// skip_auth_routes, then the session. A 401 of an app that takes bearer
// tokens names its protected-resource metadata (resource.go).
func (s *Server) Decide(ctx context.Context, r *Request) *Decision {
	return s.challengeNamesResource(r, s.decide(ctx, r))
}

// challengeNamesResource adds the resource metadata's location to d's
// Bearer challenge when d is a 401 of an app that takes bearer tokens.
func (s *Server) challengeNamesResource(r *Request, d *Decision) *Decision {
	if d.Status == http.StatusUnauthorized && s.bearerAuth != nil {
		s.withResourceMetadata(r, d)
	}
	return d
}

// endpoint is one of our own endpoints, which Check answers itself.
type endpoint int

const (
	noEndpoint endpoint = iota
	epCallback
	epStart
	epSignIn
	epSignOut
	epUserinfo
	epJWKS
	epResourceMetadata
)

// endpointAt is the endpoint of ours r asks for (noEndpoint: none). The
// resource metadata is ours only where resourceMetadata answers it (a
// GET or HEAD for a resource that can be one); else its path is checked
// like any other.
func (s *Server) endpointAt(set *settings, r *Request) endpoint {
	switch r.Path {
	case set.callbackPath:
		return epCallback
	case set.paths.start:
		return epStart
	case set.paths.signIn:
		return epSignIn
	case set.paths.signOut:
		return epSignOut
	case set.paths.userinfo:
		return epUserinfo
	case set.paths.jwks:
		return epJWKS
	}
	if s.isResourceMetadata(set, r.Path) && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		return epResourceMetadata
	}
	return noEndpoint
}

func (s *Server) decide(ctx context.Context, r *Request) *Decision {
	set := s.conf()
	switch s.endpointAt(set, r) {
	case epCallback:
		return s.callback(ctx, r)
	case epStart:
		return s.start(r)
	case epSignIn:
		return s.signInPage(r, r.Query().Get("rd"))
	case epSignOut:
		return s.signOut(ctx, r)
	case epUserinfo:
		return s.userinfo(ctx, r)
	case epJWKS:
		return s.jwks()
	case epResourceMetadata:
		if d := s.resourceMetadata(set, r); d != nil {
			return d
		}
	}
	d, rp := s.beforeUser(set, r)
	if d != nil {
		return d
	}
	// An API caller with a bearer token: the token decides, never a cookie.
	if token, ok := bearerToken(r); ok && s.bearerAuth != nil && rp.auth != "session-only" {
		return s.bearer(ctx, r, token, rp)
	}
	if rp.auth == "bearer-only" {
		return unauthorized(ReasonNoBearer)
	}
	e, stale, err := s.jar.Load(ctx, r.Cookies)
	if errors.Is(err, session.ErrStoreUnavailable) {
		// Logged once, as the 503 decision; the store logs no line per request.
		return s.storeUnavailable()
	}
	if err != nil {
		return s.unauthenticated(r)
	}
	// The session cookie came with a state-changing request: only from the
	// app's own origin (csrf.go).
	if unsafeMethod(r.Method) && !rp.csrfOff && !s.sameOrigin(r) {
		return withSubject(s.csrfRefused(r), e.Session.GetSubject())
	}
	return s.withSession(ctx, r, e, stale, rp)
}

// beforeUser decides what needs no user: skip_auth_routes, preflight and
// trusted_ips let the request through (d), and a route whose
// context_extensions can't be read is refused (d); else d is nil and rp
// the route's policy.
func (s *Server) beforeUser(set *settings, r *Request) (d *Decision, rp routePolicy) {
	if s.skipAuth(r) {
		return s.allowAnonymous(r, ReasonSkipAuthRoute), rp
	}
	if set.SkipAuthPreflight && r.Method == http.MethodOptions {
		return s.allowAnonymous(r, ReasonPreflight), rp
	}
	if len(set.TrustedIPs) > 0 && s.trusted(set, r) {
		return s.allowAnonymous(r, ReasonTrustedIP), rp
	}
	e := set.routes.route(r.ContextExtensions)
	if e.problem != nil {
		return s.routeRefused(r, e), rp
	}
	return nil, e.policy
}

// judge applies the app's policy, the route's keys and its rules to u,
// who came by via (a session or a bearer token) with scopes: nil when
// u may make r. m (may be nil) keeps u's rendered identity block; trace,
// when not nil, collects what the rules read (check-policy).
func (s *Server) judge(r *Request, m memo, u user, via string, scopes []string, rp *routePolicy, trace *[]RuleRun) *Decision {
	set := s.conf()
	refuse := func(reason Reason) *Decision {
		if via == viaBearer {
			return withSubject(insufficientScope(reason), u.sub)
		}
		return withSubject(s.forbidden(reason, u.displayName(), rp), u.sub)
	}
	if reason := s.authorize(u); reason != "" {
		return refuse(reason)
	}
	if reason := rp.check(u, scopes); reason != "" {
		return refuse(reason)
	}
	if v := s.judgeRules(set, r, m, u, via, scopes, rp, trace); v.reason != "" {
		return s.ruleRefused(r, v, u, via)
	}
	// The route wants a fresher or stronger sign-in than this one: a
	// browser goes back to the IdP for it (the session stays for the other
	// routes); a program gets RFC 9470's challenge (ZITADEL puts neither
	// auth_time nor amr in access tokens).
	if need := rp.stepUp(u, s.now()); need != "" {
		if via == viaBearer || s.isAPI(r) {
			return withSubject(s.insufficientAuthentication(need, *rp), u.sub)
		}
		if trace != nil {
			return withSubject(stepUpPlanned(need), u.sub)
		}
		return withSubject(s.startStepUp(r, *rp, need), u.sub)
	}
	return nil
}

// unauthenticated answers a request without a valid session: 401 for API
// callers, else the login redirect or the sign-in page.
func (s *Server) unauthenticated(r *Request) *Decision {
	if s.isAPI(r) {
		return unauthorized(ReasonNoSession)
	}
	if s.signedOut(r) {
		return s.signedOutPage()
	}
	if !s.conf().SkipProviderButton {
		return s.signInPage(r, r.RequestURI())
	}
	return s.startLogin(r, r.URL())
}
