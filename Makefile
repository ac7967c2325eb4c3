# gitca — two commands matter: `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
export SOPS_DISABLE_VERSION_CHECK := 1
GOBIN := $(shell $(GO) env GOPATH)/bin
export PATH := $(GOBIN):$(PATH)
GITCA_CACHE_DIR ?= $(HOME)/.cache/gitca
export GITCA_CACHE_DIR

.PHONY: all build demo test test-unit test-alerts test-conformance e2e lint bench tools clean

all: build

build:
	$(GO) build -o bin/gitca ./cmd/gitca

## demo: render examples/kubeadm into a temporary state with a fresh age key, show plan and tree
demo: build
	@hack/demo.sh

## tools: install what the tests need (sops, kustomize, openssl, etcd, kubectl, staticcheck, govulncheck)
tools:
	@hack/install-tools.sh

## test: every unit and integration test, with the race detector, plus lint
test: tools lint test-unit test-alerts test-conformance

test-unit:
	$(GO) test -race -count=1 ./...
	@# The plan's property test in full (300 random edit sequences); under
	@# -race above it runs 20.
	$(GO) test -count=1 -run TestPlanIsTheWholeTruth ./render/

## test-alerts: examples/deploy/prometheusrule.yaml parsed and evaluated by Prometheus itself (its own module, hack/alerts)
test-alerts:
	cd hack/alerts && $(GO) vet ./... && $(GO) test -count=1 ./...

## test-conformance: every certificate the example topologies issue, linted by zlint (its own module, hack/conformance)
test-conformance:
	cd hack/conformance && $(GO) vet ./... && staticcheck ./... && $(GO) test -count=1 ./...

## e2e: boot a real etcd + kube-apiserver from an exported PKI and sync the state into it with
## real Flux controllers (builds kube-apiserver once, ~15 min, and Flux, ~10 min; cached)
e2e: tools build
	hack/build-kube-apiserver.sh
	hack/build-flux.sh
	GITCA_E2E=1 $(GO) test -count=1 -v -timeout 30m ./e2e/...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^hack/')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	staticcheck ./...
	hack/vulncheck.sh

## bench: benchmarks (results in BENCHMARKS.md)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
