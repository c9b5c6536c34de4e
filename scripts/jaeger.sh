#!/usr/bin/env bash
# jaeger.sh builds and runs a local Jaeger (v2, all-in-one, in-memory) for
# looking at Hypha's traces by hand.
#
#   scripts/jaeger.sh build   build bin/jaeger from source (tools/jaeger module);
#                             skipped while bin/jaeger is newer than
#                             tools/jaeger/go.mod and go.sum
#   scripts/jaeger.sh start   build, then start bin/jaeger in the background
#                             (pid in bin/jaeger.pid, log in bin/jaeger.log) and
#                             wait up to 60s for the query API to answer
#   scripts/jaeger.sh stop    stop the instance started by `start`
#   scripts/jaeger.sh status  say whether it runs
#
# Every command is idempotent. Jaeger listens on 127.0.0.1 only (see
# tools/jaeger/config.yaml): OTLP gRPC 4317, OTLP HTTP 4318, query API and
# UI 16686, query gRPC 16685, health check 13133. A source build serves a
# placeholder page instead of the real UI; the JSON API
# (http://127.0.0.1:16686/api/...) works.
#
# Tests do not use start/stop: internal/jaegertest runs `build` and then
# starts the binary as a child process of the test.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS=$ROOT/tools/jaeger
BIN=$ROOT/bin/jaeger
PIDFILE=$ROOT/bin/jaeger.pid
LOGFILE=$ROOT/bin/jaeger.log
CONFIG=$TOOLS/config.yaml
QUERY=http://127.0.0.1:16686
WAIT=60

log() { printf 'jaeger.sh: %s\n' "$*"; }
die() { printf 'jaeger.sh: error: %s\n' "$*" >&2; exit 1; }

answers() { curl -fsS -o /dev/null --max-time 2 "$QUERY/api/services" 2>/dev/null; }
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# running prints the pid from the pid file when that process is alive and is
# our bin/jaeger (not a recycled pid).
running() {
	[ -f "$PIDFILE" ] || return 1
	local pid
	pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	if [ -r "/proc/$pid/cmdline" ]; then
		tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$BIN" || return 1
	fi
	echo "$pid"
}

build() {
	if [ -x "$BIN" ] && [ "$BIN" -nt "$TOOLS/go.sum" ] && [ "$BIN" -nt "$TOOLS/go.mod" ]; then
		log "$BIN is up to date"
		return
	fi
	command -v go >/dev/null 2>&1 || die "go is not installed"
	log "building $BIN (Jaeger from source; the first build takes minutes)"
	mkdir -p "$ROOT/bin"
	local start=$SECONDS
	(cd "$TOOLS" && GOWORK=off go build -o "$BIN" github.com/jaegertracing/jaeger/cmd/jaeger) ||
		die "building Jaeger failed (it needs the Go module proxy, or the modules in the module cache)"
	# go build leaves the old mtime when nothing changed; mark it fresh.
	touch "$BIN"
	log "built $BIN in $((SECONDS - start))s"
}

start() {
	local pid
	if pid=$(running); then
		log "already running (pid $pid), query API $QUERY"
		return
	fi
	rm -f "$PIDFILE"
	if answers; then
		die "something else already answers on $QUERY (a Jaeger not started by this script?); stop it first"
	fi
	for port in 4317 4318 16685 16686 13133; do
		if port_open "$port"; then
			die "port 127.0.0.1:$port is already in use; Jaeger needs 4317 4318 16685 16686 13133"
		fi
	done
	build
	command -v curl >/dev/null 2>&1 || die "curl is needed to check the query API"
	log "starting $BIN --config $CONFIG (log: $LOGFILE)"
	# setsid: the server outlives this script and the calling terminal.
	setsid "$BIN" --config "$CONFIG" </dev/null >"$LOGFILE" 2>&1 &
	pid=$!
	echo "$pid" >"$PIDFILE"
	local deadline=$((SECONDS + WAIT))
	while [ $SECONDS -lt $deadline ]; do
		if ! kill -0 "$pid" 2>/dev/null; then
			rm -f "$PIDFILE"
			tail -n 30 "$LOGFILE" >&2 || true
			die "Jaeger exited during startup; see $LOGFILE"
		fi
		if answers && port_open 4318 && port_open 4317; then
			log "Jaeger runs (pid $pid): OTLP gRPC 127.0.0.1:4317, OTLP HTTP http://127.0.0.1:4318, query API $QUERY"
			return
		fi
		sleep 0.5
	done
	tail -n 30 "$LOGFILE" >&2 || true
	stop
	die "Jaeger did not answer on $QUERY/api/services within ${WAIT}s; see $LOGFILE"
}

stop() {
	local pid
	if ! pid=$(running); then
		rm -f "$PIDFILE"
		log "not running"
		return
	fi
	log "stopping pid $pid"
	kill -TERM "$pid" 2>/dev/null || true
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.2
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "pid $pid did not stop within 10s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$PIDFILE"
	log "stopped"
}

status() {
	local pid
	if pid=$(running); then
		log "running (pid $pid), query API $QUERY"
	else
		log "not running"
		return 1
	fi
}

case "${1:-}" in
build) build ;;
start) start ;;
stop) stop ;;
status) status ;;
*)
	echo "usage: $0 build|start|stop|status" >&2
	exit 2
	;;
esac
