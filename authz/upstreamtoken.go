package authz

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/oidcflow"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/proto/sessionpb"
)

// Token exchange for upstreams (RFC 8693). A route with
// upstream_token_audience gets, instead of the user's access token, one
// the IdP issued for that audience in exchange for it: in the token
// headers the configuration sends (replace), or in the route's
// upstream_token_header beside the user's own (beside). Exchanged tokens
// are kept per user token and audience until shortly before they expire,
// and concurrent Checks that need the same one make one exchange. When
// the IdP won't or can't exchange, the request is refused: the user's own
// token is never sent in its place.

// UpstreamToken is an exchanged token kept for reuse. It holds the
// exchanged token, never the user's; cached ones are shared read-only.
type UpstreamToken struct {
	token  string    // the exchanged access token
	bearer string    // "Bearer " + token
	until  time.Time // reused until then (zero: not at all)
	check  uint64    // a second hash of the user's token and the audience
	// rendered is the last identity block rendered with it, so that a
	// cached Check renders nothing.
	rendered atomic.Pointer[upstreamBlock]
}

// upstreamBlock is an identity block (base) with the exchanged token in
// it, for a header ("": replacing the user's token) and a caller kind.
type upstreamBlock struct {
	base   *identityBlock
	header string
	bearer bool
	block  *identityBlock
}

// UpstreamTokenCache keeps exchanged tokens under a hash of the user's
// token and the audience, never the token itself;
// *ristretto.Cache[uint64, *UpstreamToken] plugs in directly. Wait is
// called after each Set: ristretto applies sets asynchronously, and the
// Checks that waited for the exchange must find it.
type UpstreamTokenCache interface {
	Get(key uint64) (*UpstreamToken, bool)
	SetWithTTL(key uint64, value *UpstreamToken, cost int64, ttl time.Duration) bool
	Wait()
}

// WithUpstreamTokenCache keeps exchanged tokens in c (without one, every
// Check on such a route exchanges; concurrent ones still share one call).
// One cache may serve many Servers: each keys its entries with its own
// random seeds.
func WithUpstreamTokenCache(c UpstreamTokenCache) Option {
	return func(s *Server) { s.upstream.cache = c }
}

// upstreamTokens is a Server's token exchange state.
type upstreamTokens struct {
	cache   UpstreamTokenCache // nil: none
	flights singleflight.Group
	once    sync.Once
	seeds   [2]maphash.Seed // random per Server: key and check
}

// keys are the cache key of the user's token and the audience, and a
// second, independent hash that a cached entry must match: two seeded
// 64-bit hashes (maphash, no allocation on a Check) make a collision
// between two users' tokens as unlikely as a 128-bit one, and only a
// miss when the first alone collides.
func (u *upstreamTokens) keys(subject, audience string) (key, check uint64) {
	u.once.Do(func() { u.seeds = [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()} })
	var h maphash.Hash
	sum := func(seed maphash.Seed) uint64 {
		h.SetSeed(seed)
		h.WriteString(audience)
		h.WriteByte(0)
		h.WriteString(subject)
		return h.Sum64()
	}
	return sum(u.seeds[0]), sum(u.seeds[1])
}

// cached is the kept token for key and check that is still good at now.
func (u *upstreamTokens) cached(key, check uint64, now time.Time) *UpstreamToken {
	if u.cache == nil {
		return nil
	}
	if x, ok := u.cache.Get(key); ok && x.check == check && now.Before(x.until) {
		return x
	}
	return nil
}

// upstreamEntryCost is a kept token's memory beyond its strings: the
// entry, ristretto's bookkeeping and the identity block rendered with it.
const upstreamEntryCost = 2048

// keep caches x under key for ttl.
func (u *upstreamTokens) keep(key uint64, x *UpstreamToken, ttl time.Duration) {
	if u.cache == nil || ttl <= 0 {
		return
	}
	// ristretto drops a Set when its buffer is full: try again, so the
	// next Check finds the token instead of exchanging again.
	for range 3 {
		if u.cache.SetWithTTL(key, x, int64(len(x.token)+len(x.bearer)+upstreamEntryCost), ttl) {
			break
		}
	}
	u.cache.Wait()
}

// reuseMargin is how long before its expiry an exchanged token is no
// longer handed out: a request must reach the upstream, and the upstream
// check it, while it is valid. At most a quarter of its lifetime.
func reuseMargin(lifetime time.Duration) time.Duration {
	return min(30*time.Second, lifetime/4)
}

// allowSessionTo is allowSession on route rp: with upstream_token_audience
// the upstream gets the exchanged token.
func (s *Server) allowSessionTo(ctx context.Context, r *Request, m memo, sess *sessionpb.Session, rp *routePolicy) *Decision {
	if rp.upstreamAudience == "" {
		return s.allowSession(r, m, sess)
	}
	header, d := s.upstreamHeader(r, rp, false)
	if d != nil {
		return d
	}
	x, d := s.exchanged(ctx, r, sess.GetAccessToken(), rp.upstreamAudience, false)
	if d != nil {
		return d
	}
	of := sessionIdentity(sess)
	b := s.asserted(r, m, s.identityBlock(m, of), of)
	d = s.allowWith(r, ReasonSession, x.blockFor(b, header, false))
	if header != "" {
		stripConfigured(r, d, header, d.identity.names)
	}
	return d
}

// allowBearerTo is allowBearer on route rp: with upstream_token_audience
// the upstream gets the exchanged token.
func (s *Server) allowBearerTo(ctx context.Context, r *Request, u user, b *oidcflow.Bearer, token string, rp *routePolicy) *Decision {
	if rp.upstreamAudience == "" {
		return s.allowBearer(r, u, b, token)
	}
	header, d := s.upstreamHeader(r, rp, true)
	if d != nil {
		return withSubject(d, u.sub)
	}
	x, d := s.exchanged(ctx, r, token, rp.upstreamAudience, true)
	if d != nil {
		return withSubject(d, u.sub)
	}
	return s.allowBearerWith(r, u, b, token, x, header)
}

// upstreamHeader is the route's upstream_token_header ("": none, the
// exchanged token replaces the user's; the route keys checked the name),
// or the 500 for a header the configuration sets itself, or for a session
// route where the exchanged token would go nowhere.
func (s *Server) upstreamHeader(r *Request, rp *routePolicy, bearer bool) (string, *Decision) {
	set := s.conf()
	switch {
	case rp.upstreamHeader == "" && !bearer && !sendsToken(set):
		s.logger.Error("upstream_token_audience, but no header carries a token to the upstream; denying (set pass_access_token or pass_authorization_header, or the route's upstream_token_header)",
			"request_id", r.ID, "reason", ReasonBadRouteConfig)
		return "", s.deny(ReasonBadRouteConfig)
	case rp.upstreamHeader != "" && setsConfigured(set, rp.upstreamHeader):
		s.logger.Error("the route's upstream_token_header is a header the configuration sets already (claim_headers, id_token_header, identity_jwt_header); denying",
			"request_id", r.ID, "reason", ReasonBadRouteConfig, "header", rp.upstreamHeader)
		return "", s.deny(ReasonBadRouteConfig)
	}
	return rp.upstreamHeader, nil
}

// setsConfigured says the configuration sets header for the upstream
// itself (beside the identity headers, which CheckUpstreamHeader refuses).
func setsConfigured(set *settings, header string) bool {
	return slices.ContainsFunc(set.configured, func(h configuredHeader) bool { return h.name == header })
}

// sendsToken says the configuration sends a session's token to the
// upstream: a header the exchanged token can replace.
func sendsToken(set *settings) bool {
	return set.PassAuthorizationHeader || slices.ContainsFunc(set.headerSets, func(hs headerSet) bool { return hs.withToken })
}

// exchanged is the upstream token for the user's token subject and
// audience: a kept one, or one exchanged now, once for every concurrent
// Check that needs it. d is the answer when there is none (for a
// program: a bearer caller, or an API request of a session).
func (s *Server) exchanged(ctx context.Context, r *Request, subject, audience string, bearer bool) (x *UpstreamToken, d *Decision) {
	key, check := s.upstream.keys(subject, audience)
	if x := s.upstream.cached(key, check, s.now()); x != nil {
		return x, nil
	}
	api := bearer || s.isAPI(r)
	if subject == "" {
		s.logger.Warn("no access token to exchange for the upstream; denying", "request_id", r.ID, "reason", ReasonTokenExchange, "audience", audience)
		return nil, s.tokenExchangeFailed(api, "no access token to exchange")
	}
	x, err := s.fetchUpstreamToken(ctx, key, check, subject, audience)
	if err == nil {
		return x, nil
	}
	attrs := []any{"request_id", r.ID, "audience", audience, "error", err.Error()}
	if errors.Is(err, oidcflow.ErrIdPUnavailable) {
		reason := ReasonIdPUnavailable
		if errors.Is(err, context.DeadlineExceeded) {
			reason = ReasonIdPTimeout
		}
		s.logger.Warn("token exchange for the upstream failed; denying", append(attrs, "reason", reason)...)
		return nil, s.upstreamTokenUnavailable(err, api)
	}
	cause := "its answer was not a usable access token"
	if xe, ok := errors.AsType[*oidcflow.ExchangeError](err); ok {
		cause = cmp.Or(xe.Code, "status "+strconv.Itoa(xe.Status))
		if fix := exchangeFix(xe.Code); fix != "" {
			attrs = append(attrs, "fix", fix)
		}
	}
	s.logger.Warn("the identity provider refused the token exchange for the upstream; denying", append(attrs, "reason", ReasonTokenExchange)...)
	return nil, s.tokenExchangeFailed(api, cause)
}

// fetchUpstreamToken asks the IdP for the token, once for every concurrent caller
// with the same key: the call runs detached from any one caller's
// cancellation, bounded by idp_timeout, and keeps its result before it
// ends; each caller waits until its own deadline (idpContext).
func (s *Server) fetchUpstreamToken(ctx context.Context, key, check uint64, subject, audience string) (*UpstreamToken, error) {
	waitCtx, cancel := s.idpContext(ctx)
	defer cancel()
	flight := strconv.FormatUint(key, 16) + "/" + strconv.FormatUint(check, 16)
	ch := s.upstream.flights.DoChan(flight, func() (any, error) {
		// A flight that ended between our look-up and this one kept its
		// token: use it.
		if x := s.upstream.cached(key, check, s.now()); x != nil {
			return x, nil
		}
		callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.conf().IDPTimeout)
		defer cancel()
		t, err := s.idp.ExchangeToken(callCtx, subject, audience)
		if err != nil {
			return nil, err
		}
		x := &UpstreamToken{token: t.AccessToken, bearer: "Bearer " + t.AccessToken, check: check}
		if now := s.now(); !t.Expiry.IsZero() {
			// Without an expiry there is no telling how long it lasts:
			// it serves the Checks waiting for it, and is not kept.
			x.until = t.Expiry.Add(-reuseMargin(t.Expiry.Sub(now)))
			s.upstream.keep(key, x, x.until.Sub(now))
		}
		return x, nil
	})
	select {
	case <-waitCtx.Done():
		return nil, fmt.Errorf("token exchange: %w: %w", oidcflow.ErrIdPUnavailable, waitCtx.Err())
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*UpstreamToken), nil
	}
}

// exchangeFix says what to change when the IdP refuses an exchange with
// code (RFC 8693 §2.2.2, RFC 6749 §5.2), as ZITADEL answers; "" when
// there is nothing to say.
func exchangeFix(code string) string {
	switch code {
	case "invalid_target":
		return "the IdP won't issue tokens for this audience: ZITADEL only narrows a token's audience, so the user's token must carry it already (add urn:zitadel:iam:org:project:id:<project id>:aud to scope); check upstream_token_audience"
	case "unauthorized_client", "unsupported_grant_type":
		return "enable the Token Exchange grant type on the app in ZITADEL (app → Configuration), and token exchange on the instance"
	case "invalid_request":
		return "the IdP didn't take the user's token (expired or revoked?) or the request"
	}
	return ""
}

// blockFor is b with the exchanged token: replacing the user's token
// (header "") or in header beside it; bearer: for a bearer caller, whose
// token headers b doesn't hold. The last one rendered is kept, so that a
// cached Check renders nothing.
func (x *UpstreamToken) blockFor(b *identityBlock, header string, bearer bool) *identityBlock {
	if u := x.rendered.Load(); u != nil && u.base == b && u.header == header && u.bearer == bearer {
		return u.block
	}
	set := b.set
	headers := make([]Header, 0, len(b.opts)+3)
	for _, o := range b.opts {
		h := Header{o.GetHeader().GetKey(), o.GetHeader().GetValue()}
		if header == "" {
			h.Value = x.replacing(set, h)
		}
		headers = append(headers, h)
	}
	switch {
	case header != "":
		headers = append(headers, Header{header, x.token})
	case bearer:
		// A bearer caller's token headers are added per request (its
		// token); the exchanged token takes their place, and that of the
		// caller's own authorization header.
		for _, hs := range set.headerSets {
			if hs.withToken {
				headers = append(headers, Header{hs.names.token, x.token})
			}
		}
		headers = append(headers, Header{"authorization", x.bearer})
	}
	out := renderIdentity(set, headers, b.fields)
	out.ruleUser = b.ruleUser
	x.rendered.Store(&upstreamBlock{base: b, header: header, bearer: bearer, block: out})
	return out
}

// replacing is h's value with the exchanged token in place of the
// user's: in the access token headers (pass_access_token), and in the
// authorization header of pass_authorization_header (the ID token).
func (x *UpstreamToken) replacing(set *settings, h Header) string {
	switch {
	case h.Name == forwardedHeaders.token || h.Name == authRequestHeaders.token:
		return x.token
	case h.Name == "authorization" && set.PassAuthorizationHeader && strings.HasPrefix(h.Value, "Bearer "):
		return x.bearer
	}
	return h.Value
}
