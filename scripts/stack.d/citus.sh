# shellcheck shell=bash
# The Citus mode of the stack, ORDERS_STACK_PG=citus: a coordinator (node 0) and two worker nodes (1, 2), each
# a PostgreSQL 15 cluster of the system's packages with the citus extension preloaded, at 127.0.0.1:55431 + N
# (ORDERS_STACK_CITUS_PORT moves the base). Data under pg_home/citus/node<N>, logs .stack/logs/citus-node<N>.log.
# Redis and Kafka are the plain stack's (started when nothing answers on their ports).
# Citus itself: installed files when present (the system packages, or an earlier build), else built once from
# the source tarball that ORDERS_STACK_CITUS_SRC names and installed into the system PostgreSQL.

CITUS_PORT="${ORDERS_STACK_CITUS_PORT:-55431}"
CITUS_NODES=(0 1 2)
CITUS_DATABASES=(orders orders_test orders_chaos)  # orders_chaos: make chaos-citus

citus_mode() { [ "${ORDERS_STACK_PG:-}" = citus ]; }
citus_port() { echo $((CITUS_PORT + $1)); }
citus_home() { echo "$(pg_home)/citus"; }
citus_name() { if [ "$1" = 0 ]; then echo coordinator; else echo "worker-$1"; fi; }
citus_pg_version() { basename "$(dirname "$(pg_bin)")"; }

citus_installed() {
  local v; v="$(citus_pg_version)"
  [ -f "/usr/lib/postgresql/$v/lib/citus.so" ] && [ -f "/usr/share/postgresql/$v/extension/citus.control" ]
}

# Citus 12.1 (the line that supports PostgreSQL 14-16) from the machine, or built once from ORDERS_STACK_CITUS_SRC.
ensure_citus() {
  citus_installed && return
  local v src build
  v="$(citus_pg_version)"
  src="${ORDERS_STACK_CITUS_SRC:-}"
  [ -n "$src" ] || die "citus is not installed for PostgreSQL $v: install it, or set ORDERS_STACK_CITUS_SRC to a citus-12.1 source tarball (e.g. ../shared/vendor/citus-12.1.12.tar.gz)"
  case "$src" in /*) ;; *) src="$ROOT/$src" ;; esac
  [ -f "$src" ] || die "ORDERS_STACK_CITUS_SRC=$src: no such file"
  local deps=() pkg
  for pkg in "postgresql-server-dev-$v" liblz4-dev libzstd-dev libkrb5-dev libssl-dev libselinux1-dev \
    libxslt1-dev libpam0g-dev libreadline-dev make gcc; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || deps+=("$pkg")
  done
  [ ${#deps[@]} -eq 0 ] || apt_install "${deps[@]}"
  build="$STACK/citus-build"
  say "citus     building from $src into PostgreSQL $v (once; log $LOGS/citus-build.log)"
  rm -rf "$build" && mkdir -p "$build"
  tar xzf "$src" -C "$build" --strip-components=1 || die "could not unpack $src"
  (
    cd "$build" && ./configure --without-libcurl PG_CONFIG="/usr/lib/postgresql/$v/bin/pg_config" \
      && make -j"$(nproc)" && make install
  ) >"$LOGS/citus-build.log" 2>&1 || { tail -30 "$LOGS/citus-build.log" >&2; die "the citus build failed"; }
  citus_installed || die "the citus build installed no citus.so for PostgreSQL $v"
  rm -rf "$build"
  say "citus     built and installed"
}

citus_sql() { # node database sql
  PGPASSWORD=$PG_PASSWORD psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$(citus_port "$1")" -U "$PG_USER" \
    -d "$2" -tAc "$3"
}
citus_ready() { "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$(citus_port "$1")"; }

citus_node_up() { # node
  local n=$1 bin home data log port
  bin="$(pg_bin)"; home="$(citus_home)"; data="$home/node$n"; log="$home/node$n.log"; port="$(citus_port "$n")"
  if citus_ready "$n" 2>/dev/null; then say "citus     $(citus_name "$n") up 127.0.0.1:$port"; return; fi
  mkdir -p "$home"
  # The nodes reach each other as the stack's user: the password comes from this file (libpq's PGPASSFILE).
  printf '127.0.0.1:*:*:%s:%s\n' "$PG_USER" "$PG_PASSWORD" >"$home/pgpass"
  chmod 600 "$home/pgpass"
  if [ ! -s "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    printf '%s\n' "$PG_PASSWORD" >"$home/pwfile"
    [ "$(id -u)" = 0 ] && chown -R postgres: "$home"
    as_pg_owner "$bin/initdb" -D "$data" -U "$PG_USER" --pwfile="$home/pwfile" --auth-local=trust \
      --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$LOGS/citus-initdb.log" 2>&1 \
      || { rm -f "$home/pwfile"; tail -20 "$LOGS/citus-initdb.log" >&2; die "initdb failed"; }
    rm -f "$home/pwfile"
  fi
  [ "$(id -u)" != 0 ] || chown -R postgres: "$home"
  touch "$log" && { [ "$(id -u)" != 0 ] || chown postgres: "$log"; }
  ln -sf "$log" "$LOGS/citus-node$n.log"
  as_pg_owner env PGPASSFILE="$home/pgpass" "$bin/pg_ctl" -D "$data" -l "$log" -w -t 300 start \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $data -c max_connections=200 \
        -c shared_preload_libraries=citus -c max_prepared_transactions=200 $(pg_profile_options "$PG_PROFILE")" \
    >/dev/null || { tail -20 "$log" >&2; die "citus $(citus_name "$n") did not start"; }
  wait_for "citus node $n" 60 citus_ready "$n"
  say "citus     $(citus_name "$n") started 127.0.0.1:$port"
}

citus_node_down() { # node [mode]
  local data; data="$(citus_home)/node$1"
  [ -s "$data/postmaster.pid" ] || return 0
  as_pg_owner "$(pg_bin)/pg_ctl" -D "$data" -m "${2:-fast}" -w stop >/dev/null 2>&1 || true
}

# One database on every node, the extension in each, the workers registered on the coordinator (idempotent).
citus_database() { # name
  local db=$1 n w
  for n in "${CITUS_NODES[@]}"; do
    citus_sql "$n" postgres "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 \
      || citus_sql "$n" postgres "CREATE DATABASE $db"
    citus_sql "$n" "$db" "CREATE EXTENSION IF NOT EXISTS citus" 2>/dev/null
  done
  citus_sql 0 "$db" "SELECT citus_set_coordinator_host('127.0.0.1', $(citus_port 0))" >/dev/null
  for w in "${CITUS_NODES[@]:1}"; do
    citus_sql 0 "$db" "SELECT 1 FROM pg_dist_node WHERE nodeport = $(citus_port "$w")" | grep -q 1 \
      || citus_sql 0 "$db" "SELECT citus_add_node('127.0.0.1', $(citus_port "$w"))" >/dev/null
  done
}

citus_up() {
  ensure_citus
  local n db
  for n in "${CITUS_NODES[@]:1}" 0; do citus_node_up "$n"; done
  for db in "${CITUS_DATABASES[@]}"; do citus_database "$db"; done
  say "citus     ready: coordinator 127.0.0.1:$(citus_port 0), workers $(citus_port 1) $(citus_port 2) (databases ${CITUS_DATABASES[*]})"
}

citus_down() {
  local n
  for n in 0 "${CITUS_NODES[@]:1}"; do citus_node_down "$n"; done
  say "citus     stopped (Redis and Kafka belong to the plain stack: scripts/stack down stops them)"
}

citus_status() {
  local n rc=0 port
  for n in "${CITUS_NODES[@]}"; do
    port="$(citus_port "$n")"
    if citus_ready "$n" 2>/dev/null; then printf 'citus     up    %-11s 127.0.0.1:%s\n' "$(citus_name "$n")" "$port"
    else printf 'citus     down  %-11s 127.0.0.1:%s\n' "$(citus_name "$n")" "$port"; rc=1; fi
  done
  return $rc
}

# Redis and Kafka for the Citus stack: the plain stack's, started here only when nothing answers.
citus_services_up() {
  redis_up
  if (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null; then say "kafka     up       127.0.0.1:$KAFKA_PORT"
  else kafka_start; fi
}

citus_command() {
  case "${1:-}" in
    up) ensure_packages; citus_up; citus_services_up; say "logs in $LOGS" ;;
    down) citus_down ;;
    status) citus_status ;;
    available) citus_installed || [ -n "${ORDERS_STACK_CITUS_SRC:-}" ] ;;  # for make test: can the lane run
    citus-kill) need_citus_node "${2:-}"; citus_kill "$2" ;;
    citus-start) need_citus_node "${2:-}"; citus_node_up "$2" ;;
    citus-stop) need_citus_node "${2:-}"; citus_node_down "$2"; say "citus     $(citus_name "$2") stopped" ;;
    *) die "with ORDERS_STACK_PG=citus, scripts/stack knows up, down, status, citus-kill N, citus-start N, citus-stop N" ;;
  esac
}
