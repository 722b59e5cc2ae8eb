// Package authz is the Envoy ext_authz service
// (envoy.service.auth.v3.Authorization/Check): it turns each CheckRequest
// into a Decision (allow with identity headers, or a denied local reply such
// as the login redirect, a 401, a 403 or a page) and renders that Decision
// into the CheckResponse fields Envoy applies (../shared/envoy-ext-authz.md
// §2, §7; CONTRACT.md §3).
//
// request.go parses a CheckRequest once into a typed Request (Check does,
// or apps.Router for every app, which then calls Answer); server.go routes
// it (Decide); each endpoint has its own file (callback.go, start.go,
// signout.go, userinfo.go; the sign-in and signed-out pages are in
// pages.go); lifecycle.go decides for a request with a session
// (revocations, idle timeout, refresh); bearer.go authenticates API callers
// by access token (and the route's audience); resource.go serves RFC 9728
// protected-resource metadata, which every 401 names (deny.go); csrf.go
// checks the origin of state-changing requests;
// upstreamtoken.go exchanges the user's token for an upstream's (RFC 8693,
// upstream_token_audience), kept and shared by concurrent Checks;
// route.go reads per-route policy from Envoy's context_extensions;
// policy.go holds groups, e-mail domains, skip_auth_routes, trusted_ips
// and the return-URL whitelist.
//
// user.go is the one shape of a user (from verified claims or a stored
// session) that the policy, the headers, the metadata, userinfo and the
// pages read. identity.go builds the allowed answer and its identity
// headers; metadata.go its dynamic metadata. reasons.go is the table of
// every Reason a decision carries (status, page, challenge, log level);
// deny.go builds every denied answer from it; decision.go is the Decision,
// and response.go alone turns it into Envoy's messages. requestheaders.go
// lists the request headers Check reads under a configuration, with why
// (RequestHeaders): what Envoy's allowed_headers must send.
//
// A decision is always a CheckResponse with a nil error; bad input is a
// Denied answer, never a gRPC error or a panic. Every I/O (the IdP, the
// session store) runs within the Check's deadline less a margin
// (internal/deadline). The package is free of gRPC servers, HTTP clients,
// viper and Prometheus: the IdP is reached through the IdP interface, and
// sessions through *session.Jar.
package authz
