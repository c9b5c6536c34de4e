# Hypha build and test entry points. `make test` is the one test command
# (CI runs it through .ci/run).

.PHONY: hypha testreport broker vet staticcheck fmt-check test test-faults cluster cluster-stop fuzz bench run run-rabbitmq jaeger jaeger-start jaeger-stop

# broker makes sure RabbitMQ answers on 127.0.0.1:5672 and python3-kombu is installed.
broker:
	bash scripts/broker.sh

# The hypha command (cmd/hypha) is a module of its own, so that its
# dependencies stay out of programs that import only the framework; go.work
# ties it to the framework's checkout. ./... from the root covers the root
# module only, so each target names it too.
CLI := ./cmd/hypha/...

# hypha builds the hypha command from this checkout into bin/hypha (go.work
# ties it to the framework here); `go install .../cmd/hypha@latest` needs a
# published version.
hypha:
	go build -o bin/hypha ./cmd/hypha

# vet runs go vet on every package, the fault tests (build tag faults) included,
# and on the bench module (outside go.work), so that a change to the framework's
# dependencies that the bench's go.sum lacks fails here, not at make bench.
vet:
	go vet -tags faults ./... $(CLI)
	cd bench && GOWORK=off go vet ./...

# staticcheck runs the staticcheck tool pinned in go.mod, on the fault tests too.
staticcheck:
	go tool staticcheck -tags faults ./... $(CLI)

# fmt-check fails, listing the files, when any Go file is not gofmt-clean.
fmt-check:
	@out=$$(find . -name '*.go' -not -path './.*' -not -path '*/testdata/*' -exec gofmt -l {} +) || exit 1; \
	if [ -n "$$out" ]; then echo "gofmt -w needed on:"; echo "$$out"; exit 1; fi

# Each go test run goes through bin/testreport (internal/cmd/testreport): it
# prints what go test prints, then the tests that skipped, by package, and
# fails the run when any did. A skip is a test that did not run (no
# RabbitMQ, no python3-kombu, no Jaeger, the fault tests' node did not
# start) and go test alone does not show it. HYPHA_ALLOW_SKIPS=1 make test
# still lists them but accepts them. A failure of go test keeps its status.
TESTREPORT := bin/testreport

# testreport builds bin/testreport (a cached build after the first).
testreport:
	go build -o $(TESTREPORT) ./internal/cmd/testreport

# test runs all checks, builds Jaeger for the end-to-end tracing test (about
# 10 minutes the first time, cached after), then every test with the race
# detector, then every fuzz target briefly, then, alone, the fault tests.
test: broker jaeger fmt-check vet staticcheck testreport
	$(TESTREPORT) go test -json -race -count=1 -timeout 8m ./...
	$(TESTREPORT) go test -json -race -count=1 -timeout 3m $(CLI)
	$(MAKE) fuzz
	$(MAKE) test-faults

# test-faults runs the fault tests (build tag faults) serially, on RabbitMQ
# nodes of their own that scripts/cluster.sh starts beside the default one and
# removes after: a single node they stop, start and squeeze, and a 3-node
# cluster whose nodes the failover test kills. The default node is never
# touched. cluster: start the 3-node cluster by hand (cluster-stop removes it).
# Their output is printed in full (testreport -v, as go test -v).
test-faults: broker testreport
	$(TESTREPORT) -v go test -json -race -count=1 -tags faults -p 1 -timeout 9m -run . ./faults/

cluster:
	bash scripts/cluster.sh start

cluster-stop:
	bash scripts/cluster.sh stop

# fuzz runs every fuzz target (func FuzzXxx in any package) for FUZZTIME
# each, default 10s, about 2 minutes in all; a failing input is written to
# the package's testdata/fuzz/. FUZZTIME=5m make fuzz digs deeper.
fuzz:
	bash scripts/fuzz.sh

# bench measures calls of add for Hypha, hand-written amqp091-go and watermill
# on the local RabbitMQ (a vhost of its own) and the embedded broker, and
# writes bench/results.md and bench/results.svg; about 5 minutes. It is its
# own module (bench/go.mod), so its peers stay out of Hypha's go.mod, and is
# not part of make test. BENCHFLAGS passes flags, e.g. BENCHFLAGS=-duration=1s.
# It is outside go.work (its replace of the framework is its own), so GOWORK=off.
bench: broker
	cd bench && GOWORK=off go run ./cmd/rpcbench $(BENCHFLAGS)

# run runs the example services in one process on the embedded broker (no
# RabbitMQ needed; AMQP_URI in the environment picks another) and prints the tour.
run:
	go run ./examples/quickstart

# run-rabbitmq runs the examples as separate processes on the local RabbitMQ.
run-rabbitmq: broker
	bash scripts/run-examples.sh

# jaeger builds bin/jaeger (Jaeger v2 from source, version pinned in
# tools/jaeger/go.mod); a no-op while bin/jaeger is newer than go.mod/go.sum.
# internal/jaegertest uses that binary.
jaeger:
	bash scripts/jaeger.sh build

# jaeger-start runs Jaeger in the background on 127.0.0.1 (OTLP 4317/4318,
# query API http://127.0.0.1:16686); jaeger-stop stops it. Stop it before
# tests that use internal/jaegertest: they need the same ports.
jaeger-start:
	bash scripts/jaeger.sh start

jaeger-stop:
	bash scripts/jaeger.sh stop
