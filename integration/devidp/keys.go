package devidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"sync"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// rotation holds the keys of RotateKey: the one signing now and every key
// published in the JWKS besides the example storage's own.
type rotation struct {
	mu        sync.RWMutex
	current   *rsaKey
	published []*rsaKey
}

type rsaKey struct {
	id  string
	key *rsa.PrivateKey
}

func (k *rsaKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *rsaKey) Algorithm() jose.SignatureAlgorithm          { return jose.RS256 }
func (k *rsaKey) Key() any                                    { return k.key }
func (k *rsaKey) ID() string                                  { return k.id }
func (k *rsaKey) Use() string                                 { return "sig" }

// publicKey is an rsaKey as the JWKS lists it.
type publicKey struct{ *rsaKey }

func (k publicKey) Key() any { return &k.key.PublicKey }

// RotateKey makes the IdP sign every token from now on with a new RSA key
// under a new kid, as ZITADEL does when it rotates; the JWKS lists the old
// keys and the new one. It returns the new kid.
func (s *Server) RotateKey() (string, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", err
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	k := &rsaKey{id: "rotated-" + hex.EncodeToString(id), key: key}
	r := &s.store.rotation
	r.mu.Lock()
	defer r.mu.Unlock()
	r.current = k
	r.published = append(r.published, k)
	return k.id, nil
}

// SigningKey is the rotated key once RotateKey was called.
func (s *store) SigningKey(ctx context.Context) (op.SigningKey, error) {
	s.rotation.mu.RLock()
	defer s.rotation.mu.RUnlock()
	if s.rotation.current != nil {
		return s.rotation.current, nil
	}
	return s.Storage.SigningKey(ctx)
}

// KeySet lists the storage's key and every rotated one.
func (s *store) KeySet(ctx context.Context) ([]op.Key, error) {
	keys, err := s.Storage.KeySet(ctx)
	if err != nil {
		return nil, err
	}
	s.rotation.mu.RLock()
	defer s.rotation.mu.RUnlock()
	for _, k := range s.rotation.published {
		keys = append(keys, publicKey{k})
	}
	return keys, nil
}
