package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz"
)

// maxClaimHeaders bounds claim_headers: each value may be 4 KiB, and all
// of a request's headers must stay under Envoy's limit (60 KiB).
const maxClaimHeaders = 20

// buildHeaders: claim_headers and id_token_header, the upstream headers an
// operator names (authz.Config, and the claims oidcflow reads). A bad
// header name is refused here, at load and on reload.
func (r *resolver) buildHeaders(c *Config) {
	claims := r.claimHeaders("claim_headers")
	names := slices.Sorted(maps.Keys(claims))
	c.Authz.ClaimHeaders = nil
	for _, name := range names {
		c.Authz.ClaimHeaders = append(c.Authz.ClaimHeaders, authz.ClaimHeader{Name: name, Claim: claims[name]})
	}
	c.OIDC.ClaimHeaders = claims
	idHeader := strings.ToLower(r.str("id_token_header"))
	switch err := authz.CheckUpstreamHeader(idHeader); {
	case idHeader == "":
	case err != nil:
		r.fail("id_token_header", "%v", err)
	case claims[idHeader] != "":
		r.fail("id_token_header", "%q is a claim_headers header too; a header carries one value", idHeader)
	case r.boolean("session_cookie_minimal"):
		r.warnings = append(r.warnings, "id_token_header: session_cookie_minimal keeps no ID token, so the header is never sent")
	}
	c.Authz.IDTokenHeader = idHeader
	// The identity assertion's header (buildIdentityJWT, before this) is
	// ours too: another value under its name would replace it.
	if h := c.Authz.IdentityJWT.Header; h != "" && claims[h] != "" {
		r.fail("claim_headers", "%q is identity_jwt_header's header; choose another name", h)
	} else if h != "" && idHeader == h {
		r.fail("id_token_header", "%q is identity_jwt_header's header; choose another name", h)
	}
}

// claimHeaders reads a header → claim map: a table (TOML, YAML, JSON), or
// a list (a comma-separated string in the environment and flags) of
// header=claim entries. Header names are case-insensitive and kept lower
// case; nil when unset or after r.fail.
func (r *resolver) claimHeaders(name string) map[string]string {
	def(name, kList)
	v, ok := r.raw(name)
	if !ok {
		return nil
	}
	pairs, err := headerPairs(v)
	if err != nil {
		r.fail(name, "%v", err)
		return nil
	}
	if len(pairs) > maxClaimHeaders {
		r.fail(name, "%d headers; at most %d", len(pairs), maxClaimHeaders)
		return nil
	}
	out := make(map[string]string, len(pairs))
	for _, p := range pairs {
		header := strings.ToLower(strings.TrimSpace(p[0]))
		claim := strings.TrimSpace(p[1])
		switch err := authz.CheckUpstreamHeader(header); {
		case err != nil:
			r.fail(name, "%v", err)
			return nil
		case claim == "":
			r.fail(name, "header %q: no claim; want header = \"claim\" (a name or a dotted path)", header)
			return nil
		case out[header] != "":
			r.fail(name, "header %q is named twice", header)
			return nil
		}
		out[header] = claim
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// headerPairs are the [header, claim] entries of a claim_headers value.
func headerPairs(v any) ([][2]string, error) {
	var out [][2]string
	add := func(k any, claim any) error {
		h, ok := k.(string)
		s, isString := claim.(string)
		if !ok || !isString {
			return fmt.Errorf("header %v: want a claim name or dotted path (a string)", k)
		}
		out = append(out, [2]string{h, s})
		return nil
	}
	switch t := v.(type) {
	case map[string]any:
		for _, k := range slices.Sorted(maps.Keys(t)) {
			if err := add(k, t[k]); err != nil {
				return nil, err
			}
		}
		return out, nil
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, claim := range t {
			ks, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("header %v: want a header name", k)
			}
			m[ks] = claim
		}
		return headerPairs(m)
	}
	list, ok := toStrings(v)
	if !ok {
		return nil, fmt.Errorf("want a table of header = \"claim\" (or a list of header=claim)")
	}
	for _, e := range list {
		h, claim, ok := strings.Cut(e, "=")
		if !ok {
			return nil, fmt.Errorf("entry %q: want header=claim", e)
		}
		out = append(out, [2]string{h, claim})
	}
	return out, nil
}
