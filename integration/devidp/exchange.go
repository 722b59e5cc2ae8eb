package devidp

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Token exchange (RFC 8693), as ZITADEL does it for an app with the Token
// Exchange grant type: a user's access token (opaque or JWT, still valid)
// is traded for an access token for another audience, with the same
// subject. The exchanged token is a JWT (what ZITADEL issues for
// requested_token_type urn:ietf:params:oauth:token-type:jwt) so that tests
// can read its aud and sub; only access tokens are issued, and there is
// no impersonation (actor_token).
//
// The example storage implements op.TokenExchangeStorage already, but
// lets only its admins exchange, and only through client_secret_basic;
// the store below replaces its checks and the middleware accepts every
// client authentication method the token endpoint does.

// exchanges are the dev IdP's token exchanges: the audiences it refuses
// and how many exchanges each audience was asked for.
type exchanges struct {
	mu      sync.Mutex
	refused map[string]bool // audience ("*": every one) → refused
	calls   sync.Map        // audience → *atomic.Int64
}

// RefuseTokenExchange makes the IdP refuse to exchange tokens for
// audience ("*": for any), with RFC 8693's invalid_target (400), as
// ZITADEL does for an audience the user's token doesn't carry.
func (s *Server) RefuseTokenExchange(audience string) {
	s.store.exchange.mu.Lock()
	defer s.store.exchange.mu.Unlock()
	if s.store.exchange.refused == nil {
		s.store.exchange.refused = map[string]bool{}
	}
	s.store.exchange.refused[audience] = true
}

// TokenExchanges is how many token exchange requests for audience reached
// the token endpoint, granted or not.
func (s *Server) TokenExchanges(audience string) int64 {
	v, ok := s.store.exchange.calls.Load(audience)
	if !ok {
		return 0
	}
	return v.(*atomic.Int64).Load()
}

func (e *exchanges) isRefused(audience string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.refused["*"] || e.refused[audience]
}

type exchangeKey struct{}

// isExchange says the request being served is a token exchange.
func isExchange(ctx context.Context) bool {
	on, _ := ctx.Value(exchangeKey{}).(bool)
	return on
}

// exchangeRequest prepares a token exchange request (already past
// wrongAuthMethod) for the OP: it is counted and marked in its context
// (the client's tokens become JWTs), and a client that authenticated in
// the form (client_secret_post, none, private_key_jwt, verified by
// wrongAuthMethod) is handed to the OP as client_secret_basic, the only
// way its token exchange handler reads a client. Other requests pass
// unchanged.
func (s *Server) exchangeRequest(r *http.Request) *http.Request {
	if r.URL.Path != "/oauth/token" || r.PostFormValue("grant_type") != string(oidc.GrantTypeTokenExchange) {
		return r
	}
	for _, aud := range r.PostForm["audience"] {
		v, _ := s.store.exchange.calls.LoadOrStore(aud, new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	r = r.WithContext(context.WithValue(r.Context(), exchangeKey{}, true))
	if _, _, basic := r.BasicAuth(); basic {
		return r
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if a := r.PostForm.Get("client_assertion"); a != "" {
		id, _ = s.store.verifyAssertion(a) // wrongAuthMethod verified it
	}
	r.Header = r.Header.Clone()
	r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	return r
}

// ValidateTokenExchangeRequest replaces the example's check (admins
// only): access tokens only, an audience the IdP doesn't refuse, no
// actor, and a subject token the IdP issued and still holds unexpired
// (the OP itself only decrypts or verifies it).
func (s *store) ValidateTokenExchangeRequest(ctx context.Context, req op.TokenExchangeRequest) error {
	if req.GetRequestedTokenType() == "" {
		req.SetRequestedTokenType(oidc.AccessTokenType)
	}
	if req.GetRequestedTokenType() != oidc.AccessTokenType {
		return oidc.ErrInvalidRequest().WithDescription("only access tokens are issued by token exchange")
	}
	if req.GetExchangeActor() != "" {
		return oidc.ErrInvalidRequest().WithDescription("impersonation is not supported")
	}
	if len(req.GetAudience()) == 0 {
		return oidc.ErrInvalidTarget().WithDescription("an audience is required")
	}
	for _, aud := range req.GetAudience() {
		if s.exchange.isRefused(aud) {
			return oidc.ErrInvalidTarget().WithDescription("no token is issued for this audience")
		}
	}
	var info oidc.UserInfo
	if err := s.Storage.SetUserinfoFromToken(ctx, &info, req.GetExchangeSubjectTokenIDOrToken(), req.GetExchangeSubject(), ""); err != nil {
		return oidc.ErrInvalidRequest().WithDescription("subject_token is invalid or expired")
	}
	return nil
}

// GetPrivateClaimsFromTokenExchangeRequest gives the exchanged JWT the
// user's role claims, as the user's own tokens have them.
func (s *store) GetPrivateClaimsFromTokenExchangeRequest(ctx context.Context, req op.TokenExchangeRequest) (map[string]any, error) {
	claims, err := s.Storage.GetPrivateClaimsFromTokenExchangeRequest(ctx, req)
	if err != nil {
		return nil, err
	}
	if roles := s.roleClaim(req.GetSubject()); roles != nil {
		if claims == nil {
			claims = map[string]any{}
		}
		claims["urn:zitadel:iam:org:project:roles"] = roles
	}
	return claims, nil
}
