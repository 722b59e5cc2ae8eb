package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/debug"
	"slices"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/backchannel"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/authz/checkwire"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/config"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/telemetry"
	"github.com/zitadel-ext-authz/zitadel-ext-authz/cmd/zitadel-ext-authz/wiring"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// shutdownGrace bounds how long in-flight Checks may take after SIGTERM.
const shutdownGrace = 10 * time.Second

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, warnings, err := config.Load(args, getenv)
	if errors.Is(err, config.ErrHelp) {
		config.Usage(stdout)
		return 0
	}
	if err != nil {
		// The warnings first: an unknown or ignored key is often why.
		for _, w := range warnings {
			fmt.Fprintln(stderr, "zitadel-ext-authz: warning:", w)
		}
		fmt.Fprintln(stderr, "zitadel-ext-authz:", err)
		return 2
	}
	level := new(slog.LevelVar)
	level.Set(cfg.LogLevel)
	logOut := newBatchWriter(stderr)
	defer logOut.Flush()
	logger := newLogger(cfg, level, logOut)
	for _, w := range warnings {
		logger.Warn(w)
	}
	for _, p := range cfg.CallbackProblems() {
		logger.Warn(p, "key", "redirect_url")
	}
	setMemoryLimit(cfg, getenv, logger)

	// Collaborators, built once.
	m := telemetry.NewMetrics(version)
	var transport func(http.RoundTripper) http.RoundTripper
	// In-flight Checks are counted so shutdown waits for them, and only
	// them: long-lived health Watch streams must not hold it up.
	var inflight atomic.Int64
	unary := []grpc.UnaryServerInterceptor{func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		inflight.Add(1)
		defer inflight.Add(-1)
		return handler(ctx, req)
	}}
	if cfg.OTLPEndpoint != "" {
		tracing, err := telemetry.NewTracing(ctx, telemetry.TracingConfig{Endpoint: cfg.OTLPEndpoint, Insecure: cfg.OTLPInsecure, SampleRatio: cfg.TraceSampleRatio, Version: version})
		if err != nil {
			fmt.Fprintln(stderr, "zitadel-ext-authz: otlp_endpoint:", err)
			return 2
		}
		defer func() {
			flushCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			tracing.Shutdown(flushCtx)
		}()
		transport = tracing.Transport
		unary = append(unary, tracing.UnaryInterceptor())
		logger.Info("tracing on", "otlp_endpoint", cfg.OTLPEndpoint, "trace_sample_ratio", cfg.TraceSampleRatio)
	}
	built, err := wiring.Build(cfg, wiring.Deps{Logger: logger, Metrics: m, Transport: transport})
	if err != nil {
		fmt.Fprintln(stderr, "zitadel-ext-authz:", err)
		if errors.Is(err, wiring.ErrConfig) {
			return 2
		}
		return 1
	}
	defer built.Close()
	stores := built.Sessions
	// Before the listeners open: the first Check knows every recorded logout.
	stores.Follow(ctx, logger)

	// Listeners: bind errors end start-up before anything serves.
	grpcLn, err := net.Listen("tcp", cfg.GRPCAddress)
	if err != nil {
		fmt.Fprintf(stderr, "zitadel-ext-authz: grpc_address: %v\n", err)
		return 1
	}
	httpLn, err := net.Listen("tcp", cfg.HTTPAddress)
	if err != nil {
		grpcLn.Close()
		fmt.Fprintf(stderr, "zitadel-ext-authz: http_address: %v\n", err)
		return 1
	}

	// oauth2-proxy's metrics_address: /metrics on a listener of its own.
	var metricsLn net.Listener
	if cfg.MetricsAddress != "" {
		if metricsLn, err = net.Listen("tcp", cfg.MetricsAddress); err != nil {
			grpcLn.Close()
			httpLn.Close()
			fmt.Fprintf(stderr, "zitadel-ext-authz: metrics_address: %v\n", err)
			return 1
		}
	}

	// checkwire reads a CheckRequest's fields Check uses straight from the
	// wire; everything else is the generated proto codec.
	grpcServer := grpc.NewServer(grpc.ForceServerCodecV2(checkwire.Codec{}), grpc.ChainUnaryInterceptor(unary...))
	var draining atomic.Bool
	authv3.RegisterAuthorizationServer(grpcServer, built.Router)
	healthServer := health.NewServer()
	healthpb.RegisterHealthServer(grpcServer, healthServer)
	ready := func() (bool, string) {
		if draining.Load() {
			return false, "shutting down"
		}
		if ok, why := built.Ready(); !ok {
			return false, why
		}
		return stores.Ready()
	}
	m.WatchReady(ready)
	// Every phase bounded: /oauth2/backchannel_logout is reachable from the
	// internet, and slow or idle clients must not pile up (the write
	// timeout leaves room for pprof's default 30 s profile).
	opsServer := &http.Server{
		Handler:           opsHandler(ready, m.Handler(), built.LogoutHandler(), cfg.EnablePprof, cfg.PingPath, cfg.ReadyPath),
		ReadHeaderTimeout: min(5*time.Second, cfg.HTTPReadTimeout),
		ReadTimeout:       cfg.HTTPReadTimeout,
		WriteTimeout:      cfg.HTTPReadTimeout + 60*time.Second,
		IdleTimeout:       cfg.HTTPIdleTimeout,
	}

	metricsAddr := ""
	if metricsLn != nil {
		metricsAddr = metricsLn.Addr().String()
	}
	logger.Info("listening", "grpc_address", grpcLn.Addr().String(), "http_address", httpLn.Addr().String(), "metrics_address", metricsAddr, "version", version, "session_store", cfg.SessionStore, "apps", appNames(cfg))
	logOut.Flush() // launchers wait for this line

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return built.Run(gctx) })
	if cfg.Path != "" {
		rl := &reloader{args: args, getenv: getenv, current: cfg, built: built, level: level, logger: logger, metrics: m}
		g.Go(func() error { return rl.run(gctx) })
	}
	g.Go(func() error {
		if err := grpcServer.Serve(grpcLn); err != nil {
			return fmt.Errorf("grpc server: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		if err := opsServer.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("http server: %w", err)
		}
		return nil
	})
	if metricsLn != nil {
		metricsMux := http.NewServeMux()
		metricsMux.Handle("GET /metrics", m.Handler())
		metricsServer := &http.Server{Handler: metricsMux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: cfg.HTTPReadTimeout,
			WriteTimeout: cfg.HTTPReadTimeout + 60*time.Second, IdleTimeout: cfg.HTTPIdleTimeout}
		g.Go(func() error {
			if err := metricsServer.Serve(metricsLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("metrics server: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return metricsServer.Shutdown(shutdownCtx)
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		logger.Info("shutting down: finishing in-flight checks")
		// NOT_SERVING first (gRPC health and /readyz), then drain.
		draining.Store(true)
		healthServer.Shutdown()
		stopped := make(chan struct{})
		go func() { grpcServer.GracefulStop(); close(stopped) }() // no new connections or RPCs
		checksDone := make(chan struct{})
		go func() {
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for inflight.Load() > 0 {
				<-tick.C
			}
			close(checksDone)
		}()
		select {
		case <-stopped:
		case <-checksDone:
			grpcServer.Stop() // ends what is left: health Watch streams
		case <-time.After(shutdownGrace):
			logger.Warn("shutdown grace over; cutting in-flight checks", "grace", shutdownGrace)
			grpcServer.Stop()
		}
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return opsServer.Shutdown(shutdownCtx)
	})
	if err := g.Wait(); err != nil {
		logger.Error("stopped with an error", "error", err.Error())
		return 1
	}
	logger.Info("stopped")
	return 0
}

// appNames lists the apps served, for the start-up line.
func appNames(cfg *config.Config) []string {
	var out []string
	for _, a := range cfg.AllApps() {
		out = append(out, a.Name)
	}
	return out
}

// baseMemory is what the server needs besides its caches (measured by make
// bench: about 40 MB RSS under load with empty caches).
const baseMemory = 64 << 20

// setMemoryLimit sets Go's soft memory limit to the base plus every cache
// bound, unless GOMEMLIMIT is set: the GC then works harder as the caches
// fill instead of letting the heap grow to twice their size.
func setMemoryLimit(cfg *config.Config, getenv func(string) string, logger *slog.Logger) {
	if getenv("GOMEMLIMIT") != "" {
		return
	}
	limit := int64(baseMemory) + cfg.SessionCacheSize + wiring.RefreshCacheBytes
	if slices.ContainsFunc(cfg.AllApps(), func(a *config.App) bool { return a.BearerEnabled }) {
		limit += cfg.TokenCacheSize // one token cache, shared by the apps
	}
	debug.SetMemoryLimit(limit)
	logger.Debug("memory limit set", "bytes", limit)
}

// newLogger logs to a batch over w; the caller flushes it at exit.
func newLogger(cfg *config.Config, level slog.Leveler, w *batchWriter) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if cfg.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(flushingHandler{h, w})
}

func opsHandler(ready func() (bool, string), metrics, backchannelLogout http.Handler, withPprof bool, pingPath, readyPath string) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(backchannel.Path, backchannelLogout)
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	healthz := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }
	readyz := func(w http.ResponseWriter, _ *http.Request) {
		if ok, why := ready(); !ok {
			http.Error(w, why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	}
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", readyz)
	// oauth2-proxy's ping_path and ready_path, for probes written for it.
	if pingPath != "" && pingPath != "/healthz" {
		mux.HandleFunc("GET "+pingPath, healthz)
	}
	if readyPath != "" && readyPath != "/readyz" && readyPath != pingPath {
		mux.HandleFunc("GET "+readyPath, readyz)
	}
	mux.Handle("GET /metrics", metrics)
	return mux
}
