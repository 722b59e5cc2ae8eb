package oidcflow

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// backchannelEvent is the events member a logout token must carry
// (OpenID Connect Back-Channel Logout 1.0 §2.4).
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// LogoutClaims is what a verified logout token says.
type LogoutClaims struct {
	SID     string // the IdP session to end ("" when only Subject is given)
	Subject string
	JTI     string
	Expiry  time.Time
}

// VerifyLogoutToken checks a back-channel logout token as §2.6 of the spec
// says: signature by the IdP's JWKS (asymmetric algorithms only), iss, aud
// contains our client id, iat, exp, the back-channel event, sid or sub, no
// nonce, a jti. Failures wrap ErrInvalidToken; an IdP we can't reach wraps
// ErrIdPUnavailable.
func (p *Provider) VerifyLogoutToken(ctx context.Context, raw string) (*LogoutClaims, error) {
	d, err := p.current()
	if err != nil {
		return nil, err
	}
	algs := make([]jose.SignatureAlgorithm, len(allowedAlgs))
	for i, a := range allowedAlgs {
		algs[i] = jose.SignatureAlgorithm(a)
	}
	jws, err := jose.ParseSignedCompact(raw, algs)
	if err != nil {
		return nil, fmt.Errorf("%w: logout token: %v", ErrInvalidToken, err)
	}
	if typ, ok := jws.Signatures[0].Header.ExtraHeaders["typ"].(string); ok && typ != "JWT" && typ != "logout+jwt" {
		return nil, fmt.Errorf("%w: logout token: typ %q", ErrInvalidToken, typ)
	}
	payload, err := d.keys.VerifySignature(ctx, jws)
	if err != nil {
		return nil, fmt.Errorf("%w: logout token signature: %v", ErrInvalidToken, err)
	}
	var c struct {
		Issuer   string           `json:"iss"`
		Subject  string           `json:"sub"`
		Audience json.RawMessage  `json:"aud"`
		IssuedAt *int64           `json:"iat"`
		Expiry   *int64           `json:"exp"`
		JTI      string           `json:"jti"`
		SID      string           `json:"sid"`
		Events   map[string]any   `json:"events"`
		Nonce    *json.RawMessage `json:"nonce"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: logout token claims: %v", ErrInvalidToken, err)
	}
	now := p.now()
	const skew = 2 * time.Minute
	var aud []string
	if json.Unmarshal(c.Audience, &aud) != nil {
		var one string
		if json.Unmarshal(c.Audience, &one) == nil {
			aud = []string{one}
		}
	}
	_, isObject := c.Events[backchannelEvent].(map[string]any)
	switch {
	case c.Issuer != p.cfg.Issuer:
		return nil, fmt.Errorf("%w: logout token iss %q", ErrInvalidToken, c.Issuer)
	case !slices.Contains(aud, p.cfg.ClientID):
		return nil, fmt.Errorf("%w: logout token aud lacks our client id", ErrInvalidToken)
	case c.IssuedAt == nil || time.Unix(*c.IssuedAt, 0).After(now.Add(skew)):
		return nil, fmt.Errorf("%w: logout token iat missing or in the future", ErrInvalidToken)
	case c.Expiry != nil && !time.Unix(*c.Expiry, 0).Add(skew).After(now):
		return nil, fmt.Errorf("%w: logout token expired", ErrInvalidToken)
	// Back-Channel Logout §2.4 makes exp required, but Ory Hydra (OpenID
	// Certified) sends none: without exp the token counts while its iat is
	// within logoutTokenMaxAge, and the jti replay guard (which remembers
	// it as long) makes sure it is used once.
	case c.Expiry == nil && time.Unix(*c.IssuedAt, 0).Add(logoutTokenMaxAge).Before(now):
		return nil, fmt.Errorf("%w: logout token without exp issued over %s ago", ErrInvalidToken, logoutTokenMaxAge)
	case !isObject:
		return nil, fmt.Errorf("%w: logout token lacks the back-channel logout event", ErrInvalidToken)
	case c.SID == "" && c.Subject == "":
		return nil, fmt.Errorf("%w: logout token has neither sid nor sub", ErrInvalidToken)
	case c.Nonce != nil:
		return nil, fmt.Errorf("%w: logout token carries a nonce", ErrInvalidToken)
	case c.JTI == "":
		return nil, fmt.Errorf("%w: logout token has no jti", ErrInvalidToken)
	}
	exp := time.Unix(*c.IssuedAt, 0).Add(logoutTokenMaxAge)
	if c.Expiry != nil {
		exp = time.Unix(*c.Expiry, 0)
	}
	return &LogoutClaims{SID: c.SID, Subject: c.Subject, JTI: c.JTI, Expiry: exp}, nil
}

// logoutTokenMaxAge is how long after its iat a logout token without exp
// is accepted.
const logoutTokenMaxAge = 5 * time.Minute
