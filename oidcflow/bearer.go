package oidcflow

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/zitadel/oidc/v3/pkg/client/rs"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/internal/deadline"
)

// Bearer is an API caller authenticated by an access token.
type Bearer struct {
	Identity Identity
	Scopes   []string
	ClientID string
	Expiry   time.Time // zero when the token states none
	Via      string    // "jwt" or "introspection"

	// memo is where the caller keeps what it derives from a cached
	// Bearer (authz: the rendered identity headers), once per token.
	memo atomic.Value
}

// Memo returns what SetMemo stored, or nil.
func (b *Bearer) Memo() any { return b.memo.Load() }

// SetMemo stores v; every call must store the same type.
func (b *Bearer) SetMemo(v any) { b.memo.Store(v) }

// TokenEntry is one cached verification outcome: a Bearer, or Invalid.
// Cached entries are shared and must not be modified.
type TokenEntry struct {
	Bearer  *Bearer
	Invalid bool      // a negative result (active:false, bad signature, expired, …)
	Until   time.Time // the entry is valid until then (checked with the injected clock)
}

// TokenCache caches verification outcomes keyed by SHA-256 of the token,
// never the token itself. Its methods are ristretto's, so
// *ristretto.Cache[string, *TokenEntry] plugs in directly.
//
// Wait is called after each Set (a miss, already paying for an IdP call or
// a signature check): ristretto applies sets asynchronously, and the next
// Check with the same token must hit, not introspect again.
type TokenCache interface {
	Get(key string) (*TokenEntry, bool)
	SetWithTTL(key string, value *TokenEntry, cost int64, ttl time.Duration) bool
	Wait()
}

// BearerConfig is how API access tokens are verified.
type BearerConfig struct {
	// ExtraAudiences are accepted in a JWT's aud besides the client id and
	// the ZITADEL project id (extra_jwt_audiences).
	ExtraAudiences []string
	// ProjectID is the ZITADEL project id, accepted in aud (zitadel_project_id).
	ProjectID string
	// ForceIntrospection introspects JWTs too, so revocation is seen
	// (introspect_jwt_bearer_tokens).
	ForceIntrospection bool
	// Introspection client: client_secret_basic with ClientID/ClientSecret
	// (defaulting to the login client), or private_key_jwt with Key.
	IntrospectionClientID     string
	IntrospectionClientSecret string
	IntrospectionKey          *KeyFile
	// ExtraIssuers are other issuers whose JWT bearer tokens are accepted
	// with the audiences listed (extra_jwt_issuers: issuer=audience pairs);
	// each issuer's keys come from its discovery.
	ExtraIssuers map[string][]string
	// IntrospectionURL is the introspection endpoint when discovery lists
	// none (Ory Hydra serves it on its admin port), or to override it
	// (introspection_url).
	IntrospectionURL string
	// PositiveTTL caps how long a valid token is cached (it never outlives
	// its exp); NegativeTTL is how long a rejected one is remembered.
	PositiveTTL time.Duration
	NegativeTTL time.Duration
	// IntrospectionBudget bounds introspections of tokens the cache
	// doesn't know, per second (bursts of as many); past it a new opaque
	// token is refused without an IdP call. 0: unbounded
	// (introspection_budget).
	IntrospectionBudget int
}

// KeyFile is a ZITADEL application key (the downloaded JSON).
type KeyFile struct {
	Type     string `json:"type"`
	KeyID    string `json:"keyId"`
	Key      string `json:"key"`
	ClientID string `json:"clientId"`
	AppID    string `json:"appId"`
}

// ParseKeyFile reads a ZITADEL key file's JSON.
func ParseKeyFile(data []byte) (*KeyFile, error) {
	var k KeyFile
	if err := json.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("not a ZITADEL key file: %w", err)
	}
	if k.KeyID == "" || k.Key == "" || k.ClientID == "" {
		return nil, errors.New("not a ZITADEL key file: keyId, key and clientId are required")
	}
	return &k, nil
}

// Authenticate verifies an access token: a JWT locally (signature via the
// JWKS, iss, exp, nbf, aud, algorithm allow-list), anything else (or every
// token with ForceIntrospection) by RFC 7662 introspection. Outcomes are
// cached; concurrent misses for one token share one IdP call. It returns
// ErrInvalidToken for a token that is not good, ErrIdPUnavailable when no
// verdict is possible.
func (p *Provider) Authenticate(ctx context.Context, token string) (*Bearer, error) {
	// The token's bytes are hashed in place (no per-Check copy).
	sum := sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token)))
	for i := range sum {
		sum[i] ^= p.tokenSalt[i]
	}
	key := string(sum[:])
	now := p.now()
	if p.tokens != nil {
		if e, ok := p.tokens.Get(key); ok && now.Before(e.Until) {
			p.observe("token_cache", "hit", 0)
			return e.result()
		}
		p.observe("token_cache", "miss", 0)
	}
	// Answer before the caller's (Envoy's) deadline, keeping a margin.
	ctx, cancel := deadline.Within(ctx, 0)
	defer cancel()
	v, _, err := p.sharedCall(ctx, "authenticate", key, func(callCtx context.Context) (any, error) {
		// A flight that finished between our Get and this one cached its
		// verdict before releasing the key (remember waits): use it rather
		// than call the IdP again.
		if p.tokens != nil {
			if e, ok := p.tokens.Get(key); ok && p.now().Before(e.Until) {
				return e, nil
			}
		}
		e := p.verifyBearer(callCtx, token)
		if e == overBudget {
			return nil, ErrOverBudget
		}
		if e != nil {
			p.remember(key, token, e)
		}
		if e == nil {
			if callCtx.Err() != nil {
				return nil, fmt.Errorf("%w: %w", ErrIdPUnavailable, callCtx.Err())
			}
			return nil, ErrIdPUnavailable
		}
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*TokenEntry).result()
}

func (e *TokenEntry) result() (*Bearer, error) {
	if e.Invalid {
		return nil, ErrInvalidToken
	}
	return e.Bearer, nil
}

func (p *Provider) remember(key, token string, e *TokenEntry) {
	if p.tokens == nil {
		return
	}
	ttl := e.Until.Sub(p.now())
	if ttl <= 0 {
		return
	}
	// The cost is the entry's real memory: the key, our TokenEntry and
	// ristretto's own bookkeeping (store item, map and expiry bucket
	// entries), about 250 bytes measured by make bench's token flood.
	cost := int64(len(key) + entryOverhead)
	if e.Bearer != nil {
		cost += int64(bearerSize(e.Bearer))
	}
	// ristretto drops a Set when its buffer is full (under load): try again,
	// so the next Check with this token hits instead of calling the IdP.
	for range 3 {
		if p.tokens.SetWithTTL(key, e, cost, ttl) {
			break
		}
	}
	p.tokens.Wait()
}

// overBudget is verifyBearer's answer when introspection_budget is spent:
// no entry to cache, ErrOverBudget to the caller.
var overBudget = &TokenEntry{Invalid: true}

// entryOverhead is the memory of a cached entry beyond its key and Bearer.
const entryOverhead = 224

func bearerSize(b *Bearer) int {
	n := 128 + len(b.ClientID) + len(b.Identity.Subject) + len(b.Identity.User) + len(b.Identity.Email) + len(b.Identity.PreferredUsername)
	for _, g := range b.Identity.Groups {
		n += len(g) + 16
	}
	for _, s := range b.Scopes {
		n += len(s) + 16
	}
	return n
}

// verifyBearer returns the entry to cache, or nil when no verdict was
// possible (IdP unavailable).
func (p *Provider) verifyBearer(ctx context.Context, token string) *TokenEntry {
	d, err := p.current()
	if err != nil {
		return nil
	}
	var b *Bearer
	start := time.Now()
	if !plausibleToken(token) {
		p.logger.Debug("bearer token refused", "reason", "invalid_token", "error", "not an RFC 6750 token (characters or length)")
		return &TokenEntry{Invalid: true, Until: p.now().Add(p.bearerCfg.NegativeTTL)}
	}
	if why := idTokenShaped(token); why != "" {
		// An ID token says who signed in to a client, not what its bearer
		// may call: never an access token, whatever its signature and aud
		// (the client id in an ID token's aud is ours, so the audience
		// check alone would let it in). Read unverified: it only refuses.
		p.logger.Debug("bearer token refused", "reason", "id_token", "error", "an ID token is not an access token: "+why)
		return &TokenEntry{Invalid: true, Until: p.now().Add(p.bearerCfg.NegativeTTL)}
	}
	if looksLikeJWT(token) && !p.bearerCfg.ForceIntrospection {
		b, err = p.verifyJWT(ctx, d, token)
		p.observe("jwt", outcome(err), time.Since(start))
	} else {
		if !p.introspections.take(p.now()) {
			// Not a verdict on the token: nothing is cached, and the
			// caller may try again once the flood has passed.
			p.observe("introspection", "over_budget", 0)
			p.logger.Debug("bearer token not checked", "reason", "introspection_budget", "error", "more unknown tokens per second than introspection_budget allows")
			return overBudget
		}
		b, err = p.introspect(ctx, d, token)
		p.observe("introspection", outcome(err), time.Since(start))
	}
	now := p.now()
	switch {
	case errors.Is(err, ErrIdPUnavailable):
		p.logger.Warn("bearer verification failed", "reason", "idp_unavailable", "error", err.Error())
		return nil
	case err != nil:
		// Why, for the operator: never the token, only what was wrong.
		if errors.Is(err, errNoIntrospection) {
			p.logger.Warn("bearer token refused", "reason", "no_introspection_endpoint", "error", err.Error(), "fix", "set introspection_url")
		} else {
			p.logger.Debug("bearer token refused", "reason", "invalid_token", "error", err.Error())
		}
		return &TokenEntry{Invalid: true, Until: now.Add(p.bearerCfg.NegativeTTL)}
	}
	until := now.Add(p.bearerCfg.PositiveTTL)
	if !b.Expiry.IsZero() && b.Expiry.Before(until) {
		until = b.Expiry
	}
	return &TokenEntry{Bearer: b, Until: until}
}

func outcome(err error) string {
	switch {
	case err == nil:
		return "active"
	case errors.Is(err, ErrIdPUnavailable):
		return "error"
	default:
		return "inactive"
	}
}

// idTokenShaped says why a JWT is an ID token rather than an access token
// ("" when it isn't one): a typ header naming an ID token, a claim only ID
// tokens carry (at_hash, c_hash, s_hash; OpenID Connect Core §3.3.2.11,
// FAPI's s_hash), Keycloak's typ claim "ID" or AWS Cognito's token_use
// "id". Not nonce: Keycloak puts the login's nonce in access tokens too.
func idTokenShaped(token string) string {
	if strings.Count(token, ".") != 2 {
		return ""
	}
	parts := strings.SplitN(token, ".", 3)
	if raw, err := base64.RawURLEncoding.DecodeString(parts[0]); err == nil {
		var h struct {
			Typ string `json:"typ"`
		}
		if json.Unmarshal(raw, &h) == nil {
			switch t := strings.ToLower(h.Typ); t {
			case "id_token", "id_token+jwt", "id+jwt", "application/id_token+jwt", "logout+jwt", "application/logout+jwt":
				return "typ " + t
			}
		}
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c map[string]json.RawMessage
	if json.Unmarshal(raw, &c) != nil {
		return ""
	}
	for _, claim := range []string{"at_hash", "c_hash", "s_hash"} {
		if _, ok := c[claim]; ok {
			return "it carries " + claim
		}
	}
	if string(c["token_use"]) == `"id"` {
		return "token_use id"
	}
	if string(c["typ"]) == `"ID"` || string(c["typ"]) == `"Logout"` {
		return "typ claim " + string(c["typ"])
	}
	return ""
}

// looksLikeJWT: three base64url segments whose first decodes to a JSON
// header with an alg.
func looksLikeJWT(token string) bool {
	if strings.Count(token, ".") != 2 {
		return false
	}
	head, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return false
	}
	var h struct {
		Alg string `json:"alg"`
	}
	return json.Unmarshal(raw, &h) == nil && h.Alg != ""
}

func (p *Provider) verifyJWT(ctx context.Context, d *discovered, token string) (*Bearer, error) {
	verifier, accept := d.accessVerifier, p.acceptedAudience
	if iss := unverifiedIssuer(token); iss != p.cfg.Issuer && p.bearerCfg.ExtraIssuers[iss] != nil {
		v, err := p.extraVerifier(ctx, iss)
		if err != nil {
			return nil, fmt.Errorf("verify jwt of extra issuer %s: %w: %w", iss, ErrIdPUnavailable, err)
		}
		audiences := p.bearerCfg.ExtraIssuers[iss]
		verifier, accept = v, func(aud string) bool { return slices.Contains(audiences, aud) }
	}
	claims, err := op.VerifyAccessToken[*oidc.AccessTokenClaims](ctx, token, verifier)
	if err != nil {
		if errors.Is(err, ErrIdPUnavailable) {
			return nil, err
		}
		return nil, fmt.Errorf("verify jwt: %w: %w", ErrInvalidToken, err)
	}
	now := p.now()
	if claims.Subject == "" {
		return nil, fmt.Errorf("verify jwt: %w: no sub", ErrInvalidToken)
	}
	if nbf := claims.NotBefore.AsTime(); !nbf.IsZero() && nbf.After(now.Add(30*time.Second)) {
		return nil, fmt.Errorf("verify jwt: %w: not valid before %s", ErrInvalidToken, nbf)
	}
	if !slices.ContainsFunc(claims.Audience, accept) {
		return nil, fmt.Errorf("verify jwt: %w: audience %v has neither the client id, the project id nor an extra_jwt_audiences entry", ErrInvalidToken, claims.Audience)
	}
	m, err := claimMap(claims)
	if err != nil {
		return nil, fmt.Errorf("verify jwt: %w: %w", ErrInvalidToken, err)
	}
	return &Bearer{
		Identity: p.identityFromClaims(m),
		Scopes:   scopesOf(claims.Scopes, m),
		ClientID: claims.ClientID,
		Expiry:   claims.GetExpiration(),
		Via:      "jwt",
	}, nil
}

func (p *Provider) acceptedAudience(aud string) bool {
	return aud == p.cfg.ClientID || (aud != "" && aud == p.bearerCfg.ProjectID) || slices.Contains(p.bearerCfg.ExtraAudiences, aud)
}

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
	id := p.identityFromClaims(m)
	if id.PreferredUsername == "" {
		id.PreferredUsername = resp.Username
	}
	return &Bearer{Identity: id, Scopes: scopesOf(resp.Scope, m), ClientID: resp.ClientID, Expiry: exp, Via: "introspection"}, nil
}

// errNoIntrospection: an opaque token and nowhere to introspect it.
var errNoIntrospection = errors.New("an opaque token, and the IdP has no introspection_endpoint (set introspection_url)")

// scopesOf is a token's granted scopes: scope (RFC 9068/7662, a
// space-separated string), else scp, a list or a string, as Ory Hydra,
// Okta and Azure AD send them.
func scopesOf(scope []string, claims map[string]any) []string {
	if len(scope) > 0 {
		return scope
	}
	if v, ok := claims["scp"].(string); ok {
		return strings.Fields(v) // space-separated, as scope is
	}
	return stringList(claims["scp"])
}

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

// unverifiedIssuer is a JWT's iss, read without verifying it: only to
// choose the verifier, which then checks it.
func unverifiedIssuer(token string) string {
	parts := strings.SplitN(token, ".", 3)
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		Issuer string `json:"iss"`
	}
	_ = json.Unmarshal(raw, &c)
	return c.Issuer
}

// extraVerifier verifies access tokens of an extra_jwt_issuers issuer:
// its discovery and JWKS are fetched once (shared through Issuers) and
// the verifier kept.
func (p *Provider) extraVerifier(ctx context.Context, iss string) (*op.AccessTokenVerifier, error) {
	if v, ok := p.extraVerifiers.Load(iss); ok {
		return v.(*op.AccessTokenVerifier), nil
	}
	doc, keys, err := p.issuers.discover(ctx, iss, func(ctx context.Context) (*discoveryDocument, error) {
		return fetchDiscoveryOf(ctx, p.client, iss)
	})
	if err != nil {
		return nil, err
	}
	v := op.NewAccessTokenVerifier(iss, keys, op.WithSupportedAccessTokenSigningAlgorithms(signingAlgs(doc.IDTokenSigningAlgValuesSupported)...))
	p.extraVerifiers.Store(iss, v)
	return v, nil
}
