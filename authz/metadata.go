package authz

import (
	"sync"
	"sync/atomic"

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
func identityFields(id identity) map[string]*structpb.Value {
	f := map[string]*structpb.Value{
		"sub":    structpb.NewStringValue(id.sub),
		"email":  structpb.NewStringValue(id.email),
		"groups": stringList(id.groups),
	}
	if id.orgID != "" {
		f["org_id"] = structpb.NewStringValue(id.orgID)
	}
	if len(id.amr) > 0 {
		f["amr"] = stringList(id.amr)
	}
	if id.authTime > 0 {
		f["auth_time"] = structpb.NewNumberValue(float64(id.authTime))
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

// reasonMetadata is one finished Struct for a reason.
type reasonMetadata struct {
	reason string
	meta   *structpb.Struct
}

// metadataFor is the block's Struct for reason and app, built on first
// use and then shared read-only (an identity block sees two or three
// reasons: session, session_renewed, bearer_*).
func (b *identityBlock) metadataFor(reason, app string) *structpb.Struct {
	if list := b.meta.Load(); list != nil {
		for _, m := range *list {
			if m.reason == reason {
				return m.meta
			}
		}
	}
	fields := make(map[string]*structpb.Value, len(b.fields)+2)
	for k, v := range b.fields {
		fields[k] = v
	}
	fields["reason"] = structpb.NewStringValue(reason)
	fields["app"] = structpb.NewStringValue(app)
	meta := &structpb.Struct{Fields: fields}
	var next []reasonMetadata
	if list := b.meta.Load(); list != nil {
		next = append(next, *list...)
	}
	next = append(next, reasonMetadata{reason, meta})
	b.meta.Store(&next) // a lost race only costs a rebuild
	return meta
}

// reasonCache holds the Structs of answers without a user: one per reason
// (a bounded set of labels).
type reasonCache struct {
	m sync.Map // reason → *structpb.Struct
}

func (c *reasonCache) get(reason, app string) *structpb.Struct {
	if v, ok := c.m.Load(reason); ok {
		return v.(*structpb.Struct)
	}
	meta := &structpb.Struct{Fields: map[string]*structpb.Value{
		"reason": structpb.NewStringValue(reason), "app": structpb.NewStringValue(app),
	}}
	c.m.Store(reason, meta)
	return meta
}

// attachMetadata gives d its dynamic metadata.
func (s *Server) attachMetadata(d *Decision) {
	switch {
	case d.Metadata != nil:
	case d.identity != nil && d.identity.fields != nil:
		d.Metadata = d.identity.metadataFor(d.Reason, s.app)
	case d.Subject != "":
		// A signed-in user who isn't let in: who, for RBAC and logs.
		d.Metadata = &structpb.Struct{Fields: map[string]*structpb.Value{
			"reason": structpb.NewStringValue(d.Reason), "app": structpb.NewStringValue(s.app), "sub": structpb.NewStringValue(d.Subject),
		}}
	default:
		d.Metadata = s.reasonMeta.get(d.Reason, s.app)
	}
}

// metaList is the type of identityBlock.meta.
type metaList = atomic.Pointer[[]reasonMetadata]
