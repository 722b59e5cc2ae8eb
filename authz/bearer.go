package authz

import (
	"context"
	"slices"
	"strings"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
)

// BearerAuth verifies API access tokens; *oidcflow.Provider implements it.
type BearerAuth interface {
	Authenticate(ctx context.Context, token string) (*oidcflow.Bearer, error)
}

// WithBearerAuth accepts Authorization: Bearer tokens (skip_jwt_bearer_tokens).
func WithBearerAuth(b BearerAuth) Option { return func(s *Server) { s.bearerAuth = b } }

// bearerToken returns the token of an "Authorization: Bearer …" header.
func bearerToken(r *Request) (string, bool) {
	h := r.Headers["authorization"]
	if len(h) < 8 || !strings.EqualFold(h[:7], "bearer ") {
		return "", false
	}
	tok := strings.TrimSpace(h[7:])
	return tok, tok != ""
}

// bearer authenticates an API caller by its access token and authorizes it
// exactly like a session. The caller's own authorization header goes
// upstream unchanged.
func (s *Server) bearer(ctx context.Context, r *Request, token string, rp routePolicy) *Decision {
	// No timeout context here: a cache hit must not pay for a timer;
	// Authenticate bounds the IdP call and keeps a margin before ctx's deadline.
	b, err := s.bearerAuth.Authenticate(ctx, token)
	if err != nil {
		return s.bearerFailure(err)
	}
	u := fromClaims(b.Identity)
	if d := s.judgeBearer(r, b, u, &rp, nil); d != nil {
		return d
	}
	return s.allowBearerTo(ctx, r, u, b, token, &rp)
}

// judgeBearer is judge for the caller of token b (u): first the route's
// audience, which a token for another isn't meant for (a ZITADEL project,
// an RFC 8707 resource).
func (s *Server) judgeBearer(r *Request, b *oidcflow.Bearer, u user, rp *routePolicy, trace *[]RuleRun) *Decision {
	if rp.audience != "" && !slices.Contains(b.Audiences, rp.audience) {
		return withSubject(wrongAudience(rp.audience), u.sub)
	}
	return s.judge(r, b, u, viaBearer, b.Scopes, rp, trace)
}

// allowBearer lets the caller of token (b, u) through with its identity.
func (s *Server) allowBearer(r *Request, u user, b *oidcflow.Bearer, token string) *Decision {
	return s.allowBearerWith(r, u, b, token, nil, "")
}

// allowBearerWith is allowBearer with the route's upstream token x (nil:
// none; upstreamtoken.go): in header, beside the caller's token, or
// instead of it (header "").
func (s *Server) allowBearerWith(r *Request, u user, b *oidcflow.Bearer, token string, x *UpstreamToken, header string) *Decision {
	// The token came in a request header, so it is header-safe already;
	// identity values were cleaned when the IdP's claims were read.
	// The block is kept with the cached token outcome, which never holds
	// the token itself (README): the token headers are added per request,
	// from the request's own authorization header.
	var tokens [2]Header // one per header family at most
	extra := tokens[:0]
	for _, hs := range s.conf().headerSets {
		if hs.withToken && (x == nil || header != "") {
			extra = append(extra, Header{hs.names.token, token})
		}
	}
	reason := ReasonBearerJWT
	if b.Via == "introspection" {
		reason = ReasonBearerIntrospection
	}
	of := func() identity { return identity{user: u, expires: b.Expiry, via: viaBearer, scopes: b.Scopes} }
	block := s.asserted(r, b, s.identityBlock(b, of), of)
	if x != nil {
		block = x.blockFor(block, header, true)
	}
	d := s.allowWith(r, reason, block, extra...)
	if x != nil && header != "" {
		stripConfigured(r, d, header, block.names)
	}
	return withSubject(d, u.sub)
}
