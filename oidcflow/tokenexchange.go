package oidcflow

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Token exchange (RFC 8693): the user's access token traded at the token
// endpoint for one whose audience is an upstream, so the upstream gets a
// token meant for it instead of the one meant for us.
const (
	// CallTokenExchange names the exchange's IdP call (CallName).
	CallTokenExchange = "token_exchange"

	grantTokenExchange   = "urn:ietf:params:oauth:grant-type:token-exchange" // RFC 8693 §2.1
	tokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"   // RFC 8693 §3
)

// ExchangedToken is an access token the IdP issued for an upstream in
// exchange for a user's.
type ExchangedToken struct {
	AccessToken string
	// Expiry is when it ends, on our clock (the answer's expires_in);
	// zero when the IdP didn't say.
	Expiry time.Time
}

// ExchangeError is the IdP's refusal of a token exchange (a 4xx answer):
// its OAuth error code (RFC 8693 §2.2.2, RFC 6749 §5.2; "" when the body
// had none) and description. It wraps ErrClientAuth for invalid_client,
// ErrRejected otherwise; neither field ever holds a token.
type ExchangeError struct {
	Status      int
	Code        string
	Description string
	err         error
}

func (e *ExchangeError) Error() string {
	msg := fmt.Sprintf("status %d", e.Status)
	if e.Code != "" {
		msg += ", " + e.Code
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg + ": " + e.Unwrap().Error()
}

// Unwrap is the sentinel: ErrClientAuth for invalid_client, else
// ErrRejected.
func (e *ExchangeError) Unwrap() error {
	if e.err == nil { // a literal built outside this package (authz's tests)
		return ErrRejected
	}
	return e.err
}

// maxAnswerBody bounds the token or revocation endpoint's answer we read.
const maxAnswerBody = 64 << 10

// ExchangeToken trades subjectToken (the user's access token) for an
// access token whose audience is audience (RFC 8693 §2.1), authenticated
// as client_auth_method says, like the code exchange and refresh. It makes
// one call each time: callers cache and coalesce. The IdP refusing is an
// *ExchangeError (ErrRejected, or ErrClientAuth for invalid_client); an
// unreachable, failing (5xx) or slow one ErrIdPUnavailable, with the
// deadline in the chain; an answer without a usable access token
// ErrInvalidToken.
func (p *Provider) ExchangeToken(ctx context.Context, subjectToken, audience string) (*ExchangedToken, error) {
	const op = "exchange token"
	if subjectToken == "" || audience == "" {
		return nil, fmt.Errorf("%s: %w: no subject token or no audience", op, ErrRejected)
	}
	d, err := p.current()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	t, err := p.exchangeToken(ctx, d, subjectToken, audience)
	p.observe(CallTokenExchange, outcomeOf(err), time.Since(start))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return t, nil
}

func (p *Provider) exchangeToken(ctx context.Context, d *discovered, subjectToken, audience string) (*ExchangedToken, error) {
	form := url.Values{
		"grant_type":           {grantTokenExchange},
		"subject_token":        {subjectToken},
		"subject_token_type":   {tokenTypeAccessToken},
		"requested_token_type": {tokenTypeAccessToken},
		"audience":             {audience},
	}
	resp, err := p.postForm(ctx, CallTokenExchange, d.config.TokenEndpoint, form)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBody))
	if err != nil {
		return nil, classify(ctx, err)
	}
	switch {
	case resp.StatusCode >= 500:
		return nil, fmt.Errorf("%w: status %d", ErrIdPUnavailable, resp.StatusCode)
	case resp.StatusCode != http.StatusOK:
		return nil, p.exchangeRefused(resp.StatusCode, raw, subjectToken)
	}
	var answer struct {
		AccessToken     string `json:"access_token"`
		IssuedTokenType string `json:"issued_token_type"`
		TokenType       string `json:"token_type"`
		ExpiresIn       int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		return nil, fmt.Errorf("%w: the answer is not JSON: %w", ErrInvalidToken, err)
	}
	switch {
	case answer.AccessToken == "":
		return nil, fmt.Errorf("%w: the answer has no access_token", ErrInvalidToken)
	case answer.IssuedTokenType != "" && answer.IssuedTokenType != tokenTypeAccessToken:
		// RFC 8693 §2.2.1: access_token holds whatever was issued (an ID
		// token, with token_type N_A), which is no access token.
		return nil, fmt.Errorf("%w: the IdP issued %s, not an access token", ErrInvalidToken, clip(answer.IssuedTokenType, 80))
	case !strings.EqualFold(answer.TokenType, "bearer"):
		return nil, fmt.Errorf("%w: token_type %q, not Bearer", ErrInvalidToken, clip(answer.TokenType, 20))
	case !tokenSafe(answer.AccessToken):
		return nil, fmt.Errorf("%w: the token holds characters not allowed in a header", ErrInvalidToken)
	}
	t := &ExchangedToken{AccessToken: answer.AccessToken}
	if answer.ExpiresIn > 0 {
		t.Expiry = p.now().Add(time.Duration(answer.ExpiresIn) * time.Second)
	}
	return t, nil
}

// exchangeRefused reads a 4xx answer's OAuth error body (RFC 6749 §5.2).
// A description that repeats the subject token is left out: errors are
// logged.
func (p *Provider) exchangeRefused(status int, raw []byte, subjectToken string) error {
	oe := readOAuthError(raw)
	e := &ExchangeError{Status: status, Code: clip(oe.Code, 64), err: ErrRejected}
	if desc := oe.Description; !strings.Contains(desc, subjectToken) {
		e.Description = clip(strings.Map(printable, desc), 200)
	}
	// invalid_client only: unlike rejected, unauthorized_client here means the grant is off (authz's exchangeFix).
	if e.Code == "invalid_client" {
		e.err = ErrClientAuth
		return p.refused(e)
	}
	return e
}

// postForm POSTs form to endpoint, authenticated as client_auth_method
// says (the form may gain client_id, client_secret or an assertion), for
// the IdP call named call. A failed client authentication wraps
// ErrClientAuth; a failed round trip is classified (ErrIdPUnavailable,
// the deadline in the chain). The body can be replayed (GetBody) for a
// redirect or retry.
func (p *Provider) postForm(ctx context.Context, call, endpoint string, form url.Values) (*http.Response, error) {
	req, err := http.NewRequestWithContext(withCall(ctx, call), http.MethodPost, endpoint, nil)
	if err != nil {
		return nil, err
	}
	if err := p.auth.authorize(req, form); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrClientAuth, err)
	}
	body := form.Encode()
	req.Body, req.ContentLength = io.NopCloser(strings.NewReader(body)), int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(body)), nil }
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, classify(ctx, err)
	}
	return resp, nil
}

// oauthError is an OAuth error body (RFC 6749 §5.2, RFC 7009 §2.2.1).
type oauthError struct {
	Code        string `json:"error"`
	Description string `json:"error_description"`
}

// readOAuthError reads raw as an OAuth error body; zero when it is none.
func readOAuthError(raw []byte) oauthError {
	var oe oauthError
	_ = json.Unmarshal(raw, &oe)
	return oe
}

// printable drops control characters from an IdP's text before it is
// logged.
func printable(r rune) rune {
	if r < ' ' || r == 0x7f {
		return -1
	}
	return r
}

// clip bounds an IdP's text before it goes into an error: at most n
// bytes, valid UTF-8.
func clip(s string, n int) string {
	if len(s) > n {
		return strings.ToValidUTF8(s[:n], "") + "…"
	}
	return strings.ToValidUTF8(s, "")
}
