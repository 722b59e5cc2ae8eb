package idjwt

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"
)

// Lifetime is the longest an assertion lives: upstreams see a fresh one
// at least this often, and a retired key stays published this long.
const Lifetime = 5 * time.Minute

// Claims are an assertion's claims: who (OpenID Connect's standard claims
// and ZITADEL's organization), for whom (iss, aud) and until when.
type Claims struct {
	Issuer            string   `json:"iss"`
	Audience          []string `json:"aud"`
	Subject           string   `json:"sub"`
	Email             string   `json:"email,omitempty"`
	EmailVerified     *bool    `json:"email_verified,omitempty"`
	Name              string   `json:"name,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Groups            []string `json:"groups"`
	OrgID             string   `json:"urn:zitadel:iam:user:resourceowner:id,omitempty"`
	AMR               []string `json:"amr,omitempty"`
	AuthTime          int64    `json:"auth_time,omitempty"`
	SID               string   `json:"sid,omitempty"`
	IssuedAt          int64    `json:"iat"`
	Expiry            int64    `json:"exp"`
}

// Sign mints a compact JWS of c with the first key.
func (ks Keys) Sign(c *Claims) (string, error) {
	if len(ks) == 0 {
		return "", errors.New("no identity_jwt key")
	}
	k := ks[0]
	payload, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(k.header)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(64))
	buf = append(buf, k.header...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)
	digest := sha256.Sum256(buf)
	r, s, err := ecdsa.Sign(rand.Reader, k.priv, digest[:])
	if err != nil {
		return "", err
	}
	// RFC 7518 §3.4: R and S as 32-byte big-endian integers, concatenated.
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}
