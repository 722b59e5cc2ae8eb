package oidcflow

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zitadel/oidc/v3/pkg/client/rp"
	"github.com/zitadel/oidc/v3/pkg/client/rs"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"
)

// Config is what the flow needs to know about the IdP and the client.
type Config struct {
	Issuer       string // oidc_issuer_url, exactly as discovery prints it
	ClientID     string // client_id (ZITADEL ids contain '@')
	ClientSecret string // client_secret (basic and post)
	// AuthMethod is how the client authenticates (client_auth_method:
	// AuthBasic when empty, AuthPost, AuthNone, AuthPrivateKeyJWT);
	// ClientKey is the application's key file for AuthPrivateKeyJWT.
	AuthMethod  string
	ClientKey   *KeyFile
	Scopes      []string // scope; must contain openid
	UserIDClaim string   // user_id_claim, default sub
	EmailClaim  string   // oidc_email_claim, default email
	GroupsClaim string   // oidc_groups_claim, default groups
	// ClaimHeaders is claim_headers: upstream header name → claim path
	// (dotted like the claims above). Identity.ClaimValues holds the
	// values of the claims it names.
	ClaimHeaders map[string]string
	// KeepClaims are more claim paths whose values Identity.ClaimValues
	// holds (the claims the configured rules read), rendered as
	// claim_headers renders them.
	KeepClaims []string
	// CallTimeout (idp_timeout) bounds an IdP call shared by concurrent
	// Checks (refresh, introspection), which runs detached from any one of
	// them; default 5 s. Each Check still waits only until its own deadline.
	CallTimeout time.Duration
	// Endpoints replaces discovery (skip_oidc_discovery), for IdPs without
	// a discovery document; nil: discover.
	Endpoints *Endpoints
}

// allowedAlgs are the ID token signature algorithms we ever accept: the
// asymmetric ones. none and HS* (which would make the client secret a
// signing key) are never allowed, whatever discovery says.
var allowedAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// Provider is the IdP as seen from the login flow. It is safe for concurrent
// use; until Serve has completed discovery and loaded the JWKS, every call
// that needs the IdP fails with ErrIdPUnavailable.
type Provider struct {
	cfg    Config
	client *http.Client
	logger *slog.Logger
	random io.Reader
	now    func() time.Time
	state  atomic.Pointer[discovered]

	bearerCfg BearerConfig
	bearerOn  bool // WithBearer: API tokens are accepted
	// introspections bounds the IdP calls for tokens the cache doesn't
	// know (BearerConfig.IntrospectionBudget); nil: unbounded.
	introspections *budget
	tokens         TokenCache
	flights        singleflight.Group
	observer       func(call, outcome string, d time.Duration)

	refreshes    RefreshCache
	refreshGrace time.Duration

	extraVerifiers sync.Map // extra_jwt_issuers issuer → *op.AccessTokenVerifier

	auth      *clientAuth // how the client authenticates at the IdP
	authHints hintLimiter // the invalid_client hint, once a minute

	issuers *Issuers // discovery and JWKS, shared with the other apps' Providers
	// tokenSalt is XORed into token cache keys: random per Provider, so one
	// cache serves many apps' Providers and a verdict of one is never
	// another's, and a Provider rebuilt by a reload (another client id,
	// other audiences) never serves a verdict made under the old rules.
	tokenSalt [32]byte
}

// discovered is everything learned from discovery, replaced as a whole.
type discovered struct {
	config *oidc.DiscoveryConfiguration
	// issInResponses: authorization_response_iss_parameter_supported.
	issInResponses bool
	party          rp.RelyingParty
	authURL        authURLForm // party's authorization URL without extra parameters
	keys           *keySet
	verifier       *rp.IDTokenVerifier
	// refreshVerifier checks refreshed ID tokens: like verifier, but without
	// a nonce (OIDC Core §12.2: a refreshed ID token need not repeat it).
	refreshVerifier *rp.IDTokenVerifier

	accessVerifier *op.AccessTokenVerifier
	introspector   rs.ResourceServer // nil without an introspection_endpoint
}

// Option customises a Provider.
type Option func(*Provider)

// WithHTTPClient sets the client used for every IdP call (default: NewHTTPClient(10s)).
func WithHTTPClient(c *http.Client) Option { return func(p *Provider) { p.client = c } }

// WithLogger sets the logger (default: slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(p *Provider) { p.logger = l } }

// WithRandom sets the source of state, nonce and PKCE verifier bytes
// (default: crypto/rand.Reader).
func WithRandom(r io.Reader) Option { return func(p *Provider) { p.random = r } }

// WithClock replaces time.Now for the provider's own decisions.
func WithClock(now func() time.Time) Option { return func(p *Provider) { p.now = now } }

// WithBearer enables access-token verification for API callers, with an
// optional cache of outcomes (nil: no cache).
func WithBearer(cfg BearerConfig, cache TokenCache) Option {
	return func(p *Provider) {
		p.bearerCfg, p.tokens, p.bearerOn = cfg, cache, true
		p.introspections = newBudget(cfg.IntrospectionBudget)
	}
}

// WithObserver receives every IdP call (and token cache lookup) with its
// outcome and duration, for metrics. call is one of discovery, token,
// userinfo, jwt, introspection, token_cache.
func WithObserver(f func(call, outcome string, d time.Duration)) Option {
	return func(p *Provider) { p.observer = f }
}

func (p *Provider) observe(call, outcome string, d time.Duration) {
	if p.observer != nil {
		p.observer(call, outcome, d)
	}
}

// Defaults of a Config and of BearerConfig, which the configuration's key
// table shows.
const (
	DefaultUserIDClaim      = "sub"
	DefaultEmailClaim       = "email"
	DefaultGroupsClaim      = "groups"
	DefaultCallTimeout      = 5 * time.Second  // idp_timeout
	DefaultTokenCacheTTL    = 5 * time.Minute  // introspection_cache_ttl
	DefaultNegativeCacheTTL = 10 * time.Second // introspection_negative_ttl
)

// New returns a Provider. It does no network I/O: run Serve to discover.
func New(cfg Config, opts ...Option) (*Provider, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" {
		return nil, errors.New("new provider: issuer and client id are required")
	}
	if !slices.Contains(cfg.Scopes, oidc.ScopeOpenID) {
		cfg.Scopes = append([]string{oidc.ScopeOpenID}, cfg.Scopes...)
	}
	if cfg.UserIDClaim == "" {
		cfg.UserIDClaim = DefaultUserIDClaim
	}
	if cfg.EmailClaim == "" {
		cfg.EmailClaim = DefaultEmailClaim
	}
	if cfg.GroupsClaim == "" {
		cfg.GroupsClaim = DefaultGroupsClaim
	}
	auth, err := newClientAuth(cfg)
	if err != nil {
		return nil, fmt.Errorf("new provider: %w", err)
	}
	p := &Provider{cfg: cfg, auth: auth, logger: slog.Default(), random: crand.Reader, now: time.Now}
	_, _ = crand.Read(p.tokenSalt[:]) // never fails (crypto/rand)
	for _, o := range opts {
		o(p)
	}
	if p.client == nil {
		p.client = NewHTTPClient(10 * time.Second)
	}
	if p.issuers == nil {
		p.issuers = NewIssuers(p.client, p.now)
	}
	if p.bearerCfg.PositiveTTL <= 0 {
		p.bearerCfg.PositiveTTL = DefaultTokenCacheTTL
	}
	if p.bearerCfg.NegativeTTL <= 0 {
		p.bearerCfg.NegativeTTL = DefaultNegativeCacheTTL
	}
	if p.cfg.CallTimeout <= 0 {
		p.cfg.CallTimeout = DefaultCallTimeout
	}
	return p, nil
}

// Ready reports whether discovery succeeded and the JWKS is loaded.
func (p *Provider) Ready() bool { return p.state.Load() != nil }

// Serve discovers the IdP, retrying with exponential backoff (250 ms up to
// 30 s, jittered) until it succeeds or ctx ends, then waits for ctx. The
// server runs (and answers 503 for logins) while the IdP is down, and
// becomes ready without a restart once it is up.
func (p *Provider) Serve(ctx context.Context) error {
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := p.discover(ctx)
		if err == nil {
			p.logger.Info("identity provider discovered", "issuer", p.cfg.Issuer, "attempts", attempt)
			if w := p.ClientAuthWarning(); w != "" {
				p.logger.Warn(w, "issuer", p.cfg.Issuer, "client_id", p.cfg.ClientID)
			}
			break
		}
		p.logger.Warn("identity provider discovery failed; retrying", "issuer", p.cfg.Issuer, "attempt", attempt, "retry_in", backoff, "reason", err.Error())
		wait := backoff/2 + mrand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
	<-ctx.Done()
	return nil
}

// Discover runs discovery once and loads the JWKS (check-config uses it;
// Serve retries it).
func (p *Provider) Discover(ctx context.Context) error { return p.discover(ctx) }

func (p *Provider) discover(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	fetch := p.fetchDiscovery
	if p.cfg.Endpoints != nil {
		fetch = p.configuredEndpoints
	}
	doc, keys, err := p.issuers.discover(ctx, p.cfg.Issuer, fetch)
	if err != nil {
		return err
	}
	cfg := &doc.DiscoveryConfiguration
	party, err := rp.NewRelyingPartyOAuth(&oauth2.Config{
		ClientID:     p.cfg.ClientID,
		ClientSecret: p.auth.secret,
		Scopes:       p.cfg.Scopes,
		Endpoint:     oauth2.Endpoint{AuthURL: cfg.AuthorizationEndpoint, TokenURL: cfg.TokenEndpoint},
	}, rp.WithHTTPClient(p.client), rp.WithAuthStyle(p.auth.authStyle()))
	if err != nil {
		return fmt.Errorf("relying party: %w", err)
	}
	algs := signingAlgs(cfg.IDTokenSigningAlgValuesSupported)
	verifier := rp.NewIDTokenVerifier(p.cfg.Issuer, p.cfg.ClientID, keys,
		rp.WithSupportedSigningAlgorithms(algs...),
		rp.WithIssuedAtOffset(30*time.Second),
		rp.WithNonce(nonceFromContext),
	)
	refreshVerifier := *verifier
	refreshVerifier.Nonce = nil
	introspector, err := p.newIntrospector(ctx, cfg)
	if err != nil {
		return fmt.Errorf("introspection client: %w", err)
	}
	p.state.Store(&discovered{
		config: cfg, issInResponses: doc.AuthorizationResponseIssParameterSupported,
		party: party, authURL: newAuthURLForm(cfg.AuthorizationEndpoint, p.cfg.ClientID, p.cfg.Scopes),
		keys: keys, verifier: verifier, refreshVerifier: &refreshVerifier,
		accessVerifier: op.NewAccessTokenVerifier(p.cfg.Issuer, keys, op.WithSupportedAccessTokenSigningAlgorithms(algs...)),
		introspector:   introspector,
	})
	return nil
}

// ClientAuthWarning is what discovery says against client_auth_method
// (the token endpoint lists its methods, and ours is not among them), for
// start-up and check-config; "" when nothing, or before discovery.
func (p *Provider) ClientAuthWarning() string {
	d := p.state.Load()
	if d == nil {
		return ""
	}
	return p.auth.mismatch(d.config.TokenEndpointAuthMethodsSupported)
}

// classifyClient is classify for calls that authenticate the client: an
// invalid_client answer is logged with what to do (refused).
func (p *Provider) classifyClient(ctx context.Context, err error) error {
	return p.refused(classify(ctx, err))
}

// refused logs, at most once a minute, the hint for an ErrClientAuth.
func (p *Provider) refused(err error) error {
	if errors.Is(err, ErrClientAuth) && p.authHints.allow(p.now()) {
		p.logger.Error("the identity provider refused our client; sign-ins fail until the configuration is fixed",
			"reason", "client_auth_failed", "client_id", p.cfg.ClientID, "client_auth_method", p.auth.method,
			"error", err.Error(), "fix", clientAuthHint(p.auth.method))
	}
	return err
}

// signingAlgs intersects what the IdP advertises with allowedAlgs; an IdP
// that advertises nothing gets RS256, the OIDC default.
func signingAlgs(advertised []string) []string {
	var out []string
	for _, a := range advertised {
		if slices.Contains(allowedAlgs, a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		out = []string{"RS256"}
	}
	return out
}

func (p *Provider) current() (*discovered, error) {
	d := p.state.Load()
	if d == nil {
		return nil, fmt.Errorf("%w: %w", ErrIdPUnavailable, errNotReady)
	}
	return d, nil
}

type nonceKey struct{}

// nonceFromContext feeds the expected nonce of one exchange to the shared
// verifier (zitadel.md §2.2 point 2).
func nonceFromContext(ctx context.Context) string {
	s, _ := ctx.Value(nonceKey{}).(string)
	return s
}
