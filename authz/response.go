package authz

import (
	"google.golang.org/protobuf/types/known/structpb"
	"net/http"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/rules"
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
		// One allocation for the three messages every OK answer has.
		a := &okAnswer{}
		a.ok.HeadersToRemove = d.RemoveUpstream
		var block []*corev3.HeaderValueOption
		if d.identity != nil {
			block = d.identity.opts
		}
		// The per-request headers (the shortened cookie) first, then the
		// shared identity block.
		if len(d.Upstream) == 1 {
			a.ok.Headers = make([]*corev3.HeaderValueOption, 1, 1+len(block))
			a.ok.Headers[0] = a.upstream.set(d.Upstream[0], appendFalse)
			a.ok.Headers = append(a.ok.Headers, block...)
		} else {
			a.ok.Headers = append(options(d.Upstream, appendFalse, len(block)), block...)
		}
		a.ok.ResponseHeadersToAdd = options(d.ResponseHeaders, appendTrue, 0)
		a.wrap.OkResponse = &a.ok
		a.resp.Status, a.resp.HttpResponse = statusOK, &a.wrap
		d.setMetadata(&a.resp)
		return &a.resp
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
	denied.Headers = options(d.Headers, nil, 0)
	resp := &authv3.CheckResponse{
		Status:       &status.Status{Code: int32(code)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: denied},
	}
	d.setMetadata(resp)
	return resp
}

// setMetadata puts the dynamic metadata into resp: the pre-encoded field
// rides as the message's unknown fields, which the encoder copies as they
// are (Envoy, which knows field 4, reads it as dynamic_metadata; so does
// any Go client decoding the bytes); a Struct the caller set goes as is.
func (d *Decision) setMetadata(resp *authv3.CheckResponse) {
	if d.Metadata != nil {
		resp.DynamicMetadata = d.Metadata
		return
	}
	if d.metadata != nil {
		resp.ProtoReflect().SetUnknown(d.metadata)
	}
}

// okAnswer holds an allowed answer's messages in one allocation.
type okAnswer struct {
	resp authv3.CheckResponse
	wrap authv3.CheckResponse_OkResponse
	ok   authv3.OkHttpResponse
	// upstream holds the usual single per-request header (the cookie).
	upstream headerOption
}

// identityBlock is an allowed answer's identity headers for one session or
// bearer token, rendered into Envoy's messages once and shared read-only by
// every Check that uses it (proto marshalling only reads them).
type identityBlock struct {
	set    *settings                   // the configuration it was rendered for
	opts   []*corev3.HeaderValueOption // append=false: they overwrite
	names  []string                    // the header names it sets
	fields map[string]*structpb.Value  // the user's dynamic metadata fields
	meta   metaList                    // finished dynamic metadata, per reason
	// assertion is the signed identity assertion among opts (nil: none).
	assertion *assertion
	// ruleUser is the user as the rules read it, with what they worked
	// out of it (nil: no rule reads user), kept so a cached Check builds
	// nothing for user.
	ruleUser *rules.UserMemo
}

func renderIdentity(set *settings, headers []Header, fields map[string]*structpb.Value) *identityBlock {
	b := &identityBlock{set: set, opts: options(headers, appendFalse, 0), names: make([]string, len(headers)), fields: fields}
	for i, h := range headers {
		b.names[i] = h.Name
	}
	return b
}

// headerOption is a HeaderValueOption with its HeaderValue, allocated
// together.
type headerOption struct {
	opt corev3.HeaderValueOption
	val corev3.HeaderValue
}

// options converts headers to HeaderValueOptions with the given append
// (nil: unset), in a slice with room for extra more. The messages come
// from one slab, not three allocations per header: this runs on every
// Check.
func options(headers []Header, app *wrapperspb.BoolValue, extra int) []*corev3.HeaderValueOption {
	if len(headers)+extra == 0 {
		return nil
	}
	out := make([]*corev3.HeaderValueOption, len(headers), len(headers)+extra)
	if len(headers) == 0 {
		return out
	}
	slab := make([]headerOption, len(headers))
	for i, h := range headers {
		out[i] = slab[i].set(h, app)
	}
	return out
}

// set fills o with h and app and returns the option.
func (o *headerOption) set(h Header, app *wrapperspb.BoolValue) *corev3.HeaderValueOption {
	o.val.Key, o.val.Value = h.Name, h.Value
	//lint:ignore SA1019 Envoy through v1.37 reads only the deprecated append for ext_authz (envoy-ext-authz.md §2.1).
	o.opt.Header, o.opt.Append = &o.val, app
	return &o.opt
}
