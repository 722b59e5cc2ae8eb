# zitadel-ext-authz — see README.md.
GO       ?= go
BIN      := bin
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X main.version=$(VERSION)

.PHONY: all build demo image test test-short vet bench bench-micro fuzz proto clean

all: build

## build: the server binary (bin/zitadel-ext-authz)
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/zitadel-ext-authz ./cmd/zitadel-ext-authz

## demo: dev IdP + server + Envoy-compatible front proxy + echo upstream on 127.0.0.1
demo: build
	$(GO) build -o $(BIN)/demo ./integration/demo
	$(BIN)/demo --server $(BIN)/zitadel-ext-authz

## image: the container image zitadel-ext-authz:$(VERSION) (needs Docker)
IMAGE ?= zitadel-ext-authz
image:
	@command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 || { echo "make image needs a running Docker engine (docker info failed)"; exit 1; }
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) -t $(IMAGE):latest .

## test: vet, staticcheck, every test (unit, end-to-end through the Envoy emulator, Chromium, Redis), each fuzz target for 10 s
test: vet
	$(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) --no-print-directory fuzz FUZZTIME=10s

## test-short: unit tests only
test-short:
	$(GO) test -count=1 ./authz/... ./oidcflow/... ./envoy/... ./cmd/...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

## bench: load each scenario with h2load against the server and the bare floor (see BENCHMARKS.md)
BENCH_DURATION ?= 2s
bench: build
	$(GO) build -o $(BIN)/floor ./bench/floor
	$(GO) build -o $(BIN)/bench ./bench/run
	@command -v h2load >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nghttp2-client; \
	  else echo "make bench needs h2load: sudo apt-get install -y nghttp2-client"; exit 1; fi; }
	$(BIN)/bench --server $(BIN)/zitadel-ext-authz --floor $(BIN)/floor --duration $(BENCH_DURATION)
	$(MAKE) --no-print-directory bench-micro

## bench-micro: go test -bench for Check per scenario (ns/op, allocs/op)
bench-micro:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./authz/...

## fuzz: run each fuzz target for FUZZTIME (default 30s); seeds in */testdata/fuzz
FUZZTIME ?= 30s
FUZZ_TARGETS := FuzzCheck:./authz FuzzReturnURL:./authz FuzzCodecOpen:./authz/session FuzzJarRead:./authz/session \
	FuzzReadState:./authz/session FuzzIdentityHeaders:./oidcflow FuzzLogoutToken:./oidcflow
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
