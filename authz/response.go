package authz

import (
	"net/http"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Shared, read-only messages: Envoy reads an explicit append on upstream
// headers in every version (envoy-ext-authz.md §2.1, §7).
var (
	appendFalse = wrapperspb.Bool(false)
	appendTrue  = wrapperspb.Bool(true)
	statusOK    = &status.Status{Code: int32(codes.OK)}
)

// Response renders a Decision into a CheckResponse:
//   - allow: code 0; ok_response.headers with append=false (overwrite),
//     headers_to_remove, and response_headers_to_add with append=true so
//     several Set-Cookie lines survive (§2.2);
//   - deny: code 16 for 401 and 7 otherwise; denied_response with the status,
//     headers with append unset (Envoy removes then adds, so repeated
//     Set-Cookie survive, §2.3) and the body.
func (d *Decision) Response() *authv3.CheckResponse {
	if d.Allow {
		ok := &authv3.OkHttpResponse{HeadersToRemove: d.RemoveUpstream}
		ok.Headers = options(d.Upstream, appendFalse)
		ok.ResponseHeadersToAdd = options(d.ResponseHeaders, appendTrue)
		return &authv3.CheckResponse{Status: statusOK, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok}}
	}
	st := d.Status
	if st == 0 {
		st = http.StatusForbidden
	}
	code := codes.PermissionDenied
	if st == http.StatusUnauthorized {
		code = codes.Unauthenticated
	}
	denied := &authv3.DeniedHttpResponse{Status: &typev3.HttpStatus{Code: typev3.StatusCode(st)}, Body: d.Body}
	denied.Headers = options(d.Headers, nil)
	return &authv3.CheckResponse{
		Status:       &status.Status{Code: int32(code)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: denied},
	}
}

// options converts headers to HeaderValueOptions with the given append
// (nil: unset). The messages come from two slabs, not two allocations per
// header: this runs on every Check.
func options(headers []Header, app *wrapperspb.BoolValue) []*corev3.HeaderValueOption {
	if len(headers) == 0 {
		return nil
	}
	opts := make([]corev3.HeaderValueOption, len(headers))
	values := make([]corev3.HeaderValue, len(headers))
	out := make([]*corev3.HeaderValueOption, len(headers))
	for i, h := range headers {
		values[i].Key, values[i].Value = h.Name, h.Value
		//lint:ignore SA1019 Envoy through v1.37 reads only the deprecated append for ext_authz (envoy-ext-authz.md §2.1).
		opts[i].Header, opts[i].Append = &values[i], app
		out[i] = &opts[i]
	}
	return out
}
