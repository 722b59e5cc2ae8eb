package envoyemu

import (
	"fmt"
	"net/http"
	"strings"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// Mapper is one local_reply_config mapper of the connection manager, for
// the filter subset the shipped envoy.yaml uses: status_code_filter (EQ),
// and_filter, or_filter and metadata_filter on the ext_authz filter's
// dynamic metadata (one key, present_match, invert,
// match_if_key_not_found). Settings refuse any other filter, so the
// emulator never answers differently without saying so.
type Mapper struct {
	match       func(status int, meta *structpb.Struct) bool
	Headers     []*corev3.HeaderValueOption
	ContentType string
	Body        string // text_format_source with %% read as %
}

// mappersOf compiles a connection manager's local reply mappers.
func mappersOf(hcm *hcmv3.HttpConnectionManager) ([]Mapper, error) {
	var out []Mapper
	for i, m := range hcm.GetLocalReplyConfig().GetMappers() {
		match, err := compileFilter(m.GetFilter())
		if err != nil {
			return nil, fmt.Errorf("local_reply_config mapper %d: %w", i, err)
		}
		bf := m.GetBodyFormatOverride()
		out = append(out, Mapper{match: match, Headers: m.GetHeadersToAdd(), ContentType: bf.GetContentType(),
			Body: strings.ReplaceAll(bf.GetTextFormatSource().GetInlineString(), "%%", "%")})
	}
	return out, nil
}

func compileFilter(f *accesslogv3.AccessLogFilter) (func(int, *structpb.Struct) bool, error) {
	switch {
	case f.GetStatusCodeFilter() != nil:
		c := f.GetStatusCodeFilter().GetComparison()
		if c.GetOp() != accesslogv3.ComparisonFilter_EQ {
			return nil, fmt.Errorf("status_code_filter op %v: the emulator knows EQ", c.GetOp())
		}
		want := int(c.GetValue().GetDefaultValue())
		return func(status int, _ *structpb.Struct) bool { return status == want }, nil
	case f.GetAndFilter() != nil || f.GetOrFilter() != nil:
		list, and := f.GetAndFilter().GetFilters(), true
		if f.GetOrFilter() != nil {
			list, and = f.GetOrFilter().GetFilters(), false
		}
		var parts []func(int, *structpb.Struct) bool
		for _, sub := range list {
			p, err := compileFilter(sub)
			if err != nil {
				return nil, err
			}
			parts = append(parts, p)
		}
		return func(status int, meta *structpb.Struct) bool {
			for _, p := range parts {
				if p(status, meta) != and {
					return !and
				}
			}
			return and
		}, nil
	case f.GetMetadataFilter() != nil:
		mf := f.GetMetadataFilter()
		m := mf.GetMatcher()
		if m.GetFilter() != extAuthzName || len(m.GetPath()) != 1 || !m.GetValue().GetPresentMatch() {
			return nil, fmt.Errorf("metadata_filter %v: the emulator knows present_match on one key of %s", m, extAuthzName)
		}
		key, invert := m.GetPath()[0].GetKey(), m.GetInvert()
		ifMissing := mf.GetMatchIfKeyNotFound() == nil || mf.GetMatchIfKeyNotFound().GetValue()
		return func(_ int, meta *structpb.Struct) bool {
			if _, ok := meta.GetFields()[key]; !ok {
				return ifMissing
			}
			return !invert // present: the matcher matches, unless inverted
		}, nil
	}
	return nil, fmt.Errorf("filter %v: not emulated", f)
}

// localReply writes a local reply as the connection manager does: the
// first mapper that matches (status, ext_authz's dynamic metadata) sets
// its headers and body; then replyHeaders and writeLocal.
func (p *Proxy) localReply(w http.ResponseWriter, status int, headers []*corev3.HeaderValueOption, body string, meta *structpb.Struct) {
	for _, m := range p.settings.LocalReplies {
		if !m.match(status, meta) {
			continue
		}
		headers = append(append([]*corev3.HeaderValueOption{}, headers...), m.Headers...)
		body = m.Body
		if m.ContentType != "" {
			headers = append(headers, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: "content-type", Value: m.ContentType}})
		}
		break
	}
	localReply(w, status, headers, body)
}
