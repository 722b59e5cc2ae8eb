package checkwire

import (
	"bytes"
	"errors"
	"maps"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// envoyRequest is a CheckRequest as Envoy sends it (envoy-ext-authz.md §1):
// peers with addresses and principals, time, headers, metadata.
func envoyRequest() *authv3.CheckRequest {
	peer := func(addr string, port uint32, principal string) *authv3.AttributeContext_Peer {
		return &authv3.AttributeContext_Peer{
			Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
				Address: addr, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
			}}},
			Principal: principal, Labels: map[string]string{"app": "web"},
		}
	}
	meta, _ := structpb.NewStruct(map[string]any{"k": "v", "n": 1.5, "list": []any{"a", true}})
	typed, _ := anypb.New(meta)
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      peer("203.0.113.7", 51234, "spiffe://cluster.local/ns/default/sa/web"),
		Destination: peer("10.0.0.5", 8000, ""),
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.Now(),
			Http: &authv3.AttributeContext_HttpRequest{
				Id: "1234567890", Method: "GET", Path: "/app?x=1", Host: "app.example.com", Scheme: "https", Protocol: "HTTP/2", Size: 0,
				Headers: map[string]string{":authority": "app.example.com", ":method": "GET", ":path": "/app?x=1", ":scheme": "https",
					"cookie": "theme=dark; _oauth2_proxy=abc", "x-request-id": "5f2c3c9e-8d7a-4d5e-9a51-7f0c1b2d3e4f", "accept": "text/html"},
			},
		},
		ContextExtensions: map[string]string{"auth": "bearer-only"},
		MetadataContext: &corev3.Metadata{
			FilterMetadata:      map[string]*structpb.Struct{"envoy.filters.http.jwt_authn": meta},
			TypedFilterMetadata: map[string]*anypb.Any{"typed": typed},
		},
		TlsSession: &authv3.AttributeContext_TLSSession{Sni: "app.example.com"},
	}}
}

// kept is what Check reads of a request, for comparison.
type kept struct {
	attrs, request, http                     bool
	id, method, path, host, scheme, protocol string
	headers, contextExtensions               map[string]string
}

func keptOf(r *authv3.CheckRequest) kept {
	h := r.GetAttributes().GetRequest().GetHttp()
	return kept{
		attrs: r.GetAttributes() != nil, request: r.GetAttributes().GetRequest() != nil, http: h != nil,
		id: h.GetId(), method: h.GetMethod(), path: h.GetPath(), host: h.GetHost(), scheme: h.GetScheme(), protocol: h.GetProtocol(),
		headers: h.GetHeaders(), contextExtensions: r.GetAttributes().GetContextExtensions(),
	}
}

func sameKept(a, b kept) bool {
	return a.attrs == b.attrs && a.request == b.request && a.http == b.http && a.id == b.id && a.method == b.method &&
		a.path == b.path && a.host == b.host && a.scheme == b.scheme && a.protocol == b.protocol &&
		maps.Equal(a.headers, b.headers) && maps.Equal(a.contextExtensions, b.contextExtensions)
}

// differential decodes data both ways: what Decode accepts, proto.Unmarshal
// accepts with the same kept fields; what proto.Unmarshal rejects, Decode
// rejects (errFallback aside, where the generated decoder decides anyway).
func differential(t *testing.T, data []byte) {
	t.Helper()
	var full authv3.CheckRequest
	fullErr := proto.Unmarshal(data, &full)
	var fast authv3.CheckRequest
	fastErr := Decode(bytes.Clone(data), &fast)
	if errors.Is(fastErr, errFallback) {
		return
	}
	if (fullErr == nil) != (fastErr == nil) {
		t.Fatalf("proto.Unmarshal: %v; Decode: %v", fullErr, fastErr)
	}
	if fullErr == nil && !sameKept(keptOf(&full), keptOf(&fast)) {
		t.Fatalf("kept fields differ:\nproto:  %+v\nDecode: %+v", keptOf(&full), keptOf(&fast))
	}
}

func TestDecodeAgreesWithProto(t *testing.T) {
	req := envoyRequest()
	data, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var fast authv3.CheckRequest
	if err := Decode(bytes.Clone(data), &fast); err != nil {
		t.Fatalf("Decode of Envoy's request: %v", err)
	}
	if !sameKept(keptOf(req), keptOf(&fast)) {
		t.Fatalf("kept fields differ:\nsent:   %+v\nDecode: %+v", keptOf(req), keptOf(&fast))
	}
	differential(t, data)
	// Malformed: every truncation, and invalid UTF-8 in a field we leave out.
	for i := range data {
		differential(t, data[:i])
	}
	for name, set := range map[string]func(r *authv3.CheckRequest){
		"source principal": func(r *authv3.CheckRequest) { r.Attributes.Source.Principal = "MARK" },
		"metadata key":     func(r *authv3.CheckRequest) { r.Attributes.MetadataContext.FilterMetadata["MARK"] = nil },
		"header value":     func(r *authv3.CheckRequest) { r.Attributes.Request.Http.Headers["x"] = "MARK" },
		"query":            func(r *authv3.CheckRequest) { r.Attributes.Request.Http.Query = "MARK" },
	} {
		bad := proto.Clone(req).(*authv3.CheckRequest)
		set(bad)
		b, err := proto.Marshal(bad)
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.Replace(b, []byte("MARK"), []byte("\xff\xfe\xfd\xfc"), 1)
		var full authv3.CheckRequest
		if proto.Unmarshal(b, &full) == nil {
			t.Fatalf("%s: proto accepted invalid UTF-8; the test proves nothing", name)
		}
		if err := Decode(bytes.Clone(b), &authv3.CheckRequest{}); err == nil {
			t.Errorf("%s: invalid UTF-8 accepted by Decode", name)
		}
	}
	// Unusual requests go to the generated decoder.
	raw := proto.Clone(req).(*authv3.CheckRequest)
	raw.Attributes.Request.Http.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: "a", RawValue: []byte("b")}}}
	rawData, _ := proto.Marshal(raw)
	if err := Decode(rawData, &authv3.CheckRequest{}); !errors.Is(err, errFallback) {
		t.Fatalf("header_map: %v, want the generated decoder", err)
	}
}

// The codec answers with the generated decoder's values; what neither
// decoder reads is an empty request marked Undecodable with its cause,
// never an error (gRPC would answer INTERNAL, and Envoy apply its
// status_on_error or, with failure_mode_allow, let the request through).
func TestCodec(t *testing.T) {
	req := envoyRequest()
	data, _ := proto.Marshal(req)
	var got authv3.CheckRequest
	if err := (Codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(data)}, &got); err != nil || !sameKept(keptOf(req), keptOf(&got)) {
		t.Fatalf("Unmarshal: %v, %+v", err, keptOf(&got))
	}
	if why, bad := Undecodable(&got); bad {
		t.Fatalf("a good request is marked undecodable (cause %d)", why)
	}
	// proto.Marshal refuses to write invalid UTF-8: a valid request with
	// one header value's bytes replaced.
	badUTF8 := envoyRequest()
	badUTF8.Attributes.Request.Http.Headers["x-bad"] = "\x01\x02"
	invalid, _ := proto.Marshal(badUTF8)
	invalid = bytes.Replace(invalid, []byte("\x01\x02"), []byte("\xff\xfe"), 1)
	for name, tc := range map[string]struct {
		data []byte
		want Cause
	}{
		"truncated":     {data[:len(data)-3], CauseMalformed},
		"invalid UTF-8": {invalid, CauseInvalidUTF8},
		"garbage":       {[]byte{0xff, 0xff, 0xff}, CauseMalformed},
	} {
		var got authv3.CheckRequest
		if err := (Codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(tc.data)}, &got); err != nil {
			t.Errorf("%s: Unmarshal error %v, want a marked request", name, err)
		}
		if why, bad := Undecodable(&got); !bad || why != tc.want || got.GetAttributes() != nil {
			t.Errorf("%s: Undecodable = %d, %v (attributes %v), want %d", name, why, bad, got.GetAttributes(), tc.want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	data, _ := proto.Marshal(envoyRequest())
	f.Add(data)
	minimal, _ := proto.Marshal(&authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/", Host: "h"}}}})
	f.Add(minimal)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		differential(t, data)
	})
}

// BenchmarkDecode compares the two decoders on Envoy's request.
func BenchmarkDecode(b *testing.B) {
	data, _ := proto.Marshal(envoyRequest())
	b.Run("checkwire", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r authv3.CheckRequest
			if err := Decode(bytes.Clone(data), &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proto.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r authv3.CheckRequest
			if err := proto.Unmarshal(data, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// The source address (trusted_ips) reads the same from the fast decoder's
// kept bytes as from the generated decoder's message, and costs the fast
// path no allocation.
func TestSourceAddress(t *testing.T) {
	data, _ := proto.Marshal(envoyRequest())
	var fast, full authv3.CheckRequest
	if err := Decode(data, &fast); err != nil {
		t.Fatal(err)
	}
	if err := proto.Unmarshal(data, &full); err != nil {
		t.Fatal(err)
	}
	if got, want := SourceAddress(fast.GetAttributes()), SourceAddress(full.GetAttributes()); got != "203.0.113.7" || got != want {
		t.Errorf("source address: fast %q, generated %q, want 203.0.113.7", got, want)
	}
	if got := SourceAddress((&authv3.CheckRequest{}).GetAttributes()); got != "" {
		t.Errorf("no attributes: %q", got)
	}
	allocs := testing.AllocsPerRun(100, func() {
		var r authv3.CheckRequest
		_ = Decode(data, &r)
	})
	withoutSource := envoyRequest()
	withoutSource.Attributes.Source = nil
	plain, _ := proto.Marshal(withoutSource)
	base := testing.AllocsPerRun(100, func() {
		var r authv3.CheckRequest
		_ = Decode(plain, &r)
	})
	if allocs > base {
		t.Errorf("keeping the source costs %.0f allocations per decode", allocs-base)
	}
}
