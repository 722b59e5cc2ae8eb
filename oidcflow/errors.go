package oidcflow

import "errors"

// Sentinels for the outcomes callers act on; sort with errors.Is. Errors of
// set-up (New, ParseKeyFile, Discover) and of a sign-out's best-effort calls
// (Revoke, BackendLogout) are for the log and may wrap none.
var (
	// ErrIdPUnavailable: the IdP could not be reached, answered 5xx, timed
	// out, or discovery has not succeeded yet. Retrying later may work.
	ErrIdPUnavailable = errors.New("identity provider unavailable")
	// ErrInvalidToken: a token failed verification (signature, iss, aud, azp,
	// exp, iat, nonce, algorithm, at_hash, subject).
	ErrInvalidToken = errors.New("invalid token")
	// ErrRejected: the IdP refused the request (for example invalid_grant
	// for a used or expired authorization code).
	ErrRejected = errors.New("rejected by identity provider")
	// ErrClientAuth: the IdP refused our own client authentication
	// (invalid_client, unauthorized_client): a configuration mistake
	// (client_auth_method, client_id, the secret or key), not the user's.
	ErrClientAuth = errors.New("the identity provider refused the client")
	// ErrOverBudget: a token the cache doesn't know would need an
	// introspection, and introspection_budget is spent for now. Nothing is
	// known about the token: the caller should retry shortly, not drop it.
	ErrOverBudget = errors.New("introspection budget spent")
	// ErrIssuerMismatch: an authorization response that isn't from our IdP
	// (RFC 9207): a mix-up attack, or a misconfigured IdP.
	ErrIssuerMismatch = errors.New("authorization response from another issuer")
	// ErrNoEndSession: the IdP's discovery document has no
	// end_session_endpoint, so there is no RP-initiated logout to send the
	// browser to.
	ErrNoEndSession = errors.New("the identity provider has no end_session_endpoint")
)
