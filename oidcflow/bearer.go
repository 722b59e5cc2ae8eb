package oidcflow

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/internal/deadline"
)

// Bearer is an API caller authenticated by an access token.
type Bearer struct {
	Identity Identity
	Scopes   []string
	// Audiences are the token's aud: a JWT's, or the introspection
	// answer's (ZITADEL project ids, client ids, RFC 8707 resource URLs),
	// for routes that want one (the route key audience).
	Audiences []string
	ClientID  string
	Expiry    time.Time // zero when the token states none
	Via       string    // "jwt" or "introspection"

	// memo is where the caller keeps what it derives from a cached
	// Bearer (authz: the rendered identity headers), once per token.
	memo atomic.Value
}

// Memo returns what SetMemo stored, or nil.
func (b *Bearer) Memo() any { return b.memo.Load() }

// SetMemo stores v; every call must store the same type.
func (b *Bearer) SetMemo(v any) { b.memo.Store(v) }

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
			p.remember(key, e)
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

// overBudget is verifyBearer's answer when introspection_budget is spent:
// no entry to cache, ErrOverBudget to the caller.
var overBudget = &TokenEntry{Invalid: true}

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

// outcome is an access-token verification's outcome as WithObserver
// reports it.
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

// BearerFromClaims is what a token with these claims (a JWT's payload,
// or an introspection answer) says of its caller, as Authenticate reads a
// verified one: identity, scopes and audiences. check-policy reads an
// unverified token with it.
func (p *Provider) BearerFromClaims(claims map[string]any) *Bearer {
	scope := stringList(claims["scope"])
	if s, ok := claims["scope"].(string); ok {
		scope = strings.Fields(s)
	}
	aud := stringList(claims["aud"])
	if s, ok := claims["aud"].(string); ok {
		aud = []string{s}
	}
	return &Bearer{Identity: p.IdentityFromClaims(claims), Scopes: scopesOf(scope, claims), Audiences: aud, Via: "jwt"}
}

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
