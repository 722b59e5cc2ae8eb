package authz

import (
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// Every answer carries dynamic metadata, which Envoy keeps under the
// ext_authz filter's name (envoy.filters.http.ext_authz) for the filters
// after it and for access logs: %DYNAMIC_METADATA(envoy.filters.http.ext_authz:sub)%
// in a log format, a metadata matcher in an RBAC policy. Allowed answers
// say who (sub, email, groups, org_id, amr, auth_time), every answer why
// (reason) and for which app (app).

// identityFields are the metadata fields of one user, built once per
// rendered identity block.
func identityFields(u user) map[string]*structpb.Value {
	f := map[string]*structpb.Value{
		"sub":    structpb.NewStringValue(u.sub),
		"email":  structpb.NewStringValue(u.email),
		"groups": stringList(u.groups),
	}
	if u.orgID != "" {
		f["org_id"] = structpb.NewStringValue(u.orgID)
	}
	if len(u.amr) > 0 {
		f["amr"] = stringList(u.amr)
	}
	if !u.authTime.IsZero() && u.authTime.Unix() > 0 {
		f["auth_time"] = structpb.NewNumberValue(float64(u.authTime.Unix()))
	}
	return f
}

func stringList(list []string) *structpb.Value {
	vs := make([]*structpb.Value, len(list))
	for i, s := range list {
		vs[i] = structpb.NewStringValue(s)
	}
	return structpb.NewListValue(&structpb.ListValue{Values: vs})
}

// reasonMetadata is one reason's dynamic metadata, encoded.
type reasonMetadata struct {
	reason Reason
	raw    []byte
}

// encodeMetadata is meta as field 4 (dynamic_metadata) of a
// CheckResponse, in wire format. Answers carry it as raw bytes (see
// Decision.Response): a Struct is a map, and encoding it on every Check
// took longer than the rest of the answer.
func encodeMetadata(meta *structpb.Struct) []byte {
	body, err := proto.Marshal(meta)
	if err != nil {
		return nil // a Struct of strings, lists and numbers always encodes
	}
	raw := protowire.AppendTag(nil, dynamicMetadataField, protowire.BytesType)
	return protowire.AppendBytes(raw, body)
}

// dynamicMetadataField is CheckResponse.dynamic_metadata's field number.
const dynamicMetadataField = 4

// metadataFor is the block's encoded metadata for reason and app, built on
// first use and then shared read-only (an identity block sees two or three
// reasons: session, session_renewed, bearer_*).
func (b *identityBlock) metadataFor(reason Reason, app string) []byte {
	if list := b.meta.Load(); list != nil {
		for _, m := range *list {
			if m.reason == reason {
				return m.raw
			}
		}
	}
	fields := make(map[string]*structpb.Value, len(b.fields)+2)
	for k, v := range b.fields {
		fields[k] = v
	}
	fields["reason"] = structpb.NewStringValue(string(reason))
	fields["app"] = structpb.NewStringValue(app)
	raw := encodeMetadata(&structpb.Struct{Fields: fields})
	var next []reasonMetadata
	if list := b.meta.Load(); list != nil {
		next = append(next, *list...)
	}
	next = append(next, reasonMetadata{reason, raw})
	b.meta.Store(&next) // a lost race only costs a rebuild
	return raw
}

// reasonCache holds the encoded metadata of answers without a user: one
// per reason (a bounded set of labels).
type reasonCache struct {
	m sync.Map // reason → []byte
}

func (c *reasonCache) get(reason Reason, app string) []byte {
	if v, ok := c.m.Load(reason); ok {
		return v.([]byte)
	}
	raw := encodeMetadata(&structpb.Struct{Fields: map[string]*structpb.Value{
		"reason": structpb.NewStringValue(string(reason)), "app": structpb.NewStringValue(app),
	}})
	c.m.Store(reason, raw)
	return raw
}

// attachMetadata gives d its dynamic metadata.
func (s *Server) attachMetadata(d *Decision) {
	switch {
	case d.Metadata != nil || d.metadata != nil:
	case d.identity != nil && d.identity.fields != nil:
		d.metadata = d.identity.metadataFor(d.Reason, s.app)
	case d.Subject != "":
		// A signed-in user who isn't let in: who, for RBAC and logs.
		fields := map[string]*structpb.Value{
			"reason": structpb.NewStringValue(string(d.Reason)), "app": structpb.NewStringValue(s.app), "sub": structpb.NewStringValue(d.Subject),
		}
		if d.Rule != "" {
			fields["rule"] = structpb.NewStringValue(d.Rule)
		}
		d.metadata = encodeMetadata(&structpb.Struct{Fields: fields})
	default:
		d.metadata = s.reasonMeta.get(d.Reason, s.app)
	}
}

// metaList is the type of identityBlock.meta.
type metaList = atomic.Pointer[[]reasonMetadata]
