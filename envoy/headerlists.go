package envoy

import (
	"fmt"
	"slices"
	"strings"
)

// HeaderList is one list of the request headers a proxy sends to
// ext_authz, found in a deployment file (envoy-ext-authz.md §1, §5):
//
//   - allowed_headers (or allowedHeaders) of Envoy's ext_authz filter, with
//     disallowed_headers beside it: StringMatchers on the lower-case names;
//   - Envoy Gateway's SecurityPolicy extAuth.headersToExtAuth: names,
//     matched ignoring case (exact with ignore_case, envoyproxy/gateway
//     v1.9.1 internal/xds/translator/extauth.go);
//   - Istio's includeRequestHeadersInCheck (envoyExtAuthzHttp only; the
//     gRPC provider has no such field, istio/api v1.32.0 mesh/v1alpha1/
//     config.proto): names ignoring case, "abc*" a prefix, "*abc" a
//     suffix.
//
// Without a list Envoy sends a gRPC ext_authz server every header.
type HeaderList struct {
	Doc        int    // the YAML document (from 1)
	Where      string // the path to the list
	Key        string // allowed_headers, headersToExtAuth or includeRequestHeadersInCheck
	Allowed    []HeaderPattern
	Disallowed []HeaderPattern // disallowed_headers: wins over Allowed
	// UnderscoresRefused: the proxy refuses (or drops) every header with
	// '_' in its name before ext_authz runs (headers_with_underscores_action
	// REJECT_REQUEST or DROP_HEADER in the same document; Envoy Gateway's
	// default, unless a ClientTrafficPolicy of the file allows them: see
	// UnderscoresAllowed for the others), so no such header ever reaches
	// Check and none needs to be on the list.
	UnderscoresRefused bool
}

// Sends reports whether the proxy sends the header name (lower case) to
// ext_authz.
func (l HeaderList) Sends(name string) bool {
	matches := func(p HeaderPattern) bool { return p.Matches(name) }
	return slices.ContainsFunc(l.Allowed, matches) && !slices.ContainsFunc(l.Disallowed, matches)
}

// Fix says how to add name to the list.
func (l HeaderList) Fix(name string) string {
	if l.Key == "allowed_headers" {
		if slices.ContainsFunc(l.Disallowed, func(p HeaderPattern) bool { return p.Matches(name) }) {
			return "take it off disallowed_headers"
		}
		return fmt.Sprintf("add `- exact: %s` to its patterns", name)
	}
	return fmt.Sprintf("add %s to %s", name, l.Key)
}

// CaseTrap is the pattern of the list that would send name but for its
// case (Envoy's header names are lower case, and an exact matcher without
// ignore_case compares case: envoyproxy/gateway#3372); "" when none.
func (l HeaderList) CaseTrap(name string) string {
	for _, p := range l.Allowed {
		q := p
		q.IgnoreCase = true
		if !p.Matches(name) && q.Matches(name) {
			return p.String()
		}
	}
	return ""
}

// HeaderLists finds every list of request headers for ext_authz in a YAML
// file of any kind: an Envoy bootstrap, Istio manifests (the mesh config
// embedded in the istio ConfigMap too), Envoy Gateway manifests or a
// rendered Helm chart; so check-envoy reads them all the same way.
func HeaderLists(data []byte) ([]HeaderList, error) {
	docs, err := yamlDocuments(data)
	if err != nil {
		return nil, err
	}
	egUnderscores := !slices.ContainsFunc(docs, allowsUnderscores)
	var out []HeaderList
	for i, tree := range docs {
		if tree == nil {
			continue
		}
		w := listWalker{doc: i + 1, refused: refusesUnderscores(tree)}
		if kind, _ := tree.(map[string]any)["kind"].(string); kind == "SecurityPolicy" {
			w.refused = w.refused || egUnderscores
		}
		if err := walkTree(tree, nil, w.list); err != nil {
			return nil, fmt.Errorf("document %d: %w", i+1, err)
		}
		out = append(out, w.found...)
	}
	return out, nil
}

// refusesUnderscores reports whether a document sets Envoy's
// headers_with_underscores_action to refuse or drop such headers.
func refusesUnderscores(tree any) bool {
	found := false
	visit(tree, func(k string, v any) {
		if k == "headers_with_underscores_action" || k == "headersWithUnderscoresAction" {
			found = found || v == "REJECT_REQUEST" || v == "DROP_HEADER"
		}
	})
	return found
}

// UnderscoresAllowed reports whether a YAML file has an Envoy Gateway
// ClientTrafficPolicy that lets headers with '_' through: then the
// headersToExtAuth lists of the other files given with it need the
// underscored spellings too (check-envoy reads them together).
func UnderscoresAllowed(data []byte) bool {
	docs, err := yamlDocuments(data)
	return err == nil && slices.ContainsFunc(docs, allowsUnderscores)
}

// allowsUnderscores reports whether a document is an Envoy Gateway
// ClientTrafficPolicy that lets headers with '_' through (its default is
// RejectRequest: envoyproxy/gateway v1.9.1 buildHeadersWithUnderscoresAction).
func allowsUnderscores(tree any) bool {
	m, _ := tree.(map[string]any)
	if m["kind"] != "ClientTrafficPolicy" {
		return false
	}
	found := false
	visit(tree, func(k string, v any) { found = found || k == "withUnderscoresAction" && v == "Allow" })
	return found
}

// visit calls f with every key of every map in tree and its value.
func visit(tree any, f func(k string, v any)) {
	_ = walkTree(tree, nil, func(m map[string]any, k string, _ []string) (bool, error) {
		f(k, m[k])
		return false, nil
	})
}

// listWalker is HeaderLists' state in one document.
type listWalker struct {
	doc     int
	refused bool
	found   []HeaderList
}

// list records the list m[k] is, if it is one (done), and walks the mesh
// config an istio ConfigMap embeds as text.
func (w *listWalker) list(m map[string]any, k string, at []string) (done bool, err error) {
	l := HeaderList{Doc: w.doc, Where: joinPath(at), UnderscoresRefused: w.refused}
	switch k {
	case "allowed_headers", "allowedHeaders":
		if _, ok := m[k].(map[string]any); !ok {
			return false, nil
		}
		l.Key = "allowed_headers"
		if l.Allowed, err = matchers(m[k]); err != nil {
			return true, err
		}
		for _, dk := range []string{"disallowed_headers", "disallowedHeaders"} {
			if d, ok := m[dk]; ok {
				if l.Disallowed, err = matchers(d); err != nil {
					return true, fmt.Errorf("%s: %w", dk, err)
				}
			}
		}
	case "headersToExtAuth", "includeRequestHeadersInCheck":
		l.Key = k
		if l.Allowed, err = names(m[k], k == "includeRequestHeadersInCheck"); err != nil {
			return true, err
		}
	case "mesh":
		text, ok := m[k].(string)
		if !ok {
			return false, nil
		}
		tree, err := decodeYAML(text)
		if err != nil {
			return true, fmt.Errorf("the mesh config: %w", err)
		}
		return true, walkTree(tree, at, w.list)
	default:
		return false, nil
	}
	w.found = append(w.found, l)
	return true, nil
}

// allNames is authz.AllHeaders: a need no list can meet.
const allNames = "*"

// Leaves lists the names (of the headers a configuration reads, from
// config.HeaderNames) the list doesn't get to Check. A name with '_' gets
// there as far as it matters when the proxy refuses such headers; the
// need for every header ("*") is left out by any list.
func (l HeaderList) Leaves(names []string) []string {
	var out []string
	for _, n := range names {
		switch {
		case n == allNames:
			out = append(out, n)
		case l.UnderscoresRefused && strings.Contains(n, "_"):
		case !l.Sends(n):
			out = append(out, n)
		}
	}
	return out
}
