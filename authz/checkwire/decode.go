// Package checkwire decodes Envoy's CheckRequest from the gRPC wire and is
// the gRPC codec of the ext_authz server. A Check reads five fields of the
// request (method, path, host, scheme and the headers, plus the route's
// context_extensions); the generated decoder builds every message and
// string of it, peers, addresses, metadata and all. This decoder copies the
// message once into a string, points every field it keeps into that string,
// and leaves out what Check never reads (source, destination, time,
// metadata, TLS session, size, body). Anything unusual (header_map from
// encode_raw_headers, a body) takes the generated decoder, and so does any
// input this one can't read.
//
// Malformed input fails exactly as with proto.Unmarshal: the parts left out
// are still checked against their schema (wire format, and UTF-8 in every
// proto3 string field), so a request our decoder accepts is one the
// generated decoder accepts too, with the same values in every field kept
// (a differential fuzz test holds this).
package checkwire

import (
	"errors"
	"unicode/utf8"
	"unsafe"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"
)

// errFallback: the fast path can't or shouldn't decode this input; the
// generated decoder decides.
var errFallback = errors.New("checkwire: use the generated decoder")

// Decode fills req from the wire bytes of a CheckRequest (req must be
// empty), or returns errFallback. data is owned by the caller and must
// never change afterwards: req's strings point into it.
func Decode(data []byte, req *authv3.CheckRequest) error {
	s := unsafe.String(unsafe.SliceData(data), len(data))
	// CheckRequest: attributes = 1.
	var out authv3.AttributeContext
	var seenAttrs bool
	err := fields(s, func(num protowire.Number, typ protowire.Type, v string) error {
		if num == 1 && typ == protowire.BytesType {
			seenAttrs = true
			return attributes(v, &out)
		}
		return nil // unknown: kept as unknown by proto, never read
	})
	if err != nil {
		return err
	}
	if seenAttrs {
		req.Attributes = &out
	}
	return nil
}

// attributes reads an AttributeContext: request (4) and
// context_extensions (10); source (1), destination (2), metadata_context
// (11), tls_session (12) and route_metadata_context (13) are validated and
// left out.
func attributes(s string, out *authv3.AttributeContext) error {
	return fields(s, func(num protowire.Number, typ protowire.Type, v string) error {
		switch {
		case num == 4 && typ == protowire.BytesType:
			if out.Request == nil {
				out.Request = &authv3.AttributeContext_Request{}
			}
			return request(v, out.Request)
		case num == 10 && typ == protowire.BytesType:
			if out.ContextExtensions == nil {
				out.ContextExtensions = map[string]string{}
			}
			return mapEntry(v, out.ContextExtensions)
		case num == 1 && typ == protowire.BytesType:
			if err := check(num, typ, v, attributeContextSchema); err != nil {
				return err
			}
			keepSource(out, v)
			return nil
		}
		return check(num, typ, v, attributeContextSchema)
	})
}

// request reads AttributeContext.Request: http (2); time (1) is left out.
func request(s string, out *authv3.AttributeContext_Request) error {
	return fields(s, func(num protowire.Number, typ protowire.Type, v string) error {
		if num == 2 && typ == protowire.BytesType {
			if out.Http == nil {
				out.Http = &authv3.AttributeContext_HttpRequest{}
			}
			return httpRequest(v, out.Http)
		}
		return check(num, typ, v, requestSchema)
	})
}

// httpRequest reads the fields Check uses; header_map, body and raw_body
// send the request to the generated decoder.
func httpRequest(s string, out *authv3.AttributeContext_HttpRequest) error {
	return fields(s, func(num protowire.Number, typ protowire.Type, v string) error {
		if typ == protowire.BytesType {
			switch num {
			case 1:
				return str(v, &out.Id)
			case 2:
				return str(v, &out.Method)
			case 3:
				if out.Headers == nil {
					out.Headers = make(map[string]string, 24)
				}
				return mapEntry(v, out.Headers)
			case 4:
				return str(v, &out.Path)
			case 5:
				return str(v, &out.Host)
			case 6:
				return str(v, &out.Scheme)
			case 10:
				return str(v, &out.Protocol)
			case 11, 12, 13: // body, raw_body, header_map: unusual
				return errFallback
			}
		}
		return check(num, typ, v, httpRequestSchema)
	})
}

// str sets a proto3 string field (the last occurrence wins, as in proto).
func str(v string, dst *string) error {
	if !utf8.ValidString(v) {
		return errInvalidUTF8
	}
	*dst = v
	return nil
}

var (
	errInvalidUTF8 = errors.New("checkwire: string field contains invalid UTF-8")
	errFieldNumber = errors.New("checkwire: invalid field number")
)

// mapEntry reads one map<string,string> entry: key 1, value 2, both
// optional (missing means ""), the last entry of a key wins.
func mapEntry(s string, m map[string]string) error {
	var k, v string
	err := fields(s, func(num protowire.Number, typ protowire.Type, x string) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			return str(x, &k)
		case num == 2 && typ == protowire.BytesType:
			return str(x, &v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	m[k] = v
	return nil
}

// fields walks the fields of a message, handing each to f with its value:
// for length-delimited fields the bytes, for others their encoding.
func fields(s string, f func(num protowire.Number, typ protowire.Type, v string) error) error {
	b := unsafe.Slice(unsafe.StringData(s), len(s))
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		if num > protowire.MaxValidNumber { // ConsumeTag checks only the lower bound
			return errFieldNumber
		}
		b = b[n:]
		var v []byte
		if typ == protowire.BytesType {
			v, n = protowire.ConsumeBytes(b)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n >= 0 {
				v = b[:n]
			}
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, typ, unsafe.String(unsafe.SliceData(v), len(v))); err != nil {
			return err
		}
	}
	return nil
}
