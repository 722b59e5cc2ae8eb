package checkwire

import (
	"strings"
	"unsafe"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"
)

// The source peer (the address Envoy saw) is rarely read (trusted_ips), so
// the decoder doesn't build its three messages per Check: it keeps the
// field's wire bytes, a view into the request's buffer, as an unknown field
// of the AttributeContext, and SourceAddress reads the address from them
// when asked.

// keepSource keeps AttributeContext.source (field 1, value v) as an
// unknown field. v points into the request's buffer, right after the
// field's tag and length: the whole field is the bytes before it and v,
// when they read back as that field (a non-minimal length varint doesn't:
// then a copy is kept).
func keepSource(out *authv3.AttributeContext, v string) {
	hdr := 1 + protowire.SizeVarint(uint64(len(v)))
	p := unsafe.Add(unsafe.Pointer(unsafe.StringData(v)), -hdr)
	raw := unsafe.Slice((*byte)(p), hdr+len(v))
	if num, typ, n := protowire.ConsumeTag(raw); num != 1 || typ != protowire.BytesType || n != 1 {
		raw = nil
	} else if b, m := protowire.ConsumeBytes(raw[1:]); m != hdr-1+len(v) || len(b) != len(v) {
		raw = nil
	}
	if raw == nil {
		raw = protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), []byte(v))
	}
	out.ProtoReflect().SetUnknown(raw)
}

// SourceAddress is source.address.socket_address.address of a
// CheckRequest's attributes: the client (or the proxy before Envoy) as
// Envoy saw it; "" when there is none.
func SourceAddress(attrs *authv3.AttributeContext) string {
	if attrs == nil {
		return ""
	}
	if src := attrs.GetSource(); src != nil {
		return src.GetAddress().GetSocketAddress().GetAddress()
	}
	unknown := attrs.ProtoReflect().GetUnknown()
	v := unsafe.String(unsafe.SliceData(unknown), len(unknown))
	// source (1) → Peer.address (1) → Address.socket_address (1) →
	// SocketAddress.address (2).
	for _, num := range []protowire.Number{1, 1, 1, 2} {
		var ok bool
		if v, ok = lastBytesField(v, num); !ok {
			return ""
		}
	}
	return strings.Clone(v)
}

// lastBytesField is the last length-delimited field num of message s (the
// last occurrence wins, as in proto).
func lastBytesField(s string, num protowire.Number) (string, bool) {
	var out string
	found := false
	err := fields(s, func(n protowire.Number, typ protowire.Type, v string) error {
		if n == num && typ == protowire.BytesType {
			out, found = v, true
		}
		return nil
	})
	return out, found && err == nil
}
