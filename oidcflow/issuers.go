package oidcflow

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// Issuers shares what is learned from an OpenID Provider, its discovery
// document and its JWKS, among the Providers that use it: when one server
// serves many apps (one Provider each) on one ZITADEL, discovery is fetched
// once, and a key rotation costs one JWKS fetch for all of them. Its size
// is the number of distinct issuers configured; Retain drops the others.
type Issuers struct {
	client *http.Client
	now    func() time.Time

	mu    sync.Mutex
	byURL map[string]*issuer
}

// issuer is one issuer's shared state. mu is held during discovery, so
// Providers discovering the same issuer at once share one fetch.
type issuer struct {
	mu   sync.Mutex
	doc  *discoveryDocument // nil until discovery succeeds
	keys *keySet
}

// NewIssuers returns an empty registry whose fetches go through client.
func NewIssuers(client *http.Client, now func() time.Time) *Issuers {
	if now == nil {
		now = time.Now
	}
	return &Issuers{client: client, now: now, byURL: map[string]*issuer{}}
}

// WithIssuers shares discovery and the JWKS with the other Providers of
// is (their HTTP client and clock are is's).
func WithIssuers(is *Issuers) Option { return func(p *Provider) { p.issuers = is } }

func (is *Issuers) get(url string) *issuer {
	is.mu.Lock()
	defer is.mu.Unlock()
	st, ok := is.byURL[url]
	if !ok {
		st = &issuer{}
		is.byURL[url] = st
	}
	return st
}

// Retain forgets every issuer not in urls (apps were removed by a reload).
func (is *Issuers) Retain(urls []string) {
	keep := make(map[string]bool, len(urls))
	for _, u := range urls {
		keep[u] = true
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	for u := range is.byURL {
		if !keep[u] {
			delete(is.byURL, u)
		}
	}
}

// Len is the number of issuers known.
func (is *Issuers) Len() int {
	is.mu.Lock()
	defer is.mu.Unlock()
	return len(is.byURL)
}

// discover returns the issuer's discovery document and loaded key set,
// fetching them with fetch the first time (or until a fetch succeeds).
func (is *Issuers) discover(ctx context.Context, url string, fetch func(context.Context) (*discoveryDocument, error)) (*discoveryDocument, *keySet, error) {
	st := is.get(url)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.doc != nil {
		return st.doc, st.keys, nil
	}
	doc, err := fetch(ctx)
	if err != nil {
		return nil, nil, err
	}
	keys := newKeySet(is.client, doc.JwksURI, is.now)
	if _, err := keys.load(ctx); err != nil {
		return nil, nil, err
	}
	st.doc, st.keys = doc, keys
	return doc, keys, nil
}
