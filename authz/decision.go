package authz

import "google.golang.org/protobuf/types/known/structpb"

// Header is one header name and value.
type Header struct{ Name, Value string }

// Decision is what Check decided, before it becomes Envoy fields.
type Decision struct {
	// Allow lets the request through to the upstream.
	Allow bool
	// Upstream headers are set on the upstream request, replacing any value
	// the client sent; RemoveUpstream are removed from it.
	Upstream       []Header
	RemoveUpstream []string
	// identity is the rendered identity block, set after Upstream.
	identity *identityBlock
	// upstreamBuf backs Upstream for the one header an allowed answer
	// usually has (the shortened cookie), saving an allocation.
	upstreamBuf [1]Header
	// ResponseHeaders are added to the response the client eventually gets
	// (Set-Cookie on an allowed request).
	ResponseHeaders []Header

	// Status, Headers and Body are the local reply of a denied request.
	Status  int
	Headers []Header
	Body    string

	// Reason is why: a label of the reasons table, for logs and metrics.
	Reason Reason
	// Metadata is the answer's dynamic metadata for Envoy, when the caller
	// sets it; else Check encodes it (metadata, see metadata.go).
	Metadata *structpb.Struct
	metadata []byte // dynamic_metadata, encoded as a CheckResponse field
	// Rule names the rule (rulecheck.go) that decided a denial, for logs,
	// metrics and the dynamic metadata; "" when no rule did.
	Rule string
	// Subject is the user's sub claim when the decision knows the user
	// (for logs; never a metric label).
	Subject string
}

// Kind labels the decision for logs, metrics and traces: allow, redirect,
// unauthorized, forbidden, page (a 2xx local reply such as the sign-in
// page) or error.
func (d *Decision) Kind() string {
	switch {
	case d.Allow:
		return "allow"
	case d.Status == 302 || d.Status == 303:
		return "redirect"
	case d.Status == 401:
		return "unauthorized"
	case d.Status == 403:
		return "forbidden"
	case d.Status >= 200 && d.Status < 300:
		return "page"
	default:
		return "error"
	}
}

func withSubject(d *Decision, sub string) *Decision {
	d.Subject = sub
	return d
}
