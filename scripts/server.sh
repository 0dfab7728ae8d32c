#!/usr/bin/env bash
# Start redis-server with Gearshift loaded, for trying it by hand.
#
#   scripts/server.sh             build, then one server on 127.0.0.1:6379
#   scripts/server.sh --port N    the same on port N (e.g. when Debian's redis-server holds 6379)
#   scripts/server.sh --cluster   build, then a 3-master Redis Cluster on 127.0.0.1:30001-30003
#   scripts/server.sh stop        stop every server this script started (by pidfile)
#   scripts/server.sh stop --port N   stop only the standalone server on port N
#
# State (pidfiles, logs, nodes.conf) lives in .run/, which is gitignored.
# GEARSHIFT_SKIP_BUILD=1 skips the cargo build (e.g. while another build holds the lock).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CLUSTER_PORTS=(30001 30002 30003)
PORT=6379
WAIT_SECONDS=30

die() { log "error: $*"; exit 1; }

# A pidfile may outlive its process and the pid may be reused: check it is still a redis-server.
pid_of() {
  local pidfile=$1 pid
  [[ -f $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] && grep -qs '^redis-server' "/proc/$pid/comm" || return 1
  echo "$pid"
}

# True when nothing listens on 127.0.0.1:$1 (bash's /dev/tcp connects or fails at once).
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

ping_ok() { [[ $(redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null) == PONG ]]; }

# Wait for the node in $dir to answer; fail fast if it exited (e.g. the module failed to load).
wait_for_ping() {
  local port=$1 dir=$2 deadline=$((SECONDS + WAIT_SECONDS)) why=""
  until ping_ok "$port"; do
    if [[ -f $dir/redis.pid ]] && ! pid_of "$dir/redis.pid" >/dev/null; then
      why="exited"
    elif ((SECONDS >= deadline)); then
      why="did not answer PING within ${WAIT_SECONDS}s"
    fi
    if [[ -n $why ]]; then
      tail -n 20 "$dir/redis.log" >&2 || true
      rm -f "$dir/redis.pid"
      die "redis-server on port $port $why (log: $dir/redis.log)"
    fi
    sleep 0.2
  done
}

# Start one daemonized node in its own directory; extra redis-server args follow the dir.
start_node() {
  local port=$1 dir=$2
  shift 2
  mkdir -p "$dir"
  if pid_of "$dir/redis.pid" >/dev/null; then
    log "port $port: already running"
    return 0
  fi
  if ping_ok "$port"; then
    die "port $port is already served by a redis-server this script did not start" \
      "(Debian's own service? 'systemctl stop redis-server'), or pick another: $0 --port N"
  fi
  port_free "$port" || die "port $port is in use by another program; pick another: $0 --port N"
  # No persistence: a throwaway dev server should not reload stale state (or RDB aux data
  # from an older build) on its next start.
  redis-server --port "$port" --bind 127.0.0.1 --daemonize yes \
    --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" \
    --save '' --appendonly no "$@" --loadmodule "$MODULE_SO"
  # --daemonize returns before the module is loaded, so a load failure only shows up here.
  wait_for_ping "$port" "$dir"
  log "port $port: up (log: $dir/redis.log)"
}

standalone_dir() {
  if [[ $PORT == 6379 ]]; then echo "$RUN_DIR/standalone"; else echo "$RUN_DIR/standalone-$PORT"; fi
}

start_standalone() {
  start_node "$PORT" "$(standalone_dir)"
  log "try: redis-cli -p $PORT RG.PYEXECUTE \"GB().run()\""
}

cluster_state_ok() {
  redis-cli -h 127.0.0.1 -p "$1" cluster info 2>/dev/null | grep -q '^cluster_state:ok'
}

start_cluster() {
  local port running=0 addrs=()
  for port in "${CLUSTER_PORTS[@]}"; do
    pid_of "$RUN_DIR/cluster/$port/redis.pid" >/dev/null && running=$((running + 1))
  done
  if ((running == ${#CLUSTER_PORTS[@]})); then
    log "cluster already running"
    return 0
  fi
  ((running == 0)) || die "cluster partly running; run '$0 stop' first"
  # Always form a new cluster: old nodes.conf files would describe a cluster that no longer exists.
  rm -rf "$RUN_DIR/cluster"
  for port in "${CLUSTER_PORTS[@]}"; do
    start_node "$port" "$RUN_DIR/cluster/$port" --cluster-enabled yes --cluster-config-file nodes.conf
    addrs+=("127.0.0.1:$port")
  done
  redis-cli --cluster create "${addrs[@]}" --cluster-replicas 0 --cluster-yes </dev/null
  wait_for_cluster
  # RedisGears 1.2 on OSS reads the topology only on RG.REFRESHCLUSTER; send it so both work.
  for port in "${CLUSTER_PORTS[@]}"; do
    log "port $port: RG.REFRESHCLUSTER -> $(redis-cli -h 127.0.0.1 -p "$port" RG.REFRESHCLUSTER 2>&1)"
  done
  log "cluster up: redis-cli -c -p ${CLUSTER_PORTS[0]}"
}

wait_for_cluster() {
  local port deadline=$((SECONDS + WAIT_SECONDS))
  for port in "${CLUSTER_PORTS[@]}"; do
    until cluster_state_ok "$port"; do
      ((SECONDS < deadline)) || die "cluster_state is not ok on port $port after ${WAIT_SECONDS}s"
      sleep 0.2
    done
  done
}

stop_pidfile() {
  local pidfile=$1 pid i
  if pid=$(pid_of "$pidfile"); then
    kill -TERM "$pid"
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid ignored SIGTERM for 10s; killing it"
      kill -KILL "$pid"
    fi
    log "stopped redis-server pid $pid"
  fi
  rm -f "$pidfile"
}

stop_all() {
  local pidfile
  shopt -s nullglob
  for pidfile in "$RUN_DIR"/standalone*/redis.pid "$RUN_DIR"/cluster/*/redis.pid; do
    stop_pidfile "$pidfile"
  done
}

usage() { die "usage: $0 [--port N | --cluster | stop]"; }

main() {
  local mode=standalone port_given=0
  while (($#)); do
    case $1 in
      stop) mode=stop ;;
      --cluster) mode=cluster ;;
      --port)
        [[ ${2:-} =~ ^[0-9]+$ ]] && (($2 > 0 && $2 < 65536)) || die "--port needs a port number (1-65535)"
        PORT=$2 port_given=1
        shift ;;
      *) usage ;;
    esac
    shift
  done
  if [[ $mode == stop ]]; then
    if ((port_given)); then stop_pidfile "$(standalone_dir)/redis.pid"; else stop_all; fi
    return
  fi
  ensure_apt_packages
  [[ ${GEARSHIFT_SKIP_BUILD:-0} == 1 ]] || build_module || exit 1
  [[ -f $MODULE_SO ]] || die "$MODULE_SO not found (build failed or was skipped)"
  # The module embeds the interpreter it was built against; it needs cloudpickle there.
  ensure_pip_packages
  if [[ $mode == cluster ]]; then start_cluster; else start_standalone; fi
}

main "$@"
