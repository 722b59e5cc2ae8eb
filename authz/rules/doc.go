// Package rules compiles and evaluates the named CEL rules of the config
// (https://github.com/google/cel-spec, with cel.dev/cel-go):
//
//	owner_or_admin = 'user.roles.exists(r, r == "admin") || request.path.startsWith("/users/" + user.sub + "/")'
//
// A route lists rules by name in allow_if (every one must be true) and
// deny_if (any true one denies; checked first); that is the caller's job.
// This package only turns the rules' text into a Set and answers whether a
// rule holds for one Input.
//
// # Inputs
//
// A rule sees four variables:
//
//   - user: User (rules.User), the signed-in user or API caller: user.sub,
//     user.email, user.email_verified, user.name, user.preferred_username,
//     user.groups (list of string), user.roles (map of role key → list of
//     organization ids), user.org_id, user.amr (list of string),
//     user.auth_time (timestamp; timestamp(0) when unknown), user.claims
//     (map of claim path → string), user.via ("session" or "bearer"),
//     user.scopes (list of string).
//   - request: Request (rules.Request): request.method, request.scheme,
//     request.host, request.path (without the query), request.query (map;
//     first value of each parameter), request.headers (map; lower-cased
//     names), request.source_address (the client's IP address).
//   - route: map(string, string), the route's context_extensions.
//   - now: timestamp, the time of the check.
//
// A field name that is not one of these (user.nmae) is a compile error. A
// missing map key is a run-time error, which denies: a rule tests presence
// with `"x-team" in request.headers`, `"editor" in user.roles` or
// `has(request.query.page)`. A constant header name must be lower-case.
// user.claims must be read by a constant key
// (user.claims["urn:zitadel:iam:user:resourceowner:name"] or
// user.claims.locale), and user only field by field: the session keeps
// only the claims some rule reads (Set.ClaimPaths).
//
// Besides CEL's standard library, rules have the cel-go extensions for
// strings (lowerAscii, split, …), sets (sets.contains, sets.intersects)
// and networks:
//
//	cidr("10.0.0.0/8").containsIP(request.source_address) || "mfa" in user.amr
//
// # Guarantees
//
// Compile checks every rule once (at load or reload) and plans its
// program; Eval only runs it. A rule must be of type bool. Every
// evaluation is bounded by CostLimit, and Compile refuses a rule whose
// worst case, estimated with every input at its size bound (MaxEntries,
// MaxRequestEntries, MaxNameSize, MaxStringSize), exceeds it; so no rule
// can make a check slow (CostLimit: a few milliseconds at the very most).
// Any evaluation error (a missing key, the cost
// limit, a nil User for a rule that reads user) is an error, on which the
// caller denies. Explain says what a rule read and what it answered; it
// never shows the authorization, proxy-authorization or cookie header.
//
// # Files
//
// env.go is the CEL environment, the cost limit and the size bounds;
// input.go the inputs, their activation (no map of variables per
// evaluation) and UserMemo; rules.go Compile and the Set; refs.go finds
// what each rule reads; optimize.go rewrites m.exists(x, x == "c") into
// "c" in m at compile time; hoist.go lifts the subexpressions that read
// user alone out of a rule, so a UserMemo works each out once per user
// (a cached session's Check builds nothing for user); bounds.go picks
// the program an input runs; headers.go says which request headers the
// rules read (for the header lists of Envoy's ext_authz); explain.go is
// Explain.
package rules
