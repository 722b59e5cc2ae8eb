package authz

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
	// ResponseHeaders are added to the response the client eventually gets
	// (Set-Cookie on an allowed request).
	ResponseHeaders []Header

	// Status, Headers and Body are the local reply of a denied request.
	Status  int
	Headers []Header
	Body    string

	// Reason is a short, bounded label for logs and metrics (never user data).
	Reason string
}
