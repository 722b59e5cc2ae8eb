// Package envoyemu emulates the Envoy side of ext_authz for tests and the
// local demo, following ../shared/envoy-ext-authz.md §8 to the letter: it
// builds CheckRequests as §1 describes (lower-case keys, pseudo-headers with
// :scheme, comma-merged repeats, path with query, host = :authority, numeric
// id, time, size, protocol, empty metadata_context), calls Check over gRPC
// with the configured deadline and :authority = cluster name, and applies
// the answer as §2 describes (OK: set → append-if-exists → remove → query
// mutations, response headers on the way back; Denied: 403 default,
// remove-then-add headers with append unset, local-reply content-type
// rules; RPC errors: status_on_error or fail-open).
//
// Its settings (timeout, failure_mode_allow, status_on_error, routes with
// ext_authz disabled or with context_extensions) come from the shipped
// envoy/envoy.yaml. It models Envoy ≈1.36 (append_action ignored for
// upstream request headers, honoured for response headers).
package envoyemu
