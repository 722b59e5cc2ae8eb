package devidp

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Audiences beyond the client: a token's aud is its client id plus
//   - each project a ZITADEL audience scope names,
//     urn:zitadel:iam:org:project:id:{projectid}:aud (ZITADEL's way; its
//     own project is urn:zitadel:iam:org:project:id:zitadel:aud), and
//   - each RFC 8707 resource indicator of the authorization request (an
//     absolute URI without a fragment, in the query of the authorization
//     request; ZITADEL has none, MCP clients send it),
//
// in JWT access tokens, ID tokens and introspection answers alike (the
// example storage gives every token the client id alone, and no aud in
// introspection answers). A refreshed token has the client id only.

// ProjectAudienceScope is ZITADEL's scope that puts project id in a
// token's aud.
func ProjectAudienceScope(projectID string) string {
	return "urn:zitadel:iam:org:project:id:" + projectID + ":aud"
}

// audiences is what the store remembers for them.
type audiences struct {
	mu        sync.Mutex
	resources map[string][]string // authorization request id → its resource indicators
	tokens    map[string][]string // access token id → its aud
}

// resourceKey carries an authorization request's resource indicators
// from the HTTP request to CreateAuthRequest.
type resourceKey struct{}

// withResources puts r's resource indicators (RFC 8707 §2: absolute
// URIs without a fragment; others are ignored) into its context.
func withResources(r *http.Request) *http.Request {
	var keep []string
	for _, v := range r.URL.Query()["resource"] {
		if u, err := url.Parse(v); err == nil && u.IsAbs() && u.Fragment == "" && !slices.Contains(keep, v) {
			keep = append(keep, v)
		}
	}
	if keep == nil {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), resourceKey{}, keep))
}

// CreateAuthRequest remembers the request's resource indicators.
func (s *store) CreateAuthRequest(ctx context.Context, authReq *oidc.AuthRequest, userID string) (op.AuthRequest, error) {
	req, err := s.Storage.CreateAuthRequest(ctx, authReq, userID)
	if err != nil {
		return nil, err
	}
	if rs, ok := ctx.Value(resourceKey{}).([]string); ok {
		s.aud.mu.Lock()
		if s.aud.resources == nil {
			s.aud.resources = map[string][]string{}
		}
		s.aud.resources[req.GetID()] = rs
		s.aud.mu.Unlock()
	}
	return req, nil
}

// withAudiences is req with the audiences its scopes and resource
// indicators ask for besides its client.
func (s *store) withAudiences(req op.AuthRequest) op.AuthRequest {
	aud := slices.Clone(req.GetAudience())
	for _, sc := range req.GetScopes() {
		if rest, ok := strings.CutPrefix(sc, "urn:zitadel:iam:org:project:id:"); ok {
			if id, ok := strings.CutSuffix(rest, ":aud"); ok && id != "" && !slices.Contains(aud, id) {
				aud = append(aud, id)
			}
		}
	}
	s.aud.mu.Lock()
	for _, r := range s.aud.resources[req.GetID()] {
		if !slices.Contains(aud, r) {
			aud = append(aud, r)
		}
	}
	s.aud.mu.Unlock()
	if len(aud) == len(req.GetAudience()) {
		return req
	}
	return audienceRequest{AuthRequest: req, aud: aud}
}

// audienceRequest is a finished authorization request whose tokens have
// more audiences than its client.
type audienceRequest struct {
	op.AuthRequest
	aud []string
}

func (a audienceRequest) GetAudience() []string { return a.aud }

// rememberAudience keeps the aud of access token id for introspection.
func (s *store) rememberAudience(id string, aud []string) {
	s.aud.mu.Lock()
	defer s.aud.mu.Unlock()
	if s.aud.tokens == nil {
		s.aud.tokens = map[string][]string{}
	}
	s.aud.tokens[id] = aud
}

// audienceOf is access token id's aud (nil: unknown).
func (s *store) audienceOf(id string) []string {
	s.aud.mu.Lock()
	defer s.aud.mu.Unlock()
	return s.aud.tokens[id]
}
