package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/url"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisOptions reads the redis_* keys (and oauth2-proxy's redis_use_*
// switches) into the options of the one Redis the session store uses: a
// single server (redis_url), Sentinel or Cluster. Nil when none is set.
func (r *resolver) redisOptions() *redis.UniversalOptions {
	u := r.str("redis_url")
	sentinels, cluster, user, password := r.redisNodes()
	if v, ok := r.o2pRaw("redis_use_sentinel"); ok && r.parseBool("redis_use_sentinel", v) && len(sentinels) == 0 {
		r.fail("redis_use_sentinel", "needs redis_sentinel_connection_urls (or redis_sentinel_addresses) and redis_sentinel_master_name")
	}
	if v, ok := r.o2pRaw("redis_use_cluster"); ok && r.parseBool("redis_use_cluster", v) && len(cluster) == 0 {
		r.fail("redis_use_cluster", "needs redis_cluster_connection_urls (or redis_cluster_addresses)")
	}
	set := 0
	for _, ok := range []bool{u != "", len(sentinels) > 0, len(cluster) > 0} {
		if ok {
			set++
		}
	}
	if set == 0 {
		return nil
	}
	if set > 1 {
		r.fail("redis_url", "set one of redis_url, redis_sentinel_addresses and redis_cluster_addresses")
		return nil
	}
	roots, ok := r.redisRoots()
	if !ok {
		return nil
	}
	var tlsConfig *tls.Config
	insecure := r.boolean("redis_insecure_skip_tls_verify")
	if insecure {
		r.warnings = append(r.warnings, "redis_insecure_skip_tls_verify: Redis' TLS certificate is NOT verified; anyone on the path can read and change sessions. Use redis_ca_file for a private CA instead")
	}
	if r.boolean("redis_use_tls") || strings.HasPrefix(sentinelOrClusterScheme(r), "rediss") {
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, InsecureSkipVerify: insecure}
	}
	switch {
	case u != "":
		return r.redisFromURL(u, roots, insecure)
	case len(sentinels) > 0:
		master := r.str("redis_sentinel_master_name")
		if master == "" {
			r.fail("redis_sentinel_master_name", "required with redis_sentinel_addresses")
		}
		return &redis.UniversalOptions{Addrs: sentinels, MasterName: master, Username: user, Password: password,
			SentinelPassword: r.str("redis_sentinel_password"), TLSConfig: tlsConfig}
	default:
		return &redis.UniversalOptions{Addrs: cluster, Username: user, Password: password, TLSConfig: tlsConfig, IsClusterMode: true}
	}
}

// redisNodes reads redis_sentinel_addresses and redis_cluster_addresses
// as host:port lists, with the user and password for them. oauth2-proxy's
// *_connection_urls are URLs (redis://[user[:password]@]host:port): their
// host:port counts, and their credentials when redis_username and
// redis_password set none.
func (r *resolver) redisNodes() (sentinels, cluster []string, user, password string) {
	sentinels, cluster = r.list("redis_sentinel_addresses"), r.list("redis_cluster_addresses")
	user, password = r.str("redis_username"), r.str("redis_password")
	for _, list := range []*[]string{&sentinels, &cluster} {
		for i, e := range *list {
			if !strings.Contains(e, "://") {
				continue
			}
			pu, err := url.Parse(e)
			if err != nil || pu.Host == "" {
				r.fail("redis_url", "%q is not a redis:// URL or host:port", redactUserinfo(e))
				continue
			}
			(*list)[i] = pu.Host
			if pu.User != nil {
				if user == "" {
					user = pu.User.Username()
				}
				if p, ok := pu.User.Password(); ok && password == "" {
					password = p
				}
			}
		}
	}
	return sentinels, cluster, user, password
}

// redisRoots reads redis_ca_file: the CAs to trust for TLS to Redis, nil
// for the system's; false after r.fail.
func (r *resolver) redisRoots() (*x509.CertPool, bool) {
	path := r.str("redis_ca_file")
	if path == "" {
		return nil, true
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		r.fail("redis_ca_file", "%v", err)
		return nil, false
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		r.fail("redis_ca_file", "%s holds no PEM certificate", path)
		return nil, false
	}
	return roots, true
}

// redisFromURL reads redis_url (redis:// or rediss://, whose scheme alone
// turns TLS on) with redis_ca_file's roots; nil after r.fail.
func (r *resolver) redisFromURL(u string, roots *x509.CertPool, insecure bool) *redis.UniversalOptions {
	o, err := redis.ParseURL(u)
	if err != nil {
		// url.Parse's errors quote the URL or a part of it, and the part
		// can be the password (redis://:pa/ss@h parses "pa" as a host
		// and complains of its port): say what to check instead.
		var ue *url.Error
		cause := err.Error()
		if errors.As(err, &ue) {
			cause = "it doesn't parse as a URL (percent-encode /, #, ? and @ in the user and password, and check the port)"
		}
		r.fail("redis_url", "%q is not a redis:// or rediss:// URL: %s", redactUserinfo(u), cause)
		return nil
	}
	if o.TLSConfig != nil {
		o.TLSConfig.RootCAs = roots
		o.TLSConfig.MinVersion = tls.VersionTLS12
		o.TLSConfig.InsecureSkipVerify = insecure
	} else if roots != nil {
		r.fail("redis_ca_file", "set, but redis_url is not rediss://")
		return nil
	}
	return &redis.UniversalOptions{Addrs: []string{o.Addr}, DB: o.DB, Username: o.Username, Password: o.Password, TLSConfig: o.TLSConfig}
}

// redactUserinfo masks what stands between "//" and "@" in a URL (its
// user and password), for error messages; it needs no valid URL.
func redactUserinfo(u string) string {
	i := strings.Index(u, "//")
	if i < 0 {
		return u
	}
	rest := u[i+2:]
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return u
	}
	return u[:i+2] + "***" + rest[at:]
}

// sentinelOrClusterScheme is the scheme of the first URL-form entry of
// redis_sentinel_addresses or redis_cluster_addresses ("rediss" turns TLS
// on, as in oauth2-proxy's connection URLs); "" when none is a URL.
func sentinelOrClusterScheme(r *resolver) string {
	for _, key := range []string{"redis_sentinel_addresses", "redis_cluster_addresses"} {
		for _, e := range r.list(key) {
			if scheme, _, ok := strings.Cut(e, "://"); ok {
				return scheme
			}
		}
	}
	return ""
}
