package authz

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
)

// Protected-resource metadata (RFC 9728): an app that takes bearer tokens
// says, in a JSON document at a well-known path, which authorization
// server issues its tokens and which scopes to ask for, and every 401 an
// API caller gets names that document in its challenge (§5.1, deny.go's
// withResourceMetadata). So a client that starts with nothing but the
// app's URL (an MCP client) finds its way to a token. Check answers the
// document itself, as it answers PREFIX/jwks; an app without bearer
// tokens has none (the path is then checked like any other).
//
// Without resource_url every URL of the app is a resource of its own: a
// 401 at https://app/mcp names
// https://app/.well-known/oauth-protected-resource/mcp, whose resource
// is https://app/mcp, the URL the client asked for (§3.3 wants them
// identical). With resource_url there is one resource, at its location.

// ResourceMetadataPath is RFC 9728 §3's well-known path. A resource with a
// path has its document at this path followed by its own (§3.1):
// https://app.example.com/mcp's is
// https://app.example.com/.well-known/oauth-protected-resource/mcp.
const ResourceMetadataPath = "/.well-known/oauth-protected-resource"

// ResourceMetadataCacheControl is the document's Cache-Control: it changes
// only with the configuration.
const ResourceMetadataCacheControl = "public, max-age=3600"

// ProtectedResource is an app's RFC 9728 metadata (resource_*).
type ProtectedResource struct {
	// URL is the resource identifier (resource_url): an http(s) URL
	// without query or fragment, whose document is served at its
	// well-known location only, and which every 401's challenge names.
	// "": the request's scheme://host, plus the path a path-suffixed
	// request for the document names (…/oauth-protected-resource/mcp:
	// scheme://host/mcp).
	URL string
	// AuthorizationServers are the issuers whose tokens the app takes
	// (oidc_issuer_url first, then extra_jwt_issuers).
	AuthorizationServers []string
	// ScopesSupported are the scopes a client asks for to get a token for
	// the app (resource_scopes_supported; MCP clients ask for exactly
	// these); nil: none listed.
	ScopesSupported []string
	// Name is resource_name, for people; "": the app's name, or for the
	// default app the resource's host.
	Name string
	// Documentation is resource_documentation: a page for developers of
	// clients; "": none.
	Documentation string
}

// resourceDocument is the JSON document (RFC 9728 §2).
type resourceDocument struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers,omitempty"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
	ResourceDocumentation  string   `json:"resource_documentation,omitempty"`
}

// bearerMethods: the token comes in the Authorization header only
// (RFC 6750 §2.1; we read neither form bodies nor queries).
var bearerMethods = []string{"header"}

// resourceLocation is where the document of the configured resource
// (absolute) is: its origin and the well-known path with the resource's
// path after it, a terminating slash removed (RFC 9728 §3.1).
func resourceLocation(resource string) (origin, path string, err error) {
	u, err := url.Parse(resource)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.Fragment != "" || u.RawQuery != "" || u.ForceQuery || strings.Contains(resource, "#") || !plainHost(u.Host) {
		return "", "", errors.New("resource_url: want an http(s) URL without user, query or fragment, such as https://app.example.com/mcp (RFC 9728 §1.2)")
	}
	return u.Scheme + "://" + u.Host, ResourceMetadataPath + strings.TrimSuffix(u.EscapedPath(), "/"), nil
}

// isResourceMetadata reports whether path is where the app's document is
// (resourceMetadata answers it): none without bearer tokens; with
// resource_url, that resource's location only; without, the well-known
// path and every path-suffixed form of it.
func (s *Server) isResourceMetadata(set *settings, path string) bool {
	if s.bearerAuth == nil || !strings.HasPrefix(path, ResourceMetadataPath) {
		return false
	}
	if set.resourceMetaPath != "" {
		return path == set.resourceMetaPath
	}
	suffix := path[len(ResourceMetadataPath):]
	return suffix == "" || (suffix[0] == '/' && suffix != "/")
}

// resourceMetadata is the app's document for r, a GET or HEAD of its
// location (endpointAt), or nil when r can't have it (a host that can't
// be a resource's): Check then goes on as for any other path.
func (s *Server) resourceMetadata(set *settings, r *Request) *Decision {
	pr := set.ProtectedResource
	resource := pr.URL
	if resource == "" {
		if !plainHost(r.Host) {
			return nil
		}
		resource = r.Scheme + "://" + r.Host + r.Path[len(ResourceMetadataPath):]
		if u, err := url.Parse(resource); err != nil || u.Fragment != "" || u.RawQuery != "" {
			return nil
		}
	}
	name := pr.Name
	if name == "" {
		name = s.app
		if name == "" || name == "default" { // the default app: named by its host
			u, _ := url.Parse(resource)
			name = u.Host
		}
	}
	body, err := json.Marshal(resourceDocument{Resource: resource, AuthorizationServers: pr.AuthorizationServers, ScopesSupported: pr.ScopesSupported,
		BearerMethodsSupported: bearerMethods, ResourceName: name, ResourceDocumentation: pr.Documentation})
	if err != nil {
		return nil // strings and lists of strings always encode
	}
	return &Decision{Status: http.StatusOK, Reason: ReasonResourceMeta, Body: string(body), Headers: []Header{
		{"content-type", "application/json"},
		{"cache-control", ResourceMetadataCacheControl},
		// Public, and read by clients in browsers (MCP inspectors) too.
		{"access-control-allow-origin", "*"},
	}}
}

// resourceMetadataURL is where a client of r finds the app's document:
// the configured resource's location, else the document of r's own URL
// (without its query), whose resource is then that URL, as RFC 9728 §3.3
// wants of metadata a challenge names: the well-known path with r's path
// after it (https://app/mcp: https://app/.well-known/oauth-protected-resource/mcp;
// a path that can't stand in a quoted parameter: the origin's). ok is
// false for a host that can't.
func resourceMetadataURL(set *settings, r *Request) (u string, ok bool) {
	if set.resourceMetaURL != "" {
		return set.resourceMetaURL, true
	}
	if !plainHost(r.Host) {
		return "", false
	}
	path := strings.TrimSuffix(r.Path, "/")
	if !quotable(path) || strings.HasPrefix(path, ResourceMetadataPath) {
		path = ""
	}
	return r.Scheme + "://" + r.Host + ResourceMetadataPath + path, true
}

// plainHost reports whether h (host and optional port, as the request
// names it) is printable ASCII without the characters that would end a
// quoted parameter, a URL's authority or start its path: a host Envoy
// passes, but read before it is reflected into a document or a header.
func plainHost(h string) bool {
	if h == "" {
		return false
	}
	for i := 0; i < len(h); i++ {
		switch c := h[i]; {
		case c <= ' ' || c >= 0x7f, c == '"', c == '\\', c == '/', c == '?', c == '#', c == '@':
			return false
		}
	}
	return true
}
