// Package envoyemu emulates the Envoy side of ext_authz for the local demo
// where the real Envoy can't run, and as a second front proxy the
// end-to-end tests compare with the real one. It follows
// ../shared/envoy-ext-authz.md §8: it builds CheckRequests as §1 describes
// (lower-case keys, pseudo-headers with :scheme, comma-merged repeats, path
// with query, host = :authority, numeric id, a UUID x-request-id, time,
// size, protocol "HTTP/1.1" or "HTTP/2", empty metadata_context), calls
// Check over gRPC with the configured deadline and :authority = cluster
// name, and applies the answer as §2 describes (OK: set → append-if-exists
// → remove → query mutations, response headers on the way back; Denied: 403
// default, remove-then-add headers with append unset, local-reply
// content-type rules; RPC errors: status_on_error or fail-open).
//
// Its settings (timeout, failure_mode_allow, status_on_error,
// allowed_headers and disallowed_headers, the header limit, routes with ext_authz disabled, context_extensions of the
// catch-all virtual host and its routes, merged, or
// request_headers_to_remove; use_remote_address, strip_trailing_host_dot
// and headers_with_underscores_action) come from the shipped
// envoy/envoy.yaml, or a test's copy of it.
//
// The real Envoy (1.40, the pinned release) is the reference: what this
// package does was corrected where Envoy differed, and
// integration.TestContractWalk and TestWhatEnvoySends fail when the two
// disagree on any walked row or any CheckRequest field a server reads.
// Behaviours learnt from the real Envoy: a header set that takes the
// request past max_request_headers_kb answers 500 before any removal; a
// request over the limit gets 431; the router adds x-forwarded-proto and
// x-envoy-expected-rq-timeout-ms upstream and applies a route's
// request_headers_to_remove; with use_remote_address it appends the peer to
// x-forwarded-for (the node's own address for a loopback peer, as Envoy's
// local_info), sets x-envoy-external-address and replaces a client's
// x-request-id; allowed_headers picks the CheckRequest's headers,
// pseudo-headers included (none is added), while http.method, path, host
// and scheme are always filled.
package envoyemu
