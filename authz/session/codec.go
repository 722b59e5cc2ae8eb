package session

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
)

// ErrNoSession means a cookie is absent or cannot be trusted: tampered,
// truncated, expired, written with another key or for another purpose.
var ErrNoSession = errors.New("no valid session")

// Purpose separates what a sealed value is for, so a state cookie can never be
// replayed as a session cookie (it is bound into the AEAD additional data).
type Purpose string

// The purposes a cookie can have.
const (
	PurposeSession Purpose = "session"
	PurposeState   Purpose = "state"
	PurposeTicket  Purpose = "ticket"         // the cookie of a stored session (redis mode)
	PurposeStored  Purpose = "stored-session" // a session in the store, under its ticket's key
)

// formatVersion is the first byte of every sealed value.
const formatVersion byte = 1

// hkdfInfo binds derived keys to this product and format version.
const hkdfInfo = "zitadel-ext-authz cookie v1"

// Codec seals and opens protobuf payloads with AES-256-GCM. The first key
// seals; every key opens, so a cookie_secret can be rotated without logging
// anybody out.
type Codec struct {
	aeads []cipher.AEAD
}

// NewCodec derives one AES-256-GCM key per secret with HKDF-SHA256. Each
// secret must be 16, 24 or 32 bytes (see DecodeSecret).
func NewCodec(secrets ...[]byte) (*Codec, error) { return NewAppCodec("", secrets...) }

// NewAppCodec is NewCodec for one app of several served by one server
// (the apps list): the app's name goes into every key derivation, so a
// value sealed for one app never opens for another, even under the same
// cookie name and secret. app "" (the default app) derives the keys
// NewCodec does.
func NewAppCodec(app string, secrets ...[]byte) (*Codec, error) {
	info := hkdfInfo
	if app != "" {
		info += " app " + app
	}
	if len(secrets) == 0 {
		return nil, errors.New("new codec: no cookie secret")
	}
	c := &Codec{}
	for i, s := range secrets {
		switch len(s) {
		case 16, 24, 32:
		default:
			return nil, fmt.Errorf("new codec: secret %d is %d bytes, want 16, 24 or 32", i, len(s))
		}
		key, err := hkdf.Key(sha256.New, s, nil, info, 32)
		if err != nil {
			return nil, fmt.Errorf("new codec: derive key: %w", err)
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("new codec: %w", err)
		}
		aead, err := cipher.NewGCMWithRandomNonce(block)
		if err != nil {
			return nil, fmt.Errorf("new codec: %w", err)
		}
		c.aeads = append(c.aeads, aead)
	}
	return c, nil
}

// DecodeSecret reads cookie_secret the way oauth2-proxy does: a value that is
// valid base64 (standard or URL alphabet, padding optional) decoding to 16, 24
// or 32 bytes gives the decoded bytes; otherwise the raw bytes are the key and
// must themselves be 16, 24 or 32 bytes long.
func DecodeSecret(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			switch len(b) {
			case 16, 24, 32:
				return b, nil
			}
		}
	}
	switch len(s) {
	case 16, 24, 32:
		return []byte(s), nil
	}
	return nil, fmt.Errorf("must be 16, 24 or 32 bytes, raw or base64-encoded (got %d bytes); generate one with: openssl rand -base64 32 | tr -- '+/' '-_'", len(s))
}

func additionalData(name string, purpose Purpose) []byte {
	ad := make([]byte, 0, len(hkdfInfo)+len(purpose)+len(name)+2)
	ad = append(ad, hkdfInfo...)
	ad = append(ad, 0)
	ad = append(ad, purpose...)
	ad = append(ad, 0)
	return append(ad, name...)
}

// Seal encrypts msg for the cookie called name and returns the cookie value
// (unpadded base64url, safe in a Cookie header without quoting).
func (c *Codec) Seal(name string, purpose Purpose, msg proto.Message) (string, error) {
	plain, err := proto.Marshal(msg)
	if err != nil {
		return "", fmt.Errorf("seal %s: %w", purpose, err)
	}
	sealed := c.aeads[0].Seal([]byte{formatVersion}, nil, plain, additionalData(name, purpose))
	return base64.RawURLEncoding.EncodeToString(sealed), nil
}

// Open decrypts a cookie value written by Seal into msg. Every failure is
// ErrNoSession; msg is left untouched unless Open succeeds.
func (c *Codec) Open(name string, purpose Purpose, value string, msg proto.Message) error {
	_, err := c.OpenKey(name, purpose, value, msg)
	return err
}

// OpenKey is Open that also reports which secret opened the value: 0 is the
// current one; more means the cookie should be re-issued (secret rotation).
func (c *Codec) OpenKey(name string, purpose Purpose, value string, msg proto.Message) (int, error) {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < 1 || raw[0] != formatVersion {
		return 0, ErrNoSession
	}
	ad := additionalData(name, purpose)
	for i, aead := range c.aeads {
		plain, err := aead.Open(nil, nil, raw[1:], ad)
		if err != nil {
			continue
		}
		if err := proto.Unmarshal(plain, msg); err != nil {
			return 0, ErrNoSession
		}
		return i, nil
	}
	return 0, ErrNoSession
}
