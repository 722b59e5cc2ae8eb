// Package authz is the Envoy ext_authz service
// (envoy.service.auth.v3.Authorization/Check): it turns each CheckRequest
// into a Decision (allow with identity headers, or a denied local reply such
// as the login redirect, a 401, a 403 or a page) and renders that Decision
// into the CheckResponse fields Envoy applies (../shared/envoy-ext-authz.md
// §2, §7; CONTRACT.md §3).
//
// request.go parses a CheckRequest once into a typed Request; server.go
// routes it; each route has its own file (callback.go, start.go,
// signout.go, userinfo.go; the sign-in page is in pages.go); lifecycle.go
// decides for a request with a session (revocations, idle timeout,
// refresh); bearer.go authenticates API callers by access token; route.go
// reads per-route policy from Envoy's context_extensions; policy.go holds
// groups, e-mail domains, skip_auth_routes, api_routes and the return-URL
// whitelist; identity.go builds the allowed answer with its identity
// headers; deny.go builds every denied answer; response.go alone builds
// Envoy messages.
//
// A decision is always a CheckResponse with a nil error; bad input is a
// Denied answer, never a gRPC error or a panic. Every I/O (the IdP, the
// session store) runs within the Check's deadline less a margin
// (internal/deadline). The package is free of gRPC servers, HTTP clients,
// viper and Prometheus: the IdP is reached through the IdP interface, and
// sessions through *session.Jar.
package authz
