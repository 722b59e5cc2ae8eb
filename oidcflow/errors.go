package oidcflow

import "errors"

// Sentinels every error of this package wraps; callers sort with errors.Is.
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
)
