// Package redisstore is the shared engine of several replicas
// (session_store_type = redis, or back-channel logout with redis_url): it
// stores encrypted sessions with their lifetime, indexes them by the IdP's
// session id and subject, holds the cross-replica refresh lock, records
// back-channel logouts and used logout-token ids, and tells every replica
// over pub/sub to drop a session from its L1 cache. It works with Redis
// and Valkey through go-redis: one server, Sentinel, or Cluster.
//
// Cluster: no operation needs two keys in one slot. Writes that touch
// several keys (a session and its indexes) go out as one pipeline, which
// go-redis splits by node and sends to all of them at once, so a login
// costs one round trip in every mode. What the single server's
// transaction used to give is kept by ordering and by failing whole: see
// Save. Anything that lists keys visits every master (eachMaster).
// Invalidations are classic pub/sub, which a cluster forwards to every
// node, so a replica hears them whichever node it subscribed on.
package redisstore
