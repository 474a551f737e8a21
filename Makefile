# irsakit — make test (full suite), make demo (the example against the local
# stand-ins), make images (the examples' container images), make bench,
# make lint.
SHELL := /bin/bash
GO ?= go

STATICCHECK_VERSION := v0.8.2
GOVULNCHECK_VERSION := v1.9.0
TEST_TIMEOUT ?= 45m
BENCH ?= .
BENCHTIME ?= 1s

.PHONY: all test deps tools vet fmt-check tidy-check test-go test-examples bench lint demo images clean

all: test

## deps: install missing system packages (root) or say which are needed
deps:
	@bash scripts/ensure-deps.sh

## tools: build the pinned third-party test peers (versitygw, Vault's aws
## auth method) into .tools/bin
tools: deps
	@if [ -x tools/install-versitygw.sh ]; then bash tools/install-versitygw.sh; fi
	@if [ -x tools/install-vault.sh ]; then bash tools/install-vault.sh; fi

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

## tidy-check: fails when go mod tidy would change the library's, the
## examples' or the tools' go.mod/go.sum
tidy-check:
	@for m in . examples tools tools/vault; do \
	  [ -f $$m/go.mod ] || continue; \
	  if ! (cd $$m && $(GO) mod tidy -diff >/dev/null); then \
	    echo "go.mod in $$m is not tidy: run (cd $$m && go mod tidy) and commit the result"; \
	    (cd $$m && $(GO) mod tidy -diff) | head -40; exit 1; \
	  fi; \
	done

vet:
	$(GO) vet ./...

test-go:
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...

test-examples:
	@if [ -f examples/go.mod ]; then cd examples && $(GO) vet ./... && $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) ./...; fi

## test: everything that keeps main honest
test: deps tools fmt-check tidy-check vet test-go test-examples

## bench: benchmarks, with ratios against the plain SDK way in the same run
bench: deps tools
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -benchtime $(BENCHTIME) -timeout 60m ./...

## lint: vet + staticcheck + govulncheck (govulncheck needs network access to its database)
lint:
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	cd examples && $(GO) vet ./... && $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	$(GO) run golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION) ./...
	cd examples && $(GO) run golang.org/x/vuln/cmd/govulncheck@$(GOVULNCHECK_VERSION) ./...

## demo: run the example backend against the local stand-ins; needs Go,
## PostgreSQL and redis-server, nothing else (scripts/demo.sh names what is
## missing and installs nothing)
demo:
	@bash scripts/demo.sh

## images: build the examples' container images with Docker, one Dockerfile
## target each (mcp-backend, secret-reader, s3-list; irsactl in every one)
IMAGE_REPO ?= ghcr.io/irsakit
IMAGE_TAG ?= latest
IMAGES := mcp-backend secret-reader s3-list
images:
	@command -v docker >/dev/null 2>&1 || { echo "make images needs docker (or build with: docker build --target NAME .)" >&2; exit 1; }
	@for t in $(IMAGES); do \
	  echo "== $(IMAGE_REPO)/$$t:$(IMAGE_TAG)"; \
	  docker build --target $$t -t $(IMAGE_REPO)/$$t:$(IMAGE_TAG) . || exit 1; \
	done

clean:
	rm -rf .tools bin
