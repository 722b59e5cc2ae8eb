package oidcflow

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/client"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/oauth2"
)

// How the login client authenticates at the token endpoint (code
// exchange, refresh), the revocation endpoint and, unless an introspection
// client is configured, the introspection endpoint (client_auth_method).
// The comments name the method as ZITADEL's console does.
const (
	AuthBasic         = "basic"           // client_secret_basic: "Code"
	AuthPost          = "post"            // client_secret_post: "Post"
	AuthNone          = "none"            // a public client, PKCE only: "PKCE"
	AuthPrivateKeyJWT = "private_key_jwt" // a signed assertion from a key file: "JWT"
)

// AuthMethods lists the methods in the order the README's table does.
var AuthMethods = []string{AuthBasic, AuthPost, AuthNone, AuthPrivateKeyJWT}

// ConsoleName is ZITADEL's console name for method.
func ConsoleName(method string) string {
	switch method {
	case AuthPost:
		return "Post"
	case AuthNone:
		return "PKCE"
	case AuthPrivateKeyJWT:
		return "JWT"
	}
	return "Code"
}

// discoveryName is method as discovery's *_auth_methods_supported name it.
func discoveryName(method string) oidc.AuthMethod {
	switch method {
	case AuthPost:
		return oidc.AuthMethodPost
	case AuthNone:
		return oidc.AuthMethodNone
	case AuthPrivateKeyJWT:
		return oidc.AuthMethodPrivateKeyJWT
	}
	return oidc.AuthMethodBasic
}

// KeyFile is a ZITADEL application key (the downloaded JSON): the login
// client's for private_key_jwt (Config.ClientKey), or an API app's for
// introspection (BearerConfig.IntrospectionKey).
type KeyFile struct {
	Type     string `json:"type"`
	KeyID    string `json:"keyId"`
	Key      string `json:"key"`
	ClientID string `json:"clientId"`
	AppID    string `json:"appId"`
}

// ParseKeyFile reads a ZITADEL key file's JSON.
func ParseKeyFile(data []byte) (*KeyFile, error) {
	var k KeyFile
	if err := json.Unmarshal(data, &k); err != nil {
		return nil, fmt.Errorf("not a ZITADEL key file: %w", err)
	}
	if k.KeyID == "" || k.Key == "" || k.ClientID == "" {
		return nil, errors.New("not a ZITADEL key file: keyId, key and clientId are required")
	}
	return &k, nil
}

// assertionLifetime is how long a private_key_jwt assertion is valid: one
// call's worth (each call signs a new one, with its own jti).
const assertionLifetime = time.Minute

// clientAuth authenticates the login client at the IdP's endpoints.
type clientAuth struct {
	method     string
	id, secret string
	issuer     string      // the assertion's audience
	signer     jose.Signer // private_key_jwt
}

func newClientAuth(cfg Config) (*clientAuth, error) {
	c := &clientAuth{method: cfg.AuthMethod, id: cfg.ClientID, issuer: cfg.Issuer}
	switch c.method {
	case "":
		c.method = AuthBasic
		c.secret = cfg.ClientSecret
	case AuthBasic, AuthPost:
		c.secret = cfg.ClientSecret
	case AuthNone:
	case AuthPrivateKeyJWT:
		if cfg.ClientKey == nil {
			return nil, errors.New("client authentication private_key_jwt needs the application's key file")
		}
		signer, err := client.NewSignerFromPrivateKeyByte([]byte(cfg.ClientKey.Key), cfg.ClientKey.KeyID)
		if err != nil {
			return nil, fmt.Errorf("the application's key file: %w", err)
		}
		c.signer = signer
	default:
		return nil, fmt.Errorf("client authentication %q: want one of %v", c.method, AuthMethods)
	}
	return c, nil
}

// authStyle is how golang.org/x/oauth2 sends the client: in the header for
// basic, in the form otherwise (client_id alone for none and
// private_key_jwt, whose secret is empty).
func (c *clientAuth) authStyle() oauth2.AuthStyle {
	if c.method == AuthBasic {
		return oauth2.AuthStyleInHeader
	}
	return oauth2.AuthStyleInParams
}

// assertion is a fresh private_key_jwt client assertion (RFC 7523 §2.2):
// iss = sub = the client id, aud = the issuer, a minute's exp, a random
// jti; "" for the other methods.
func (c *clientAuth) assertion() (string, error) {
	if c.signer == nil {
		return "", nil
	}
	a, err := client.SignedJWTProfileAssertion(c.id, []string{c.issuer}, assertionLifetime, c.signer)
	if err != nil {
		return "", fmt.Errorf("sign the client assertion: %w", err)
	}
	return a, nil
}

// authorize adds the client's authentication to a form request of our own
// (revocation).
func (c *clientAuth) authorize(req *http.Request, form url.Values) error {
	switch c.method {
	case AuthBasic:
		req.SetBasicAuth(url.QueryEscape(c.id), url.QueryEscape(c.secret))
	case AuthPost:
		form.Set("client_id", c.id)
		form.Set("client_secret", c.secret)
	case AuthNone:
		form.Set("client_id", c.id)
	case AuthPrivateKeyJWT:
		a, err := c.assertion()
		if err != nil {
			return err
		}
		form.Set("client_id", c.id)
		client.ClientAssertionFormAuthorization(a)(form)
	}
	return nil
}

// mismatch is the warning when discovery lists the token endpoint's
// methods and ours is not among them; "" otherwise.
func (c *clientAuth) mismatch(supported []oidc.AuthMethod) string {
	if len(supported) == 0 || slices.Contains(supported, discoveryName(c.method)) {
		return ""
	}
	return fmt.Sprintf("client_auth_method %s (%s) is not among the token endpoint's methods in discovery, %v: the IdP will likely refuse the client",
		c.method, discoveryName(c.method), supported)
}

// clientAuthHint says what to do when the IdP refuses our client.
func clientAuthHint(method string) string {
	return fmt.Sprintf("the IdP refused client_auth_method %s (ZITADEL console: %s). Check the app's authentication method in ZITADEL (app → Configuration) and set client_auth_method to match: Code → basic, Post → post, PKCE → none, JWT → private_key_jwt with client_key_file; and check client_id and the secret or key",
		method, ConsoleName(method))
}

// hintEvery bounds the invalid_client log line: the same mistake fails
// every login and refresh.
const hintEvery = time.Minute

// hintLimiter lets one line through per hintEvery.
type hintLimiter struct{ last atomic.Int64 }

func (h *hintLimiter) allow(now time.Time) bool {
	last := h.last.Load()
	if last != 0 && now.Sub(time.Unix(0, last)) < hintEvery {
		return false
	}
	return h.last.CompareAndSwap(last, now.UnixNano())
}
