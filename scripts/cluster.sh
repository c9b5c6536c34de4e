#!/usr/bin/env bash
# cluster.sh runs extra RabbitMQ nodes on this machine beside the default one
# (rabbit@<host> on 5672), which it never touches: each node has its own name,
# AMQP and distribution ports, and data, log, config and plugin files under
# $HYPHA_CLUSTER_DIR (default /tmp/hypha-cluster).
#
#   cluster.sh start          3-node cluster hypha-c1..3@localhost, AMQP 5681-5683
#   cluster.sh start solo     a single node hypha-solo@localhost, AMQP 5684
#                             (the fault tests stop, start and squeeze it);
#                             with HYPHA_CLUSTER_TLS_DIR holding ca.pem,
#                             server.pem and server.key, also AMQPS on 5685
#                             (client certificates verified when given, and
#                             EXTERNAL logins by their common name)
#   cluster.sh stop [solo]    stop the nodes and delete their files
#   cluster.sh status [solo]  the nodes and whether they answer
#   cluster.sh kill N         SIGKILL node N of the cluster (1-3), as a crash would
#   cluster.sh boot N         start node N again; it rejoins the cluster
#   cluster.sh ctl N ARGS...  rabbitmqctl ARGS on node N (0 = solo)
#
# Every node has the user guest/guest, allowed from loopback. Run as root the
# nodes run as the rabbitmq user, with its Erlang cookie, as rabbitmqctl does.
# It installs rabbitmq-server through scripts/broker.sh when it is missing.
set -euo pipefail

DIR=${HYPHA_CLUSTER_DIR:-/tmp/hypha-cluster}
HOSTNAME_SHORT=localhost
SCRIPTS=$(cd "$(dirname "$0")" && pwd)

log() { printf 'cluster.sh: %s\n' "$*" >&2; }
die() { printf 'cluster.sh: error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# node N: name and ports. 1-3 are the cluster, 0 the solo node.
name_of() { if [ "$1" -eq 0 ]; then echo "hypha-solo@$HOSTNAME_SHORT"; else echo "hypha-c$1@$HOSTNAME_SHORT"; fi; }
port_of() { if [ "$1" -eq 0 ]; then echo 5684; else echo $((5680 + $1)); fi; }
dist_of() { echo $((20000 + $(port_of "$1"))); }
home_of() { echo "$DIR/$(name_of "$1" | cut -d@ -f1)"; }

answers() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

ensure_installed() {
	if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ] && ! command -v rabbitmq-server >/dev/null 2>&1; then
		bash "$SCRIPTS/broker.sh" >&2
	fi
}

bindir() {
	if [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
		echo /usr/lib/rabbitmq/bin
	else
		dirname "$(command -v rabbitmq-server)"
	fi
}

# as_owner runs a command as the user the nodes run as: rabbitmq when root
# (whose cookie rabbitmqctl uses then), else the caller.
as_owner() {
	if is_root && id rabbitmq >/dev/null 2>&1; then
		runuser -u rabbitmq -- env HOME=/var/lib/rabbitmq "$@"
	else
		"$@"
	fi
}

# node_env N: the environment of node N, as env arguments.
node_env() {
	local n=$1 home
	home=$(home_of "$n")
	echo RABBITMQ_CONF_ENV_FILE="$home/rabbitmq-env.conf" \
		RABBITMQ_NODENAME="$(name_of "$n")" \
		RABBITMQ_USE_LONGNAME=false \
		RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
		RABBITMQ_NODE_PORT="$(port_of "$n")" \
		RABBITMQ_DIST_PORT="$(dist_of "$n")" \
		RABBITMQ_CONFIG_FILE="$home/rabbitmq.conf" \
		RABBITMQ_ADVANCED_CONFIG_FILE="$home/advanced.config" \
		RABBITMQ_ENABLED_PLUGINS_FILE="$home/enabled_plugins" \
		RABBITMQ_MNESIA_BASE="$home/mnesia" \
		RABBITMQ_LOG_BASE="$home/log" \
		RABBITMQ_PID_FILE="$home/pid" \
		ERL_EPMD_ADDRESS=127.0.0.1
}

ctl() {
	local n=$1
	shift
	# shellcheck disable=SC2046
	as_owner env $(node_env "$n") timeout 60 "$(bindir)/rabbitmqctl" -n "$(name_of "$n")" "$@"
}

# write_files N NODES...: node N's config, joining the listed nodes.
write_files() {
	local n=$1 home i=1
	shift
	home=$(home_of "$n")
	mkdir -p "$home/mnesia" "$home/log"
	: >"$home/rabbitmq-env.conf"
	echo '[].' >"$home/enabled_plugins"
	echo '[].' >"$home/advanced.config"
	local tls=${HYPHA_CLUSTER_TLS_DIR:-}
	if [ "$n" -eq 0 ] && [ -n "$tls" ]; then
		for f in ca.pem server.pem server.key; do
			[ -r "$tls/$f" ] || die "HYPHA_CLUSTER_TLS_DIR=$tls has no $f"
		done
		echo '[rabbitmq_auth_mechanism_ssl].' >"$home/enabled_plugins"
	fi
	{
		echo "listeners.tcp.local = 127.0.0.1:$(port_of "$n")"
		echo "loopback_users.guest = true"
		echo "log.file.level = info"
		echo "log.console = false"
		if [ "$n" -eq 0 ] && [ -n "$tls" ]; then
			echo "listeners.ssl.default = 127.0.0.1:5685"
			echo "ssl_options.cacertfile = $tls/ca.pem"
			echo "ssl_options.certfile = $tls/server.pem"
			echo "ssl_options.keyfile = $tls/server.key"
			echo "ssl_options.verify = verify_peer"
			echo "ssl_options.fail_if_no_peer_cert = false"
			echo "ssl_cert_login_from = common_name"
			echo "auth_mechanisms.1 = PLAIN"
			echo "auth_mechanisms.2 = AMQPLAIN"
			echo "auth_mechanisms.3 = EXTERNAL"
		fi
		if [ $# -gt 0 ]; then
			echo "cluster_formation.peer_discovery_backend = classic_config"
			for peer in "$@"; do
				echo "cluster_formation.classic_config.nodes.$i = $(name_of "$peer")"
				i=$((i + 1))
			done
		fi
	} >"$home/rabbitmq.conf"
	if is_root && id rabbitmq >/dev/null 2>&1; then
		chown -R rabbitmq:rabbitmq "$home"
	fi
}

# boot N: start node N in the background and wait for it to answer.
boot() {
	local n=$1 home port
	home=$(home_of "$n")
	port=$(port_of "$n")
	[ -f "$home/rabbitmq.conf" ] || die "node $n has no files; run cluster.sh start first"
	if answers "$port"; then
		log "$(name_of "$n") already answers on $port"
		return
	fi
	for p in "$port" "$(dist_of "$n")"; do
		if ss -ltn "sport = :$p" 2>/dev/null | grep -q LISTEN; then
			die "port $p is taken by another program; $(name_of "$n") needs it"
		fi
	done
	log "starting $(name_of "$n") on 127.0.0.1:$port"
	# shellcheck disable=SC2046
	as_owner env $(node_env "$n") ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}" \
		setsid "$(bindir)/rabbitmq-server" >"$home/log/startup.log" 2>&1 </dev/null &
	for _ in $(seq 1 240); do
		if answers "$port"; then
			log "$(name_of "$n") answers on $port"
			return
		fi
		sleep 0.5
	done
	tail -n 30 "$home/log/startup.log" >&2 || true
	die "$(name_of "$n") did not answer on $port within 120 s; see $home/log"
}

# os_pid N: the Erlang VM's process id of node N, from its pid file.
os_pid() {
	local f
	f="$(home_of "$1")/pid"
	[ -s "$f" ] && cat "$f"
}

kill_node() {
	local n=$1 pid
	pid=$(os_pid "$n") || die "node $n is not running (no pid file)"
	log "SIGKILL $(name_of "$n") (pid $pid)"
	kill -KILL "$pid" 2>/dev/null || true
	for _ in $(seq 1 50); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	rm -f "$(home_of "$n")/pid"
}

stop_node() {
	local n=$1 pid
	pid=$(os_pid "$n" 2>/dev/null) || pid=
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		log "stopping $(name_of "$n")"
		ctl "$n" stop >/dev/null 2>&1 || kill -KILL "$pid" 2>/dev/null || true
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
}

nodes_of() {
	if [ "${1:-}" = solo ]; then echo 0; else echo 1 2 3; fi
}

start() {
	ensure_installed
	mkdir -p "$DIR"
	chmod 755 "$DIR"
	if [ "${1:-}" = solo ]; then
		write_files 0
		boot 0
		ctl 0 await_startup >/dev/null
		return
	fi
	for n in 1 2 3; do
		write_files "$n" 1 2 3
	done
	# The first node first: the others join it at their first boot.
	# Booting all three at once sometimes fails on feature flags.
	boot 1
	ctl 1 await_startup >/dev/null
	boot 2
	boot 3
	for n in 2 3; do
		ctl "$n" await_startup >/dev/null
	done
	for _ in $(seq 1 60); do
		if [ "$(ctl 1 eval 'length(rabbit_nodes:all_running()).' 2>/dev/null)" = 3 ]; then
			log "3 nodes running: $(name_of 1), $(name_of 2), $(name_of 3)"
			return
		fi
		sleep 1
	done
	ctl 1 cluster_status >&2 || true
	die "the 3 nodes did not form one cluster within 60 s"
}

stop() {
	for n in $(nodes_of "${1:-}"); do
		stop_node "$n"
		rm -rf "$(home_of "$n")"
	done
}

status() {
	for n in $(nodes_of "${1:-}"); do
		local state=down
		if answers "$(port_of "$n")"; then state=up; fi
		printf '%s 127.0.0.1:%s %s\n' "$(name_of "$n")" "$(port_of "$n")" "$state"
	done
}

node_arg() {
	case "${1:-}" in
	0 | 1 | 2 | 3) echo "$1" ;;
	*) die "want a node number: 1, 2 or 3 (0: the solo node), got '${1:-}'" ;;
	esac
}

case "${1:-}" in
start) start "${2:-}" ;;
stop) stop "${2:-}" ;;
status) status "${2:-}" ;;
kill) kill_node "$(node_arg "${2:-}")" ;;
boot) boot "$(node_arg "${2:-}")" ;;
ctl)
	n=$(node_arg "${2:-}")
	shift 2
	ctl "$n" "$@"
	;;
*) die "usage: cluster.sh start|stop|status [solo] | kill N | boot N | ctl N ARGS..." ;;
esac
