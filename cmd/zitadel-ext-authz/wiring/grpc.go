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
	opts := append(StackOptions(), grpc.ForceServerCodecV2(checkwire.Codec{}), grpc.ChainUnaryInterceptor(interceptors...))
	s := grpc.NewServer(opts...)
	authv3.RegisterAuthorizationServer(s, check)
	healthpb.RegisterHealthServer(s, health)
	return s
}

// streamWorkers is how many goroutines run Checks and stay for the next
// one. Without them grpc-go starts a goroutine per stream, whose stack
// starts small and is copied as it grows: on the login redirect's path
// (the log line at its deepest) that copying was 17 % of the server's CPU
// (a CPU profile under h2load -c1 -m64), and keeping the grown stacks cut
// the CPU per redirect by about a quarter. More streams in flight than
// workers get goroutines of their own as before; Envoy's workers rarely
// keep more than a few dozen Checks in flight each.
const streamWorkers = 256

// StackOptions are the gRPC server options of our stack that don't depend
// on what it serves (the stream workers); make bench's floor server uses
// them too, so it compares like with like.
func StackOptions() []grpc.ServerOption {
	return []grpc.ServerOption{grpc.NumStreamWorkers(streamWorkers)}
}

// ServeGRPC serves s on ln as the binary does: answers that finish
// together leave in one write (writebatch: grpc-go writes each answer
// over 1,000 bytes with a system call of its own, which made an answer
// carrying the identity assertion cost a third more under load).
func ServeGRPC(s *grpc.Server, ln net.Listener) error {
	return s.Serve(writebatch.Listener(ln))
}
