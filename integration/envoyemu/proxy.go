package envoyemu

//lint:file-ignore SA1019 Envoy's ext_authz reads the deprecated HeaderValueOption.append (envoy-ext-authz.md §2.1), so we emulate and test that field.

import (
	"context"
	"maps"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/envoy"
)

// Proxy is an HTTP front proxy that checks each request with ext_authz
// like Envoy, then forwards allowed requests to the upstream.
type Proxy struct {
	settings Settings
	conn     *grpc.ClientConn
	client   authv3.AuthorizationClient
	upstream *httputil.ReverseProxy
	clusters map[string]*httputil.ReverseProxy // AddCluster; others go to upstream
	streamID atomic.Uint64
	// Checks counts Check calls made.
	Checks atomic.Int64
}

// New connects to the ext_authz server at grpcAddr and forwards to upstream.
func New(settings Settings, grpcAddr string, upstream *url.URL) (*Proxy, error) {
	conn, err := grpc.NewClient(grpcAddr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithAuthority(settings.Cluster), // §0: :authority = cluster name
	)
	if err != nil {
		return nil, err
	}
	p := &Proxy{settings: settings, conn: conn, client: authv3.NewAuthorizationClient(conn)}
	p.upstream = &httputil.ReverseProxy{Rewrite: rewriteTo(upstream)}
	return p, nil
}

// rewriteTo sends a request to u the way Envoy's router does: the Host is
// kept, x-forwarded-proto is set (Rewrite drops the client's X-Forwarded-*;
// X-Forwarded-For goes on as Envoy left it)
// and x-envoy-expected-rq-timeout-ms carries the route timeout (15 s, the
// default of a route without one).
func rewriteTo(u *url.URL) func(*httputil.ProxyRequest) {
	return func(pr *httputil.ProxyRequest) {
		pr.SetURL(u)
		pr.Out.Host = pr.In.Host
		pr.Out.Header.Set("X-Forwarded-Proto", "http")
		// Envoy passes X-Forwarded-For on (with use_remote_address, with
		// the peer appended by ServeHTTP); Rewrite dropped it.
		if xff := pr.In.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			pr.Out.Header["X-Forwarded-For"] = xff
		}
		pr.Out.Header.Set("X-Envoy-Expected-Rq-Timeout-Ms", "15000")
	}
}

// AddCluster sends the routes of cluster to u instead of the upstream
// (set up before serving).
func (p *Proxy) AddCluster(cluster string, u *url.URL) {
	if p.clusters == nil {
		p.clusters = map[string]*httputil.ReverseProxy{}
	}
	p.clusters[cluster] = &httputil.ReverseProxy{Rewrite: rewriteTo(u)}
}

// target is where a route's requests go.
func (p *Proxy) target(rt Route) *httputil.ReverseProxy {
	if rp, ok := p.clusters[rt.Cluster]; ok {
		return rp
	}
	return p.upstream
}

// Close closes the gRPC connection.
func (p *Proxy) Close() error { return p.conn.Close() }

func (p *Proxy) route(path string) (Route, bool) {
	for _, r := range p.settings.Routes {
		if r.Path != "" && path == r.Path || r.Path == "" && strings.HasPrefix(path, r.Prefix) {
			return r, true
		}
	}
	return Route{}, false
}

// ServeHTTP runs one downstream request through ext_authz.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, ok := p.route(r.URL.Path)
	if !ok {
		// §1 "When the filter does not call the server": no route.
		http.NotFound(w, r)
		return
	}
	if p.settings.RejectUnderscoreHeaders {
		for k := range r.Header {
			if strings.Contains(k, "_") {
				localReply(w, http.StatusBadRequest, nil, "Bad Request")
				return
			}
		}
	}
	if p.settings.StripTrailingHostDot {
		if host, port, err := net.SplitHostPort(r.Host); err == nil {
			r.Host = net.JoinHostPort(strings.TrimSuffix(host, "."), port)
		} else {
			r.Host = strings.TrimSuffix(r.Host, ".")
		}
	}
	// Envoy generates a UUID v4; with use_remote_address every request is
	// an edge request, and a client's own id is replaced unless
	// preserve_external_request_id says otherwise.
	if r.Header.Get("X-Request-Id") == "" || p.settings.UseRemoteAddress && !p.settings.PreserveExternalRequestID {
		r.Header.Set("X-Request-Id", uuid.NewString())
	}
	r.Header.Set("X-Forwarded-Proto", "http")
	if p.settings.UseRemoteAddress {
		peer, _, _ := net.SplitHostPort(r.RemoteAddr)
		r.Header.Set("X-Envoy-External-Address", peer)
		appended := peer
		if ip := net.ParseIP(peer); ip != nil && ip.IsLoopback() {
			appended = nodeAddress() // Envoy's local_info address for a loopback peer
		}
		if prior := r.Header.Values("X-Forwarded-For"); len(prior) > 0 {
			appended = strings.Join(prior, ",") + "," + appended
		}
		r.Header.Set("X-Forwarded-For", appended)
	}
	if headerBytes(r) > p.settings.MaxRequestHeadersBytes {
		// The codec refuses requests over max_request_headers_kb: HTTP/1.1
		// gets a 431 local reply, HTTP/2 a reset stream (seen on 1.40).
		if r.ProtoMajor == 2 {
			panic(http.ErrAbortHandler)
		}
		p.localReply(w, http.StatusRequestHeaderFieldsTooLarge, nil, "Request Header Fields Too Large", nil)
		return
	}
	if rt.Disabled {
		p.forward(w, r, rt)
		return
	}
	req := p.checkRequest(r, rt)
	ctx, cancel := context.WithTimeout(r.Context(), p.settings.Timeout)
	defer cancel()
	p.Checks.Add(1)
	resp, err := p.client.Check(ctx, req)
	if err != nil {
		// §2 Error: any RPC failure, timeout or non-OK gRPC status.
		if p.settings.FailureModeAllow {
			p.forward(w, r, rt)
			return
		}
		p.localReply(w, p.settings.StatusOnError, nil, "", nil)
		return
	}
	if resp.GetStatus().GetCode() == 0 {
		p.allow(w, r, rt, resp.GetOkResponse())
		return
	}
	p.deny(w, resp.GetDeniedResponse(), resp.GetDynamicMetadata())
}

// nodeAddress is this machine's first non-loopback IPv4 address, which
// Envoy's local_info takes as the node's address (127.0.0.1 without one).
var nodeAddress = sync.OnceValue(func() string {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	return "127.0.0.1"
})

// checkRequest builds the CheckRequest as §1 says.
func (p *Proxy) checkRequest(r *http.Request, rt Route) *authv3.CheckRequest {
	headers := make(map[string]string, len(r.Header)+4)
	for k, vs := range r.Header {
		k = strings.ToLower(k)
		if k == "x-envoy-auth-partial-body" || k == "host" {
			continue
		}
		headers[k] = strings.Join(vs, ",") // repeated headers comma-merged, no space
	}
	headers[":authority"] = r.Host
	headers[":method"] = r.Method
	headers[":path"] = r.URL.RequestURI()
	headers[":scheme"] = "http"
	// allowed_headers and disallowed_headers pick the headers, pseudo-headers
	// too; method, path, host and scheme are sent anyway (seen on 1.40).
	maps.DeleteFunc(headers, func(k, _ string) bool { return !p.sends(k) })
	id := p.streamID.Add(1)
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: socketAddress(r.RemoteAddr)},
		Destination: &authv3.AttributeContext_Peer{Address: socketAddress(r.Context().Value(http.LocalAddrContextKey))},
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.New(time.Now()),
			Http: &authv3.AttributeContext_HttpRequest{
				Id:       strconv.FormatUint(id, 10),
				Method:   r.Method,
				Headers:  headers,
				Path:     r.URL.RequestURI(),
				Host:     r.Host,
				Scheme:   "http",
				Protocol: protocol(r),
				Size:     0,
			},
		},
		ContextExtensions: rt.ContextExtensions,
		MetadataContext:   &corev3.Metadata{},
	}}
}

// sends reports whether the CheckRequest carries the header key:
// allowed_headers (unset: every header) and not disallowed_headers.
func (p *Proxy) sends(key string) bool {
	matches := func(hp envoy.HeaderPattern) bool { return hp.Matches(key) }
	if p.settings.AllowedHeaders != nil && !slices.ContainsFunc(p.settings.AllowedHeaders, matches) {
		return false
	}
	return !slices.ContainsFunc(p.settings.DisallowedHeaders, matches)
}

// protocol is Envoy's name of the downstream protocol (HTTP/2, not Go's
// HTTP/2.0).
func protocol(r *http.Request) string {
	if r.ProtoMajor == 2 {
		return "HTTP/2"
	}
	return r.Proto
}

func socketAddress(a any) *corev3.Address {
	var hostport string
	switch v := a.(type) {
	case string:
		hostport = v
	case net.Addr:
		hostport = v.String()
	}
	host, port, _ := net.SplitHostPort(hostport)
	n, _ := strconv.Atoi(port)
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(n)},
	}}}
}

// allow applies ok_response (§2.1, §8.4) and forwards.
func (p *Proxy) allow(w http.ResponseWriter, r *http.Request, rt Route, ok *authv3.OkHttpResponse) {
	for _, h := range ok.GetHeaders() {
		key := strings.ToLower(h.GetHeader().GetKey())
		val := h.GetHeader().GetValue()
		if h.GetAppend().GetValue() {
			// append: true only joins an existing header; absent ones are dropped.
			if old := r.Header.Values(key); len(old) > 0 {
				r.Header.Set(key, strings.Join(old, ",")+","+val)
			}
			continue
		}
		// append unset/false (append_action ignored for request headers ≤1.37): set.
		if strings.HasPrefix(key, ":") {
			applyPseudo(r, key, val)
			continue
		}
		r.Header.Set(key, val)
		// Envoy (seen on 1.40) rejects the answer as soon as a set takes the
		// request past its header limit, before any removal.
		if headerBytes(r) > p.settings.MaxRequestHeadersBytes {
			localReply(w, http.StatusInternalServerError, nil, "")
			return
		}
	}
	for _, key := range ok.GetHeadersToRemove() {
		key = strings.ToLower(key)
		if strings.HasPrefix(key, ":") || key == "host" {
			continue // §2.1: pseudo-headers and host are not removable
		}
		r.Header.Del(key)
	}
	if len(ok.GetQueryParametersToSet()) > 0 || len(ok.GetQueryParametersToRemove()) > 0 {
		q := r.URL.Query()
		for _, qp := range ok.GetQueryParametersToSet() {
			q.Set(qp.GetKey(), qp.GetValue())
		}
		for _, k := range ok.GetQueryParametersToRemove() {
			q.Del(k)
		}
		r.URL.RawQuery = q.Encode()
	}
	add := ok.GetResponseHeadersToAdd()
	if len(add) == 0 {
		p.forward(w, r, rt)
		return
	}
	p.forward(&responseMutator{ResponseWriter: w, add: add}, r, rt)
}

// forward applies the route's request_headers_to_remove, as Envoy's router
// does, and sends the request to the route's cluster.
func (p *Proxy) forward(w http.ResponseWriter, r *http.Request, rt Route) {
	for _, h := range rt.RemoveHeaders {
		r.Header.Del(h)
	}
	p.target(rt).ServeHTTP(w, r)
}

// headerBytes is the size of the request's headers as Envoy counts it: every
// key and value, pseudo-headers included.
func headerBytes(r *http.Request) int {
	n := len(":authority") + len(r.Host) + len(":method") + len(r.Method) +
		len(":path") + len(r.URL.RequestURI()) + len(":scheme") + len("http")
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v)
		}
	}
	return n
}

func applyPseudo(r *http.Request, key, val string) {
	switch key {
	case ":path":
		if u, err := url.ParseRequestURI(val); err == nil {
			r.URL.Path, r.URL.RawPath, r.URL.RawQuery = u.Path, u.RawPath, u.RawQuery
		}
	case ":authority":
		r.Host = val
	}
}

// responseMutator applies response_headers_to_add to the upstream's
// response headers (§2.2, Envoy ≥1.31).
type responseMutator struct {
	http.ResponseWriter
	add  []*corev3.HeaderValueOption
	done bool
}

func (m *responseMutator) WriteHeader(code int) {
	if !m.done {
		m.done = true
		h := m.Header()
		for _, o := range m.add {
			key, val := o.GetHeader().GetKey(), o.GetHeader().GetValue()
			switch {
			case o.GetAppend() != nil && o.GetAppend().GetValue():
				h.Add(key, val)
			case o.GetAppend() != nil:
				h.Set(key, val)
			default:
				switch o.GetAppendAction() {
				case corev3.HeaderValueOption_ADD_IF_ABSENT:
					if h.Get(key) == "" {
						h.Add(key, val)
					}
				case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD:
					h.Set(key, val)
				case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
					if h.Get(key) != "" {
						h.Set(key, val)
					}
				default:
					h.Add(key, val)
				}
			}
		}
	}
	m.ResponseWriter.WriteHeader(code)
}

func (m *responseMutator) Write(b []byte) (int, error) {
	if !m.done {
		m.WriteHeader(http.StatusOK)
	}
	return m.ResponseWriter.Write(b)
}

// deny sends the local reply of denied_response (§2.3).
func (p *Proxy) deny(w http.ResponseWriter, d *authv3.DeniedHttpResponse, meta *structpb.Struct) {
	status := int(d.GetStatus().GetCode())
	if status <= 0 {
		status = http.StatusForbidden
	}
	p.localReply(w, status, d.GetHeaders(), d.GetBody(), meta)
}

// localReply writes an Envoy local reply: headers with append unset/false
// are applied remove-then-add (so repeated Set-Cookie survive), append:true
// ones are not applied (≈v1.37); a non-empty body gets content-length and
// text/plain unless the server set a content-type; an empty body loses both.
func localReply(w http.ResponseWriter, status int, headers []*corev3.HeaderValueOption, body string) {
	h := w.Header()
	var apply []*corev3.HeaderValueOption
	for _, o := range headers {
		if o.GetAppend().GetValue() {
			continue
		}
		apply = append(apply, o)
	}
	for _, o := range apply {
		h.Del(o.GetHeader().GetKey())
	}
	for _, o := range apply {
		h.Add(o.GetHeader().GetKey(), o.GetHeader().GetValue())
	}
	if body == "" {
		h.Del("Content-Type")
		h.Del("Content-Length")
	} else {
		if h.Get("Content-Type") == "" {
			h.Set("Content-Type", "text/plain")
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}
