package authz

import (
	"net/http"
	"slices"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/idjwt"
)

// The signed identity assertion: every allowed answer for a user (a
// session or a bearer token) carries a JWT that we sign, in
// IdentityJWT.Header, so an upstream can verify who the user is (against
// PREFIX/jwks) instead of trusting headers only as far as it trusts the
// network. It is minted once per cached session or token and reused until
// half its life has passed, so a cached Check signs nothing.

// DefaultIdentityJWTHeader is identity_jwt_header's default.
const DefaultIdentityJWTHeader = "x-zitadel-ext-authz-jwt"

// IdentityJWT configures the assertion.
type IdentityJWT struct {
	// Header carries it; "" turns it off.
	Header string
	// Issuer is its iss; "": redirect_url's origin when it is absolute,
	// else the request's own (scheme://host).
	Issuer string
	// Audience is its aud; empty: the app's name and the request's host.
	Audience []string
}

// Signer mints assertions and publishes their keys; *idjwt.Ring is one.
type Signer interface {
	Sign(c *idjwt.Claims) (string, error)
	JWKS() []byte
}

// WithSigner signs identity assertions with sg (without one, there are
// none, whatever IdentityJWT.Header says).
func WithSigner(sg Signer) Option { return func(s *Server) { s.signer = sg } }

// assertion is the minted assertion a block carries.
type assertion struct {
	host      string    // the request host it was minted for (iss, aud: settings.assertionPerHost)
	refreshAt time.Time // half its life: a Check after this mints anew
	base      *identityBlock
}

// asserted is b with an assertion for r: b itself while the one it
// carries was minted for r's host and is within half its life, else b
// with a new one, which m (may be nil) keeps. of is the user, for minting.
func (s *Server) asserted(r *Request, m memo, b *identityBlock, of func() identity) *identityBlock {
	set := b.set
	if s.signer == nil || set.IdentityJWT.Header == "" {
		return b
	}
	now := s.now()
	if a := b.assertion; a != nil {
		if (!set.assertionPerHost || a.host == r.Host) && now.Before(a.refreshAt) {
			return b
		}
		b = a.base
	}
	token, refreshAt, err := s.mint(r, of(), now)
	if err != nil {
		s.logger.Error("identity assertion not signed; answering without it", "request_id", r.ID, "error", err.Error())
		return b
	}
	out := &identityBlock{set: set, fields: b.fields, ruleUser: b.ruleUser, assertion: &assertion{host: r.Host, refreshAt: refreshAt, base: b},
		names: append(slices.Clip(b.names), set.IdentityJWT.Header)}
	out.opts = append(slices.Clip(b.opts), options([]Header{{set.IdentityJWT.Header, token}}, appendFalse, 0)...)
	if m != nil {
		m.SetMemo(out)
	}
	return out
}

// mint signs the assertion of id for r: iat now, exp at most
// idjwt.Lifetime later and never past the session's or token's own end.
func (s *Server) mint(r *Request, id identity, now time.Time) (token string, refreshAt time.Time, err error) {
	set := s.conf()
	exp := now.Add(idjwt.Lifetime)
	if !id.expires.IsZero() && id.expires.Before(exp) {
		exp = id.expires
	}
	c := &idjwt.Claims{
		Issuer: s.assertionIssuer(set, r), Audience: set.IdentityJWT.Audience,
		Subject: id.sub, Email: id.email, PreferredUsername: id.username, Groups: id.groups,
		OrgID: id.orgID, AMR: id.amr, SID: id.sid, IssuedAt: now.Unix(), Expiry: exp.Unix(),
	}
	if c.Groups == nil {
		c.Groups = []string{}
	}
	if id.email != "" {
		verified := id.emailVerified
		c.EmailVerified = &verified
	}
	if !id.authTime.IsZero() {
		c.AuthTime = id.authTime.Unix()
	}
	if len(c.Audience) == 0 {
		c.Audience = []string{s.appName(), r.Host}
	}
	token, err = s.signer.Sign(c)
	return token, now.Add(exp.Sub(now) / 2), err
}

// assertionIssuer is the assertion's iss for r.
func (s *Server) assertionIssuer(set *settings, r *Request) string {
	switch {
	case set.IdentityJWT.Issuer != "":
		return set.IdentityJWT.Issuer
	case set.redirectOrig != "":
		return set.redirectOrig
	}
	return r.Scheme + "://" + r.Host
}

// appName is the app's name as assertions name it ("default" for the
// top-level keys' app).
func (s *Server) appName() string {
	if s.app == "" {
		return "default"
	}
	return s.app
}

// jwks is PREFIX/jwks: the keys that verify our assertions, as JSON,
// cacheable for a minute (a rotation publishes the new key when it starts
// signing, so verifiers must not keep an old set for long).
func (s *Server) jwks() *Decision {
	body := []byte(`{"keys":[]}`)
	if s.signer != nil {
		body = s.signer.JWKS()
	}
	return &Decision{Status: http.StatusOK, Reason: ReasonJWKS, Body: string(body), Headers: []Header{
		{"content-type", "application/json"},
		{"cache-control", JWKSCacheControl},
	}}
}

// JWKSCacheControl is the Cache-Control of the JWKS, here and on the
// operations listener.
const JWKSCacheControl = "public, max-age=60"

// unixTime is a Unix time in seconds; 0 is the zero time (unknown).
func unixTime(sec int64) time.Time {
	if sec <= 0 {
		return time.Time{}
	}
	return time.Unix(sec, 0)
}
