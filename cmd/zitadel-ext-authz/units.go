package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// unit is one long-lived part of the server (the authservice shape, no
// framework). Start brings it up and returns once it serves, or with why
// it could not (then nothing of it runs); Stop takes it down, finishing
// what is in flight, and returns when it is down or ctx ends. A unit that
// fails while serving reports it to the server's failures.
type unit interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context)
}

// failures carries the first error of a unit that stopped serving on its
// own; the server then shuts down and exits 1.
type failures chan error

func (f failures) report(err error) {
	select {
	case f <- err:
	default: // one is enough: the shutdown is under way
	}
}

// startAll starts units in order; when one fails, it stops those already
// started, in reverse order, and returns the error.
func startAll(ctx context.Context, units []unit) error {
	for i, u := range units {
		if err := u.Start(ctx); err != nil {
			stopAll(context.WithoutCancel(ctx), units[:i])
			return err
		}
	}
	return nil
}

// stopAll stops units in reverse order: what started last (and depends on
// the rest) goes first.
func stopAll(ctx context.Context, units []unit) {
	for i := len(units) - 1; i >= 0; i-- {
		units[i].Stop(ctx)
	}
}

// listeners binds the three addresses in one unit, so a bind error ends
// start-up before anything serves, and the addresses are known (port 0
// resolved) for the "listening" line. The servers take their listener
// from it; Stop closes any a server did not take.
type listeners struct {
	grpcAddr, httpAddr, metricsAddr string // metricsAddr "": no metrics listener
	grpc, http, metrics             net.Listener
}

func (l *listeners) Start(context.Context) error {
	var err error
	if l.grpc, err = net.Listen("tcp", l.grpcAddr); err != nil {
		return fmt.Errorf("grpc_address: %w", err)
	}
	if l.http, err = net.Listen("tcp", l.httpAddr); err != nil {
		l.grpc.Close()
		return fmt.Errorf("http_address: %w", err)
	}
	// oauth2-proxy's metrics_address: /metrics on a listener of its own.
	if l.metricsAddr != "" {
		if l.metrics, err = net.Listen("tcp", l.metricsAddr); err != nil {
			l.grpc.Close()
			l.http.Close()
			return fmt.Errorf("metrics_address: %w", err)
		}
	}
	return nil
}

// Stop closes the listeners; those a server served are closed already,
// which is harmless.
func (l *listeners) Stop(context.Context) {
	for _, ln := range []net.Listener{l.grpc, l.http, l.metrics} {
		if ln != nil {
			ln.Close()
		}
	}
}

// addr is ln's address, or "" without it.
func addr(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

// httpUnit serves an HTTP server on a listener of listeners.
type httpUnit struct {
	name   string              // in errors: "http server", "metrics server"
	server *http.Server        // nil: nothing to serve (no such listener)
	ln     func() net.Listener // the listener, once bound
	fail   failures
	done   chan struct{}
}

// shutdownHTTP bounds how long an HTTP server's open requests may take
// once it stops.
const shutdownHTTP = 2 * time.Second

func (u *httpUnit) Start(context.Context) error {
	ln := u.ln()
	if u.server == nil || ln == nil {
		return nil
	}
	u.done = make(chan struct{})
	go func() {
		defer close(u.done)
		if err := u.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			u.fail.report(fmt.Errorf("%s: %w", u.name, err))
		}
	}()
	return nil
}

func (u *httpUnit) Stop(ctx context.Context) {
	if u.done == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, shutdownHTTP)
	defer cancel()
	if err := u.server.Shutdown(ctx); err != nil {
		u.fail.report(fmt.Errorf("%s: %w", u.name, err))
	}
	<-u.done
}

// reloadUnit runs the reloader (config file watch and SIGHUP) until Stop.
type reloadUnit struct {
	rl     *reloader // nil: no config file, nothing to watch
	cancel context.CancelFunc
	done   chan struct{}
}

func (u *reloadUnit) Start(ctx context.Context) error {
	if u.rl == nil {
		return nil
	}
	ctx, u.cancel = context.WithCancel(context.WithoutCancel(ctx))
	u.done = make(chan struct{})
	go func() {
		defer close(u.done)
		_ = u.rl.run(ctx) // returns nil when ctx ends, its only way out
	}()
	return nil
}

func (u *reloadUnit) Stop(ctx context.Context) {
	if u.cancel == nil {
		return
	}
	u.cancel()
	select {
	case <-u.done:
	case <-ctx.Done():
	}
}
