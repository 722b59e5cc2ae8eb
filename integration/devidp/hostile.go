package devidp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// Tamper rewrites a response of the IdP: a broken or hostile IdP for tests.
// It gets the request and the real status and body, and returns what the
// client receives.
type Tamper func(r *http.Request, status int, body []byte) (int, []byte)

// SetTamper makes the IdP answer through t (nil: honest again).
func (s *Server) SetTamper(t Tamper) {
	if t == nil {
		s.tamper.Store(nil)
		return
	}
	s.tamper.Store(&t)
}

// Claims decodes a JWT's payload without verifying it.
func Claims(jwt string) (map[string]any, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	return claims, json.Unmarshal(payload, &claims)
}

// SigningKeyID is the kid the IdP signs with.
func (s *Server) SigningKeyID(ctx context.Context) (string, error) {
	key, err := s.store.SigningKey(ctx)
	if err != nil {
		return "", err
	}
	return key.ID(), nil
}

// SignWith signs claims with any key (an attacker's, or the client secret
// for HS256) under the given kid.
func SignWith(alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) (string, error) {
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}
