package config

import (
	"net"
	"strings"
)

// buildServer: listeners, logs, caches and the session store.
func (r *resolver) buildServer(c *Config) {
	c.GRPCAddress = r.address("grpc_address")
	c.HTTPAddress = r.address("http_address")
	if m := r.str("metrics_address"); m != "" {
		c.MetricsAddress = r.address("metrics_address")
	}
	c.PingPath, c.ReadyPath = r.str("ping_path"), r.str("ready_path")
	for key, p := range map[string]string{"ping_path": c.PingPath, "ready_path": c.ReadyPath} {
		if p != "" && (p[0] != '/' || strings.HasPrefix(p, "/oauth2/") || strings.HasPrefix(p, "/debug/")) {
			r.fail(key, "%q: want a path such as /ping, outside /oauth2/ and /debug/", p)
		}
	}
	c.IdPTLS = r.idpTLS(c)
	c.HTTPReadTimeout = r.duration("http_read_timeout")
	c.HTTPIdleTimeout = r.duration("http_idle_timeout")
	if c.HTTPReadTimeout <= 0 {
		r.fail("http_read_timeout", "must be positive (e.g. 10s): without it a slow client holds a connection forever")
	}
	if c.HTTPIdleTimeout <= 0 {
		r.fail("http_idle_timeout", "must be positive (e.g. 30s): without it idle connections are held forever")
	}
	c.SessionCacheSize = r.integer("session_cache_max_bytes")
	c.EnablePprof = r.boolean("enable_pprof")
	if err := c.LogLevel.UnmarshalText([]byte(r.str("log_level"))); err != nil {
		r.fail("log_level", "want debug, info, warn or error, got %q", r.str("log_level"))
	}
	c.LogFormat = r.str("log_format")
	if c.LogFormat != "text" && c.LogFormat != "json" {
		r.fail("log_format", "want text or json, got %q", c.LogFormat)
	}
	c.SessionStore = r.str("session_store_type")
	c.Redis = r.redisOptions()
	c.RedisL1TTL = r.duration("redis_l1_ttl")
	c.RedisMinReplicas = int(r.integer("redis_min_replicas"))
	if c.RedisMinReplicas < 0 {
		r.fail("redis_min_replicas", "must be 0 or more")
	}
	switch {
	case c.SessionStore != "cookie" && c.SessionStore != "redis":
		r.fail("session_store_type", "want cookie or redis, got %q", c.SessionStore)
	case c.SessionStore == "redis" && c.Redis == nil:
		r.fail("session_store_type", "redis needs redis_url, redis_sentinel_addresses or redis_cluster_addresses")
	}
}

// buildTelemetry: tracing.
func (r *resolver) buildTelemetry(c *Config) {
	c.OTLPEndpoint = r.str("otlp_endpoint")
	if c.OTLPEndpoint != "" {
		if _, _, err := net.SplitHostPort(c.OTLPEndpoint); err != nil {
			r.fail("otlp_endpoint", "%q is not host:port (e.g. otel-collector:4317)", c.OTLPEndpoint)
		}
	}
	c.OTLPInsecure = r.boolean("otlp_insecure")
	c.TraceSampleRatio = r.float("trace_sample_ratio", 0, 1)
}
