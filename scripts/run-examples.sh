#!/usr/bin/env bash
# run-examples.sh runs the examples against the broker of config.yaml (AMQP_URI
# overrides it; default amqp://guest:guest@localhost:5672/): it builds
# examples/calculator, examples/users, examples/orders, examples/mailer,
# examples/gateway and examples/client into a temporary directory, starts the
# five services in the background with their output prefixed "[calculator] ",
# "[users] ", "[orders] ", "[mailer] " and "[gateway] " (the gateway serving
# HTTP on GATEWAY_ADDRESS, default 127.0.0.1:8000), runs the client, which
# calls the gateway over HTTP too, then stops every service with
# SIGTERM and waits for it, whatever happened (also on error or Ctrl-C). It
# exits with the client's status. `make run-rabbitmq` calls it after scripts/broker.sh.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

GATEWAY_ADDRESS=${GATEWAY_ADDRESS:-127.0.0.1:8000} # where examples/gateway serves HTTP
STOP_TIMEOUT=20 # seconds a service gets to stop after SIGTERM (GRACE_PERIOD is 10) before SIGKILL

log() { printf 'run-examples: %s\n' "$*"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/hypha-examples.XXXXXX")
names=()   # services started, in order
svc_pids=() # their process ids
pfx_pids=() # the processes prefixing their output

# prefix copies stdin to stdout, each line starting with "[name] ". It ignores
# SIGINT and SIGTERM and ends at EOF, when its service has exited, so that a
# service stopping never writes into a closed pipe.
prefix() {
	local line
	trap '' INT TERM
	while IFS= read -r line || [ -n "$line" ]; do
		printf '[%s] %s\n' "$1" "$line"
	done
}

# start runs the binary named $1 in the background, its stdout and stderr
# prefixed through a FIFO, so that $! is the service itself.
start() {
	local name=$1 fifo="$tmp/$1.out"
	mkfifo "$fifo"
	prefix "$name" <"$fifo" &
	pfx_pids+=("$!")
	"$tmp/$name" >"$fifo" 2>&1 &
	svc_pids+=("$!")
	names+=("$name")
	log "started $name (pid $!)"
}

# stop sends SIGTERM to service number $1 and waits for it, escalating to
# SIGKILL after STOP_TIMEOUT seconds.
stop() {
	local name=${names[$1]} pid=${svc_pids[$1]} status i
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid"
		status=$?
		log "$name had already exited (status $status)"
		return
	fi
	log "stopping $name (SIGTERM to pid $pid)"
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "$name did not stop within ${STOP_TIMEOUT}s; sending SIGKILL"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid"
	status=$?
	if [ "$status" -eq 0 ]; then
		log "$name stopped"
	else
		log "warning: $name stopped with status $status"
	fi
}

cleanup() {
	local rc=$? i
	set +e
	trap '' INT TERM
	# Stop in reverse order: the gateway calls users and calculator, mailer
	# handles orders' events, users calls calculator.
	for ((i = ${#svc_pids[@]} - 1; i >= 0; i--)); do
		stop "$i"
	done
	for i in "${pfx_pids[@]}"; do
		wait "$i"
	done
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

log "building examples into $tmp"
go build -o "$tmp/" ./examples/calculator ./examples/users ./examples/orders ./examples/mailer ./examples/gateway ./examples/client

start calculator
start users
start orders
start mailer
HTTP_ADDRESS=$GATEWAY_ADDRESS start gateway

log "running the client"
status=0
GATEWAY_URL="http://$GATEWAY_ADDRESS" "$tmp/client" || status=$?
if [ "$status" -eq 0 ]; then
	log "client succeeded"
else
	log "client failed (status $status)"
fi
exit "$status"
