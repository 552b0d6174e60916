# cvatbench — see README.md.
GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo none)
DATE     ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS  := -X main.version=$(VERSION) -X main.commit=$(COMMIT) -X main.date=$(DATE)
BIN      := bin/cvatbench
PYTHON   ?= .venv/bin/python
# Freely licensed photographs for image_quality sweeps, fetched once by `make photos` (scripts/photos.sh).
PHOTOS   ?= $(HOME)/.cache/cvatbench/photos-skimage-0.25.2
# Prometheus and Pushgateway for the metrics integration test, when not on PATH (scripts/promtools.sh).
TOOLS    ?= $(HOME)/.cache/cvatbench/bin

.PHONY: build run test gotest conformance kubecheck bench lint fuzz fuzz-ci soak soak-sim clean venv replica photos

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/cvatbench

# The main job: every strategy against the embedded CVAT 2.73 emulator.
run: build
	./$(BIN) run

test: build lint photos gotest conformance kubecheck

gotest:
	@eval "$$(scripts/promtools.sh $(TOOLS))" && \
	echo "metrics test: prometheus $$CVATBENCH_PROMETHEUS, pushgateway $$CVATBENCH_PUSHGATEWAY_BIN" && \
	echo "CVATBENCH_PHOTOS=$(PHOTOS) $(GO) test -race -count=1 -timeout 6m ./..." && \
	CVATBENCH_PHOTOS=$(PHOTOS) $(GO) test -race -count=1 -timeout 6m ./...

# deploy/kubernetes parsed strictly into the Kubernetes API types; a module of its own, so k8s.io/api stays out
# of the product's dependencies.
kubecheck:
	cd deploy/kubernetes/validate && $(GO) test -count=1 ./...

# The sweep test and the README's sweep use these; the first call downloads 15 MB from PyPI.
photos:
	@scripts/photos.sh $(PHOTOS) >/dev/null

# The official SDK and CLI come from PyPI into .venv on first use, so `make test` needs no set-up step.
conformance: build .venv/.installed
	CVATBENCH_BIN=$(CURDIR)/$(BIN) $(PYTHON) -m pytest -q conformance

.venv/.installed: conformance/requirements.txt
	python3 -m venv .venv
	.venv/bin/pip install -q --disable-pip-version-check -r conformance/requirements.txt
	@touch $@

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null; find . -name '*.go' -not -path './.venv/*' | sed 's|^\./||') | sort -u); \
	if [ -n "$$out" ]; then echo "gofmt needed: $$out" >&2; exit 1; fi
	$(GO) vet ./...
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run go mod tidy" >&2; $(GO) mod tidy -diff >&2; exit 1; }

clean:
	rm -rf bin

# The Python environment with the official cvat-sdk and cvat-cli for `make conformance`.
venv: .venv/.installed

# The real SDK against the emulator vs our sdk replica (issue: replica check); not part of `make test`.
replica: build
	$(PYTHON) conformance/replica.py results/replica.json --bin $(BIN)

FUZZTIME    ?= 30s
FUZZMINTIME ?= 10s
# package:target pairs; go test -fuzz runs one target of one package at a time.
FUZZ_TARGETS := ./cvat:FuzzRequestIDPath ./cvat:FuzzAPIErrorDecoding ./strategies:FuzzWebhookPayload \
                ./report:FuzzReadTrials ./bench/record:FuzzDecodeTrialMatchesStd ./cvatsim:FuzzUploadParsing

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz: $$name in $$pkg for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINTIME) $$pkg; \
	done

# CI-brief variant: a few seconds per target on top of the seed corpora (which `make gotest` already runs).
fuzz-ci: FUZZTIME = 5s
fuzz-ci: FUZZMINTIME = 1s
fuzz-ci: fuzz

# Leak check under injected faults: 2,000 trials at concurrency 50 (scripts/soak.sh); not part of `make test`.
# soak-sim: 20 runs of 1,000 trials against one standalone emulator, its RSS after each (scripts/soak-sim.sh).
soak: build
	CVATBENCH_BIN=$(CURDIR)/$(BIN) scripts/soak.sh

soak-sim: build
	CVATBENCH_BIN=$(CURDIR)/$(BIN) scripts/soak-sim.sh
