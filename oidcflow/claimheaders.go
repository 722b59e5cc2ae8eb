package oidcflow

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// claim_headers: any claim as an upstream header. The values are computed
// here, once per login, refresh or bearer token, from the verified claims;
// authz keeps them (in the session, or with the cached token) and sends
// them under the configured names.

// maxClaimHeaderBytes bounds one claim header's value: a longer string is
// cut at a character boundary, a longer list at an entry boundary, and an
// object whose JSON is longer is left out (a cut JSON text would be
// mangled).
const maxClaimHeaderBytes = maxClaimBytes

// maxClaimPathSteps bounds the lookups of one claim path (claimAt tries a
// whole name before splitting it at each dot, at every level).
const maxClaimPathSteps = 64

// claimValues are the header values of the configured claim_headers claims
// and of the claims rules read (KeepClaims) present in claims, keyed by
// claim path (a claim named twice is kept once). A claim that is missing,
// null or empty gives no entry; nil when none is configured or present.
func (p *Provider) claimValues(claims map[string]any) map[string]string {
	var out map[string]string
	keep := func(path string) {
		if _, done := out[path]; done {
			return
		}
		v, fits := claimHeaderValue(path, claimAt(claims, path))
		if !fits {
			// The claim's name, never its value: it may be personal.
			p.logger.Debug("claim_headers: a claim's value is too large for a header; the header is left out", "claim", path, "limit_bytes", maxClaimHeaderBytes)
		}
		if v == "" {
			return
		}
		if out == nil {
			out = make(map[string]string, len(p.cfg.ClaimHeaders)+len(p.cfg.KeepClaims))
		}
		out[path] = v
	}
	for _, path := range p.cfg.ClaimHeaders {
		keep(path)
	}
	for _, path := range p.cfg.KeepClaims {
		keep(path)
	}
	return out
}

// claimHeaderValue is the header value of claim path's value v: a string
// as it is; a number or boolean formatted; a list its entries joined with
// ","; ZITADEL's role claims ({"role": {"<orgid>": "<domain>"}}) their
// role keys, sorted and joined with ","; another object its JSON. In a
// list, "," and "%" within an entry are sent as %2C and %25 (as in
// x-forwarded-groups), so an entry never reads as two. Control characters
// are dropped and the value bounded (maxClaimHeaderBytes); fits is false
// when an object was left out for its size. "" means no header.
func claimHeaderValue(path string, v any) (value string, fits bool) {
	if isRoleClaim(path) {
		keys := roleKeys(v)
		slices.Sort(keys)
		return joinEntries(slices.Compact(keys)), true
	}
	switch t := v.(type) {
	case []any:
		entries := make([]string, 0, len(t))
		for _, e := range t {
			if s, ok := scalarText(e); ok && s != "" {
				entries = append(entries, s)
			}
		}
		return joinEntries(entries), true
	}
	s, ok := scalarText(v)
	if !ok {
		return "", false
	}
	return s, true
}

// scalarText is v as one header-safe value: an object or a list as JSON
// (ok is false when that is over maxClaimHeaderBytes).
func scalarText(v any) (string, bool) {
	switch t := v.(type) {
	case nil:
		return "", true
	case string:
		return headerSafe(t), true
	case bool:
		return strconv.FormatBool(t), true
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64), true
	case json.Number:
		return headerSafe(t.String()), true
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return "", true
	}
	// JSON escapes control characters but DEL, which headerSafe drops
	// (the text stays valid JSON).
	s := strings.TrimSuffix(b.String(), "\n")
	if len(s) > maxClaimHeaderBytes {
		return "", false
	}
	return headerSafe(s), true
}

var entryEscaper = strings.NewReplacer("%", "%25", ",", "%2C")

// joinEntries joins header-safe entries with ",", each escaped, cut at an
// entry boundary within maxClaimHeaderBytes.
func joinEntries(entries []string) string {
	var b strings.Builder
	for _, e := range entries {
		e = entryEscaper.Replace(headerSafe(e))
		if e == "" {
			continue
		}
		n := len(e)
		if b.Len() > 0 {
			n++
		}
		if b.Len()+n > maxClaimHeaderBytes {
			break
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(e)
	}
	return b.String()
}

// isRoleClaim reports whether name is one of ZITADEL's role claims.
func isRoleClaim(name string) bool {
	return name == zitadelRolesClaim || strings.HasPrefix(name, zitadelRolePrefix) && strings.HasSuffix(name, zitadelRoleSuffix)
}
