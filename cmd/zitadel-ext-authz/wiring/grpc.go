package wiring

import (
	"net"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/checkwire"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/internal/writebatch"
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

// ServeGRPC serves s on ln as the binary does: answers that finish
// together leave in one write (writebatch: grpc-go writes each answer
// over 1,000 bytes with a system call of its own, which made an answer
// carrying the identity assertion cost a third more under load).
func ServeGRPC(s *grpc.Server, ln net.Listener) error {
	return s.Serve(writebatch.Listener(ln))
}
