package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/config"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/wiring"
)

// server is the whole process, composed once here: the log writer and
// telemetry (base), then the graph wiring builds, the listeners, the
// metrics, operations and gRPC servers, and the reload watcher (units).
// Units start in that order and stop in reverse: the reload watcher
// first, then the gRPC listener drains its Checks while /readyz says
// "shutting down", and the graph goes after the listeners, so the Checks
// in flight keep their IdP and store. The base outlives everything, so
// "stopped" and the last spans get out.
type server struct {
	logs  *logUnit
	base  []unit
	units []unit
	lns   *listeners
	fail  failures
	cfg   *config.Config
}

// newServer builds every unit for cfg; nothing listens or runs yet. On
// error it returns the exit code: 2 when the configuration caused it.
func newServer(ctx context.Context, cfg *config.Config, args []string, getenv func(string) string, logs *logUnit) (*server, int, error) {
	logger := logs.logger
	tel, err := newTelemetry(ctx, cfg, logger)
	if err != nil {
		return nil, 2, err
	}
	built, err := wiring.Build(cfg, wiring.Deps{Logger: logger, Metrics: tel.metrics, Transport: tel.transport()})
	if err != nil {
		tel.Stop(context.WithoutCancel(ctx))
		if errors.Is(err, wiring.ErrConfig) {
			return nil, 2, err
		}
		return nil, 1, err
	}
	s := &server{logs: logs, base: []unit{logs, tel}, fail: make(failures, 1), cfg: cfg,
		lns: &listeners{grpcAddr: cfg.GRPCAddress, httpAddr: cfg.HTTPAddress, metricsAddr: cfg.MetricsAddress}}
	grpcU := newGRPCUnit(built.Router, tel.interceptors(), func() net.Listener { return s.lns.grpc }, logger, s.fail)
	ready := func() (bool, string) {
		if grpcU.Draining() {
			return false, "shutting down"
		}
		if ok, why := built.Ready(); !ok {
			return false, why
		}
		return built.Sessions.Ready()
	}
	m := tel.metrics
	m.WatchReady(ready)
	ops := &httpUnit{name: "http server", server: opsServer(cfg, opsHandler(ready, m.Handler(), built.LogoutHandler(), built.Assertions.JWKS, cfg.EnablePprof, cfg.PingPath, cfg.ReadyPath)),
		ln: func() net.Listener { return s.lns.http }, fail: s.fail}
	metricsMux := http.NewServeMux()
	metricsMux.Handle("GET /metrics", m.Handler())
	metricsServer := opsServer(cfg, metricsMux)
	metricsServer.ReadHeaderTimeout = 5 * time.Second
	metrics := &httpUnit{name: "metrics server", server: metricsServer, ln: func() net.Listener { return s.lns.metrics }, fail: s.fail}
	reload := &reloadUnit{}
	if cfg.Path != "" {
		reload.rl = &reloader{args: args, getenv: getenv, current: cfg, built: built, level: logs.level, logger: logger, metrics: m}
	}
	s.units = []unit{built, s.lns, metrics, ops, grpcU, reload}
	return s, 0, nil
}

// opsServer bounds every phase: /oauth2/backchannel_logout is reachable
// from the internet, and slow or idle clients must not pile up (the write
// timeout leaves room for pprof's default 30 s profile).
func opsServer(cfg *config.Config, h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: min(5*time.Second, cfg.HTTPReadTimeout),
		ReadTimeout:       cfg.HTTPReadTimeout,
		WriteTimeout:      cfg.HTTPReadTimeout + 60*time.Second,
		IdleTimeout:       cfg.HTTPIdleTimeout,
	}
}

// run starts the units, serves until ctx ends (SIGTERM, SIGINT) or a unit
// fails, stops them, and returns the exit code. A unit that can't start
// (a port in use) is reported on stderr, before any "listening" line.
func (s *server) run(ctx context.Context, stderr io.Writer) int {
	_ = startAll(ctx, s.base) // nothing in the base can fail to start
	defer stopAll(context.WithoutCancel(ctx), s.base)
	if err := startAll(ctx, s.units); err != nil {
		fmt.Fprintln(stderr, "zitadel-ext-authz:", err)
		return 1
	}
	cfg := s.cfg
	logRequestHeaders(s.logs.logger, cfg)
	s.logs.logger.Info("listening", "grpc_address", addr(s.lns.grpc), "http_address", addr(s.lns.http), "metrics_address", addr(s.lns.metrics),
		"version", version, "session_store", cfg.SessionStore, "apps", appNames(cfg))
	s.logs.out.Flush() // launchers wait for this line

	var err error
	select {
	case <-ctx.Done():
	case err = <-s.fail:
	}
	stopAll(context.WithoutCancel(ctx), s.units)
	if err == nil {
		select {
		case err = <-s.fail: // a server that failed while stopping
		default:
		}
	}
	if err != nil {
		s.logs.logger.Error("stopped with an error", "error", err.Error())
		return 1
	}
	s.logs.logger.Info("stopped")
	return 0
}
