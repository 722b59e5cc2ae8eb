package envoy

import (
	"fmt"
	"regexp"
	"strings"

	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// HeaderPattern is one of Envoy's StringMatchers (envoy.type.matcher.v3)
// as ext_authz applies it to a request header's name, which Envoy keeps
// in lower case: exact, prefix, suffix and contains compare case unless
// IgnoreCase; Regex (safe_regex, RE2) must match the whole name.
type HeaderPattern struct {
	Exact, Prefix, Suffix, Contains, Regex string
	IgnoreCase                             bool
	re                                     *regexp.Regexp
}

// Matches reports whether the header name key matches p.
func (p HeaderPattern) Matches(key string) bool {
	if p.re != nil {
		return p.re.MatchString(key)
	}
	s := func(v string) string {
		if p.IgnoreCase {
			return strings.ToLower(v)
		}
		return v
	}
	k := s(key)
	switch {
	case p.Exact != "":
		return k == s(p.Exact)
	case p.Prefix != "":
		return strings.HasPrefix(k, s(p.Prefix))
	case p.Suffix != "":
		return strings.HasSuffix(k, s(p.Suffix))
	case p.Contains != "":
		return strings.Contains(k, s(p.Contains))
	}
	return false
}

// String is p as envoy.yaml writes it.
func (p HeaderPattern) String() string {
	var s string
	switch {
	case p.Exact != "":
		s = "exact: " + p.Exact
	case p.Prefix != "":
		s = "prefix: " + p.Prefix
	case p.Suffix != "":
		s = "suffix: " + p.Suffix
	case p.Contains != "":
		s = "contains: " + p.Contains
	default:
		s = "safe_regex: " + p.Regex
	}
	if p.IgnoreCase {
		s += ", ignore_case: true"
	}
	return s
}

// newPattern compiles a pattern's regex, if it has one.
func newPattern(p HeaderPattern) (HeaderPattern, error) {
	if p.Exact == "" && p.Prefix == "" && p.Suffix == "" && p.Contains == "" && p.Regex == "" {
		return p, fmt.Errorf("a pattern needs exact, prefix, suffix, contains or safe_regex")
	}
	if p.Regex != "" {
		re, err := regexp.Compile("^(?:" + p.Regex + ")$")
		if err != nil {
			return p, fmt.Errorf("safe_regex %q: %w", p.Regex, err)
		}
		p.re = re
	}
	return p, nil
}

// HeaderPatterns are the patterns of an Envoy ListStringMatcher (nil: none).
func HeaderPatterns(l *matcherv3.ListStringMatcher) ([]HeaderPattern, error) {
	var out []HeaderPattern
	for _, m := range l.GetPatterns() {
		p, err := newPattern(HeaderPattern{Exact: m.GetExact(), Prefix: m.GetPrefix(), Suffix: m.GetSuffix(),
			Contains: m.GetContains(), Regex: m.GetSafeRegex().GetRegex(), IgnoreCase: m.GetIgnoreCase()})
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// matchers reads a ListStringMatcher from YAML: {patterns: [{exact: …}, …]}.
func matchers(v any) ([]HeaderPattern, error) {
	m, _ := v.(map[string]any)
	list, ok := m["patterns"].([]any)
	if !ok {
		return nil, fmt.Errorf("want patterns: a list of string matchers")
	}
	var out []HeaderPattern
	for i, e := range list {
		pm, _ := e.(map[string]any)
		str := func(k string) string { s, _ := pm[k].(string); return s }
		re, _ := pm["safe_regex"].(map[string]any)
		if re == nil {
			re, _ = pm["safeRegex"].(map[string]any)
		}
		regex, _ := re["regex"].(string)
		ignore := pm["ignore_case"] == true || pm["ignoreCase"] == true
		p, err := newPattern(HeaderPattern{Exact: str("exact"), Prefix: str("prefix"), Suffix: str("suffix"),
			Contains: str("contains"), Regex: regex, IgnoreCase: ignore})
		if err != nil {
			return nil, fmt.Errorf("patterns[%d]: %w", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// names reads a list of header names, matched ignoring case; with
// wildcards (Istio), "abc*" is a prefix and "*abc" a suffix.
func names(v any, wildcards bool) ([]HeaderPattern, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("want a list of header names")
	}
	var out []HeaderPattern
	for i, e := range list {
		s, ok := e.(string)
		if !ok || s == "" {
			return nil, fmt.Errorf("[%d]: want a header name", i)
		}
		p := HeaderPattern{Exact: s, IgnoreCase: true}
		switch {
		case wildcards && strings.HasSuffix(s, "*"):
			p = HeaderPattern{Prefix: strings.TrimSuffix(s, "*"), IgnoreCase: true}
		case wildcards && strings.HasPrefix(s, "*"):
			p = HeaderPattern{Suffix: strings.TrimPrefix(s, "*"), IgnoreCase: true}
		}
		out = append(out, p)
	}
	return out, nil
}
