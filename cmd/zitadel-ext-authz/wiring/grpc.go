package wiring

import (
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/checkwire"
)

// NewGRPCServer is the gRPC server Envoy calls, as the binary and the
// in-process test rig both serve it: the Authorization service (the
// Router) and gRPC health, with interceptors in order. checkwire reads a
// CheckRequest's fields Check uses straight from the wire; everything
// else is the generated proto codec.
func NewGRPCServer(check authv3.AuthorizationServer, health healthpb.HealthServer, interceptors ...grpc.UnaryServerInterceptor) *grpc.Server {
	s := grpc.NewServer(grpc.ForceServerCodecV2(checkwire.Codec{}), grpc.ChainUnaryInterceptor(interceptors...))
	authv3.RegisterAuthorizationServer(s, check)
	healthpb.RegisterHealthServer(s, health)
	return s
}
