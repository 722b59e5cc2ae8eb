package checkwire

import (
	"errors"
	"strings"
	"unsafe"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
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
// proto.Unmarshal for what Decode leaves to it. A CheckRequest neither can
// decode (invalid UTF-8 in a string, a broken wire format) is not a gRPC
// error, which Envoy would answer with its own status_on_error (or let
// through, with failure_mode_allow): it decodes as an empty request marked
// Undecodable, which Check answers with a 400.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	req, ok := v.(*authv3.CheckRequest)
	if !ok {
		return protoCodec.Unmarshal(data, v)
	}
	buf := data.Materialize() // our own copy: req's strings point into it
	err := Decode(buf, req)
	if err == nil {
		return nil
	}
	proto.Reset(req)
	if !errors.Is(err, errInvalidUTF8) {
		if err = proto.Unmarshal(buf, req); err == nil {
			return nil
		}
	}
	cause := causeMalformed
	if errors.Is(err, errInvalidUTF8) || strings.Contains(err.Error(), "UTF-8") {
		cause = causeInvalidUTF8
	}
	proto.Reset(req)
	req.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, markField, protowire.VarintType), cause))
	return nil
}

// markField is the (unknown) field Unmarshal sets on a CheckRequest it
// couldn't decode, with the cause; the highest field number there is. A
// client that sends it itself only gets its own request refused.
const markField protowire.Number = protowire.MaxValidNumber

const (
	causeMalformed uint64 = iota + 1
	causeInvalidUTF8
)

// Cause is why a CheckRequest couldn't be decoded.
type Cause int

// The causes Undecodable reports.
const (
	CauseMalformed   Cause = Cause(causeMalformed)   // the wire format is broken
	CauseInvalidUTF8 Cause = Cause(causeInvalidUTF8) // a string field isn't UTF-8
)

// Undecodable reports whether req is one Unmarshal couldn't decode, and
// why.
func Undecodable(req *authv3.CheckRequest) (why Cause, ok bool) {
	unknown := req.ProtoReflect().GetUnknown()
	if len(unknown) == 0 {
		return 0, false // every request Envoy sends
	}
	var cause uint64
	_ = fields(unsafe.String(unsafe.SliceData(unknown), len(unknown)), func(n protowire.Number, typ protowire.Type, v string) error {
		if n == markField && typ == protowire.VarintType {
			cause, _ = protowire.ConsumeVarint([]byte(v))
		}
		return nil
	})
	switch cause {
	case 0:
		return 0, false
	case causeInvalidUTF8:
		return CauseInvalidUTF8, true
	default:
		return CauseMalformed, true
	}
}
