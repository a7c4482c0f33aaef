# shellcheck shell=bash
# Shared by every part of scripts/stack: messages, packages, PostgreSQL's home and owner, waiting, Docker.

say() { printf '%s\n' "$*" >&2; }
die() { say "stack: $*"; exit 1; }

# PostgreSQL's files. As root the cluster runs as 'postgres', which must reach them: when the stack folder sits
# where that user cannot go (say under /root), the cluster lives in a folder under /var/lib instead, one per
# stack folder (a second stack, ORDERS_STACK_DIR, never shares the default one's cluster; the default keeps the
# name it always had, from the checkout).
pg_home() {
  local key="$STACK"
  [ "$STACK" != "$ROOT/.stack" ] || key="$ROOT"
  if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$STACK" 2>/dev/null; then
    echo "/var/lib/ordersctl-stack/$(printf '%s' "$key" | md5sum | cut -c1-12)"
  else
    echo "$STACK"
  fi
}

as_pg_owner() {
  # PostgreSQL refuses to run as root; on a root machine the Debian 'postgres' user owns the cluster.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

apt_install() {
  [ "$(id -u)" = 0 ] || die "missing $*; install them with: sudo apt-get install $*"
  say "installing $* with apt-get"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >"$LOGS/apt.log" 2>&1 \
    || { tail -20 "$LOGS/apt.log" >&2; die "apt-get install $* failed"; }
}

pg_bin() {
  local dir
  dir="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && { echo "$dir"; return; }
  return 1
}

ensure_packages() {
  local missing=()
  pg_bin >/dev/null || missing+=(postgresql)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
}

wait_for() { # name seconds command...
  local name=$1 secs=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || die "$name did not answer within ${secs}s (logs: $LOGS)"
    sleep 0.5
  done
}

# ---------------------------------------------------------------- Docker (when an engine answers)
use_docker() { [ -z "${ORDERS_STACK_NO_DOCKER:-}" ] && command -v docker >/dev/null && docker info >/dev/null 2>&1; }

docker_compose() {
  local profile=()
  ! cluster_mode || profile=(--profile cluster)
  docker compose -f "$ROOT/docker-compose.yml" "${profile[@]}" "$@"
}

cluster_mode() { [ "$KAFKA_NODES" = 3 ]; }

# The stack's PostgreSQL ports lie in Linux's default range of ephemeral ports (32768-60999): a client's outgoing
# connection can hold one at the moment a service binds it (the HA monitor once came up on IPv6 only, and `up`
# timed out). As root, `up` adds them to ip_local_reserved_ports (what was reserved before stays); elsewhere, or
# where /proc/sys is read-only, nothing changes.
reserve_ports() {
  local file=/proc/sys/net/ipv4/ip_local_reserved_ports list port
  [ "$(id -u)" = 0 ] && [ -w "$file" ] || return 0
  list="$(cat "$file")"
  for port in "$@"; do list="${list:+$list,}$port"; done
  printf '%s\n' "$list" >"$file" 2>/dev/null || true
}
