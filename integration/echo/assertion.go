package echo

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Assertion is what the echo made of the identity assertion it received:
// verified against the JWKS (signature, exp, iss and aud when the
// Verifier names them), as an upstream does with a standard JOSE library.
type Assertion struct {
	Valid  bool           `json:"valid"`
	Error  string         `json:"error,omitempty"`
	Claims map[string]any `json:"claims,omitempty"`
}

// Verifier verifies the assertion in Header against the JWKS at a URL
// (zitadel-ext-authz's PREFIX/jwks, or /.well-known/jwks.json on its
// operations listener), fetched per request: the echo is a test and demo
// upstream, and this shows rotations at once.
type Verifier struct {
	Header   string
	Issuer   string // "": any
	Audience string // "": any
	jwks     atomic.Pointer[string]
	client   http.Client
}

// NewVerifier verifies header's assertions against jwksURL (may be set
// later, SetJWKS).
func NewVerifier(header, jwksURL string) *Verifier {
	v := &Verifier{Header: header, client: http.Client{Timeout: 5 * time.Second}}
	v.SetJWKS(jwksURL)
	return v
}

// SetJWKS sets the JWKS URL.
func (v *Verifier) SetJWKS(url string) { v.jwks.Store(&url) }

// check verifies r's assertion; nil when r has none.
func (v *Verifier) check(r *http.Request) *Assertion {
	token := r.Header.Get(v.Header)
	if token == "" {
		return nil
	}
	claims, err := v.Verify(token)
	if err != nil {
		return &Assertion{Error: err.Error()}
	}
	return &Assertion{Valid: true, Claims: claims}
}

// Verify checks token's signature with the JWKS, then exp, iss and aud.
func (v *Verifier) Verify(token string) (map[string]any, error) {
	resp, err := v.client.Get(*v.jwks.Load())
	if err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	parsed, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, err
	}
	keys := set.Key(parsed.Headers[0].KeyID)
	if len(keys) == 0 {
		return nil, errors.New("its kid is not in the JWKS")
	}
	var std jwt.Claims
	var claims map[string]any
	if err := parsed.Claims(keys[0].Key, &std, &claims); err != nil {
		return nil, err
	}
	want := jwt.Expected{Issuer: v.Issuer, Time: time.Now()}
	if v.Audience != "" {
		want.AnyAudience = jwt.Audience{v.Audience}
	}
	if err := std.Validate(want); err != nil {
		return nil, err
	}
	return claims, nil
}
