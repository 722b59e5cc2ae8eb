package envoyemu

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/envoy"
)

// Settings are the ext_authz filter options the emulator honours.
type Settings struct {
	Cluster          string        // grpc_service.envoy_grpc.cluster_name, sent as :authority
	Timeout          time.Duration // grpc_service.timeout (Envoy default 200 ms)
	FailureModeAllow bool
	StatusOnError    int // default 403
	// AllowedHeaders and DisallowedHeaders are allowed_headers and
	// disallowed_headers: the request headers (pseudo-headers included)
	// the CheckRequest carries; nil AllowedHeaders: every header.
	AllowedHeaders, DisallowedHeaders []envoy.HeaderPattern
	// MaxRequestHeadersBytes is the connection manager's
	// max_request_headers_kb (default 60 KiB) in bytes.
	MaxRequestHeadersBytes int
	// UseRemoteAddress: the connection manager appends the peer to
	// X-Forwarded-For (its own address for a loopback peer, as Envoy's
	// local_info) and sets X-Envoy-External-Address.
	UseRemoteAddress          bool
	PreserveExternalRequestID bool
	// StripTrailingHostDot drops a trailing dot of the host.
	StripTrailingHostDot bool
	// RejectUnderscoreHeaders: headers_with_underscores_action
	// REJECT_REQUEST, a 400 for a header name with '_'.
	RejectUnderscoreHeaders bool
	// LocalReplies are local_reply_config's mappers.
	LocalReplies []Mapper
	Routes       []Route
}

// Route is one route of the virtual host: an exact path or a prefix.
type Route struct {
	Path              string // match.path (exact); else Prefix
	Prefix            string
	Cluster           string            // route.cluster
	Disabled          bool              // ExtAuthzPerRoute.disabled
	ContextExtensions map[string]string // ExtAuthzPerRoute.check_settings.context_extensions
	RemoveHeaders     []string          // route.request_headers_to_remove (applied by the router)
}

const extAuthzName = "envoy.filters.http.ext_authz"

// ShippedSettings reads Settings from envoy/envoy.yaml.
func ShippedSettings() (Settings, error) {
	b, err := envoy.Decode(envoy.Config)
	if err != nil {
		return Settings{}, err
	}
	return SettingsFromBootstrap(b)
}

// SettingsFromBootstrap extracts the first listener's ext_authz settings and
// routes.
func SettingsFromBootstrap(b *bootstrapv3.Bootstrap) (Settings, error) {
	s := Settings{Timeout: 200 * time.Millisecond, StatusOnError: 403, MaxRequestHeadersBytes: 60 << 10}
	for _, l := range b.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				hcm := &hcmv3.HttpConnectionManager{}
				if f.GetTypedConfig() == nil || f.GetTypedConfig().UnmarshalTo(hcm) != nil {
					continue
				}
				if kb := hcm.GetMaxRequestHeadersKb(); kb != nil {
					s.MaxRequestHeadersBytes = int(kb.GetValue()) << 10
				}
				mappers, err := mappersOf(hcm)
				if err != nil {
					return s, err
				}
				s.LocalReplies = mappers
				s.UseRemoteAddress = hcm.GetUseRemoteAddress().GetValue()
				s.PreserveExternalRequestID = hcm.GetPreserveExternalRequestId()
				s.StripTrailingHostDot = hcm.GetStripTrailingHostDot()
				s.RejectUnderscoreHeaders = hcm.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction() == corev3.HttpProtocolOptions_REJECT_REQUEST
				for _, hf := range hcm.GetHttpFilters() {
					if hf.GetName() != extAuthzName {
						continue
					}
					ea := &extauthzv3.ExtAuthz{}
					var err error
					if err = hf.GetTypedConfig().UnmarshalTo(ea); err != nil {
						return s, fmt.Errorf("ext_authz filter: %w", err)
					}
					gs := ea.GetGrpcService()
					s.Cluster = gs.GetEnvoyGrpc().GetClusterName()
					if t := gs.GetTimeout(); t != nil {
						s.Timeout = t.AsDuration()
					}
					s.FailureModeAllow = ea.GetFailureModeAllow()
					if s.AllowedHeaders, err = envoy.HeaderPatterns(ea.GetAllowedHeaders()); err != nil {
						return s, fmt.Errorf("ext_authz allowed_headers: %w", err)
					}
					if s.DisallowedHeaders, err = envoy.HeaderPatterns(ea.GetDisallowedHeaders()); err != nil {
						return s, fmt.Errorf("ext_authz disallowed_headers: %w", err)
					}
					if c := int(ea.GetStatusOnError().GetCode()); c > 0 {
						s.StatusOnError = c
					}
				}
				for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
					// The emulator models the catch-all virtual host only;
					// the per-host ones (one per app) are tested on the
					// real Envoy.
					if !slices.Contains(vh.GetDomains(), "*") {
						continue
					}
					// The virtual host's context_extensions, which a
					// route's own keys override (Envoy merges them).
					var vhExt map[string]string
					if cfg, ok := vh.GetTypedPerFilterConfig()[extAuthzName]; ok {
						per := &extauthzv3.ExtAuthzPerRoute{}
						if err := cfg.UnmarshalTo(per); err != nil {
							return s, fmt.Errorf("virtual host %s: %w", vh.GetName(), err)
						}
						vhExt = per.GetCheckSettings().GetContextExtensions()
					}
					for _, rt := range vh.GetRoutes() {
						r := Route{Path: rt.GetMatch().GetPath(), Prefix: rt.GetMatch().GetPrefix(), Cluster: rt.GetRoute().GetCluster(),
							RemoveHeaders: rt.GetRequestHeadersToRemove()}
						if cfg, ok := rt.GetTypedPerFilterConfig()[extAuthzName]; ok {
							per := &extauthzv3.ExtAuthzPerRoute{}
							if err := cfg.UnmarshalTo(per); err != nil {
								return s, fmt.Errorf("route %s: %w", r.Prefix, err)
							}
							r.Disabled = per.GetDisabled()
							r.ContextExtensions = per.GetCheckSettings().GetContextExtensions()
						}
						if len(vhExt) > 0 {
							merged := maps.Clone(vhExt)
							maps.Copy(merged, r.ContextExtensions)
							r.ContextExtensions = merged
						}
						s.Routes = append(s.Routes, r)
					}
				}
				if s.Cluster != "" {
					return s, nil
				}
			}
		}
	}
	return s, errors.New("no listener with an ext_authz filter")
}
