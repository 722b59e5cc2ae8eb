package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/wiring"
)

// shutdownGrace bounds how long in-flight Checks may take after SIGTERM.
const shutdownGrace = 10 * time.Second

// grpcUnit serves ext_authz Check and gRPC health on the gRPC listener,
// and drains on Stop: NOT_SERVING first, then the Checks in flight finish
// (within shutdownGrace), while long-lived health Watch streams don't hold
// the shutdown up.
type grpcUnit struct {
	server   *grpc.Server
	health   *health.Server
	inflight atomic.Int64 // Checks being answered: Stop waits for these only
	draining atomic.Bool  // Stop began: /readyz says so
	ln       func() net.Listener
	logger   *slog.Logger
	fail     failures
	done     chan struct{}
}

// newGRPCUnit registers check (the apps.Router) with interceptors after
// the one counting Checks in flight.
func newGRPCUnit(check authv3.AuthorizationServer, interceptors []grpc.UnaryServerInterceptor, ln func() net.Listener, logger *slog.Logger, fail failures) *grpcUnit {
	u := &grpcUnit{health: health.NewServer(), ln: ln, logger: logger, fail: fail}
	count := func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		u.inflight.Add(1)
		defer u.inflight.Add(-1)
		return handler(ctx, req)
	}
	u.server = wiring.NewGRPCServer(check, u.health, append([]grpc.UnaryServerInterceptor{count}, interceptors...)...)
	return u
}

// Draining reports whether the shutdown began.
func (u *grpcUnit) Draining() bool { return u.draining.Load() }

func (u *grpcUnit) Start(context.Context) error {
	u.done = make(chan struct{})
	go func() {
		defer close(u.done)
		if err := wiring.ServeGRPC(u.server, u.ln()); err != nil {
			u.fail.report(fmt.Errorf("grpc server: %w", err))
		}
	}()
	return nil
}

// Stop drains: no new connections or RPCs, the Checks in flight finish,
// then what is left (health Watch streams) is cut; after shutdownGrace
// the Checks still running are cut too.
func (u *grpcUnit) Stop(ctx context.Context) {
	if u.done == nil {
		return
	}
	u.logger.Info("shutting down: finishing in-flight checks")
	// NOT_SERVING first (gRPC health and /readyz), then drain.
	u.draining.Store(true)
	u.health.Shutdown()
	stopped := make(chan struct{})
	go func() { u.server.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-u.checksDone(stopped):
		u.server.Stop() // ends what is left: health Watch streams
	case <-time.After(shutdownGrace):
		u.logger.Warn("shutdown grace over; cutting in-flight checks", "grace", shutdownGrace)
		u.server.Stop()
	case <-ctx.Done():
		u.server.Stop()
	}
	<-u.done
}

// checksDone is closed once no Check is in flight (or stopped is).
func (u *grpcUnit) checksDone(stopped <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for u.inflight.Load() > 0 {
			select {
			case <-tick.C:
			case <-stopped:
				return
			}
		}
	}()
	return done
}
