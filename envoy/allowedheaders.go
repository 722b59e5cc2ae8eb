package envoy

import (
	"errors"
	"strings"
)

// allowedAnchor opens envoy.yaml's allowed_headers list; the patterns
// follow, one per line at patternIndent.
const (
	allowedAnchor = "              allowed_headers:\n                patterns:\n"
	patternIndent = "                "
)

// AllowHeaders is cfg (envoy.yaml as shipped, or a copy of it) with each
// name added to its ext_authz allowed_headers, as a user does for what
// check-envoy says the configuration reads (tests and make bench use it).
func AllowHeaders(cfg []byte, names ...string) ([]byte, error) {
	s := string(cfg)
	if !strings.Contains(s, allowedAnchor) {
		return nil, errors.New("envoy config: no allowed_headers list to add to")
	}
	var b strings.Builder
	for _, n := range names {
		b.WriteString(patternIndent + "- exact: " + n + "\n")
	}
	return []byte(strings.Replace(s, allowedAnchor, allowedAnchor+b.String(), 1)), nil
}

// AllowAllHeaders is cfg without its allowed_headers list: Envoy then
// sends Check every request header (what a rule that reads
// request.headers by a computed key needs).
func AllowAllHeaders(cfg []byte) ([]byte, error) {
	s := string(cfg)
	start := strings.Index(s, allowedAnchor)
	if start < 0 {
		return nil, errors.New("envoy config: no allowed_headers list to remove")
	}
	end := start + len(allowedAnchor)
	for end < len(s) && strings.HasPrefix(s[end:], patternIndent) {
		next := strings.IndexByte(s[end:], '\n')
		if next < 0 {
			end = len(s)
			break
		}
		end += next + 1
	}
	return []byte(s[:start] + s[end:]), nil
}
