package checkwire

import (
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	// The generated codec this one wraps.
	_ "google.golang.org/grpc/encoding/proto"
)

// Codec is the ext_authz server's gRPC codec (grpc.ForceServerCodecV2): a
// CheckRequest is read by Decode, every other message (the answers, the
// health service) by the generated proto codec.
type Codec struct{}

var protoCodec = encoding.GetCodecV2("proto")

// Name is the content subtype, the same as the proto codec's.
func (Codec) Name() string { return "proto" }

// Marshal is the proto codec's.
func (Codec) Marshal(v any) (mem.BufferSlice, error) { return protoCodec.Marshal(v) }

// Unmarshal decodes a CheckRequest with Decode, falling back to
// proto.Unmarshal for what Decode leaves to it (its errors are then the
// generated decoder's).
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	req, ok := v.(*authv3.CheckRequest)
	if !ok {
		return protoCodec.Unmarshal(data, v)
	}
	buf := data.Materialize() // our own copy: req's strings point into it
	if err := Decode(buf, req); err == nil {
		return nil
	}
	proto.Reset(req)
	return proto.Unmarshal(buf, req)
}
