package checkwire

import (
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// The parts of a CheckRequest the decoder leaves out are still checked the
// way proto.Unmarshal checks them: the wire format, and UTF-8 in every
// proto3 string field (map keys and values included). A schema lists a
// message's fields that hold strings or messages; other fields and unknown
// ones need only a well-formed wire encoding, which fields checks. A known
// field with another wire type is, as in proto, an unknown field.
type schema map[protowire.Number]kind

// kind of a length-delimited field.
type kind struct {
	str   bool    // a string
	msg   *schema // a message of this schema
	entry *schema // a map entry: key 1 string, value 2 (entry's field 2)
}

var (
	text = kind{str: true}

	timestampSchema = schema{}
	tlsSchema       = schema{1: text} // sni
	pipeSchema      = schema{1: text} // path
	internalSchema  = schema{1: text, 2: text}
	socketSchema    = schema{2: text, 4: text, 5: text, 7: text} // address, named_port, resolver_name, network_namespace_filepath
	addressSchema   = schema{1: {msg: &socketSchema}, 2: {msg: &pipeSchema}, 3: {msg: &internalSchema}}
	stringEntry     = schema{1: text, 2: text}
	peerSchema      = schema{1: {msg: &addressSchema}, 2: text, 3: {entry: &stringEntry}, 4: text, 5: text}

	// google.protobuf.Struct, Value, ListValue (recursive) and Any.
	structSchema = schema{}
	valueSchema  = schema{}
	listSchema   = schema{}
	anySchema    = schema{1: text}                          // type_url; value is bytes
	fieldsEntry  = schema{1: text, 2: {msg: &valueSchema}}  // Struct.fields: map<string, Value>
	filterEntry  = schema{1: text, 2: {msg: &structSchema}} // Metadata.filter_metadata: map<string, Struct>
	anyEntry     = schema{1: text, 2: {msg: &anySchema}}    // Metadata.typed_filter_metadata: map<string, Any>

	metadataSchema = schema{1: {entry: &filterEntry}, 2: {entry: &anyEntry}}

	attributeContextSchema = schema{1: {msg: &peerSchema}, 2: {msg: &peerSchema}, 11: {msg: &metadataSchema}, 12: {msg: &tlsSchema}, 13: {msg: &metadataSchema}}
	requestSchema          = schema{1: {msg: &timestampSchema}}
	httpRequestSchema      = schema{7: text, 8: text} // query, fragment
)

func init() {
	structSchema[1] = kind{entry: &fieldsEntry}
	valueSchema[3] = text                     // string_value
	valueSchema[5] = kind{msg: &structSchema} // struct_value
	valueSchema[6] = kind{msg: &listSchema}   // list_value
	listSchema[1] = kind{msg: &valueSchema}   // values
}

// check checks one field of a message of schema sch.
func check(num protowire.Number, typ protowire.Type, v string, sch schema) error {
	k, ok := sch[num]
	if !ok || typ != protowire.BytesType {
		return nil
	}
	switch {
	case k.str:
		if !utf8.ValidString(v) {
			return errInvalidUTF8
		}
	case k.msg != nil:
		return validate(v, *k.msg)
	case k.entry != nil:
		return validate(v, *k.entry)
	}
	return nil
}

// validate checks a whole message of schema sch.
func validate(s string, sch schema) error {
	return fields(s, func(num protowire.Number, typ protowire.Type, v string) error {
		return check(num, typ, v, sch)
	})
}
