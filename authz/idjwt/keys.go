package idjwt

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"

	jose "github.com/go-jose/go-jose/v4"
)

// Key is one ES256 signing key and its id (the RFC 7638 thumbprint of its
// public key, so the same key has the same kid on every replica).
type Key struct {
	ID     string
	priv   *ecdsa.PrivateKey
	header string // the JWS header, base64url: {"alg":"ES256","kid":…,"typ":"JWT"}
}

func newKey(priv *ecdsa.PrivateKey) (Key, error) {
	if priv.Curve != elliptic.P256() {
		return Key{}, errors.New("not a P-256 key (ES256 needs one)")
	}
	tp, err := (&jose.JSONWebKey{Key: &priv.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		return Key{}, err
	}
	id := base64.RawURLEncoding.EncodeToString(tp)
	h, _ := json.Marshal(map[string]string{"alg": "ES256", "kid": id, "typ": "JWT"})
	return Key{ID: id, priv: priv, header: base64.RawURLEncoding.EncodeToString(h)}, nil
}

// public is the key as a JWK for the JWKS.
func (k Key) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.ID, Algorithm: string(jose.ES256), Use: "sig"}
}

// Keys is an immutable key set: the first signs, every one is published.
type Keys []Key

// hkdfSalt separates these keys from every other key derived from the
// cookie secrets (the session codec's).
var hkdfSalt = []byte("zitadel-ext-authz identity assertion")

// FromSecrets derives one P-256 key per cookie secret (HKDF-SHA256), in
// the ring's order: the first secret's key signs.
func FromSecrets(secrets [][]byte) (Keys, error) {
	if len(secrets) == 0 {
		return nil, errors.New("no cookie secret to derive identity_jwt keys from")
	}
	out := make(Keys, 0, len(secrets))
	for _, s := range secrets {
		k, err := derive(s)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// derive turns a secret into a P-256 scalar: HKDF output below the curve's
// order and not zero (a later counter when it isn't, about once in 2^32).
func derive(secret []byte) (Key, error) {
	for i := range 16 {
		d, err := hkdf.Key(sha256.New, secret, hkdfSalt, "ES256 P-256 key "+strconv.Itoa(i), 32)
		if err != nil {
			return Key{}, err
		}
		if priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d); err == nil {
			return newKey(priv)
		}
	}
	return Key{}, errors.New("no P-256 key derivable from the secret")
}

// FromPEM reads every EC P-256 private key in data ("EC PRIVATE KEY" or
// "PRIVATE KEY" blocks, as openssl writes them); the first signs.
func FromPEM(data []byte) (Keys, error) {
	var out Keys
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		priv, err := parsePrivate(block)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d (%s): %w", n, block.Type, err)
		}
		k, err := newKey(priv)
		if err != nil {
			return nil, fmt.Errorf("PEM block %d: %w", n, err)
		}
		out = append(out, k)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM private key in it (make one: openssl ecparam -name prime256v1 -genkey -noout)")
	}
	return out, nil
}

func parsePrivate(b *pem.Block) (*ecdsa.PrivateKey, error) {
	switch b.Type {
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(b.Bytes)
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, err
		}
		ec, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, errors.New("not an EC key (ES256 needs P-256)")
		}
		return ec, nil
	}
	return nil, errors.New("want an EC PRIVATE KEY or PRIVATE KEY block")
}
