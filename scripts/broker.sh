#!/usr/bin/env bash
# broker.sh makes sure the test dependencies are present: a RabbitMQ broker
# answering on 127.0.0.1:5672 (guest/guest) with its management API on
# 127.0.0.1:15672 (used by `hypha services` and `hypha dlq`), and Debian's
# python3-kombu importable by /usr/bin/python3 (used by the nameko interop tests).
# It is idempotent and returns quickly when everything is already in place.
set -euo pipefail

HOST=127.0.0.1
PORT=5672

log() { printf 'broker.sh: %s\n' "$*"; }
die() { printf 'broker.sh: error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

answers() { timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$PORT" 2>/dev/null; }

apt_updated=0
apt_install() {
	if [ "$apt_updated" -eq 0 ]; then
		log "apt-get update"
		apt-get update -qq
		apt_updated=1
	fi
	log "apt-get install $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_rabbitmq() {
	if answers; then
		log "RabbitMQ answers on $HOST:$PORT"
		return
	fi
	if ! command -v rabbitmq-server >/dev/null 2>&1; then
		if is_root && command -v apt-get >/dev/null 2>&1; then
			apt_install rabbitmq-server
		else
			die "RabbitMQ is not running and not installed; install it (Debian/Ubuntu: sudo apt-get install -y rabbitmq-server) and start it (sudo rabbitmq-server -detached)"
		fi
	fi
	# The Debian package may have started the service on install; a node left
	# running with its app stopped (an interrupted fault test) needs start_app.
	if ! answers; then
		if timeout 20 rabbitmqctl -q ping >/dev/null 2>&1; then
			log "RabbitMQ node is up but its app is stopped: rabbitmqctl start_app"
			timeout 60 rabbitmqctl -q start_app || true
		else
			log "starting rabbitmq-server"
			rabbitmq-server -detached || true
		fi
	fi
	log "waiting for RabbitMQ to start"
	timeout 120 rabbitmqctl -q await_startup ||
		die "RabbitMQ did not start within 120s; see /var/log/rabbitmq/"
	for _ in $(seq 1 30); do
		if answers; then
			log "RabbitMQ answers on $HOST:$PORT"
			return
		fi
		sleep 1
	done
	die "RabbitMQ started but does not answer on $HOST:$PORT"
}

management_answers() { timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/15672" 2>/dev/null; }

# ensure_management enables the management plugin; enabling a plugin on a
# running node starts it there without restarting the node.
ensure_management() {
	if management_answers; then
		log "the management API answers on $HOST:15672"
		return
	fi
	log "rabbitmq-plugins enable rabbitmq_management"
	timeout 60 rabbitmq-plugins -q enable rabbitmq_management >/dev/null ||
		die "could not enable the management plugin (rabbitmq-plugins enable rabbitmq_management)"
	for _ in $(seq 1 30); do
		if management_answers; then
			log "the management API answers on $HOST:15672"
			return
		fi
		sleep 1
	done
	die "the management plugin is enabled but nothing answers on $HOST:15672"
}

ensure_kombu() {
	if /usr/bin/python3 -c 'import kombu' 2>/dev/null; then
		log "python3-kombu is importable"
		return
	fi
	if is_root && command -v apt-get >/dev/null 2>&1; then
		apt_install python3-kombu
		/usr/bin/python3 -c 'import kombu' || die "python3-kombu installed but 'import kombu' fails"
		log "python3-kombu is importable"
		return
	fi
	msg="python3-kombu is missing; install it (Debian/Ubuntu: sudo apt-get install -y python3-kombu)"
	if [ "${CI:-}" = "true" ]; then
		die "$msg"
	fi
	log "warning: $msg"
}

ensure_rabbitmq
ensure_management
ensure_kombu
