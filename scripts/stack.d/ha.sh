# shellcheck shell=bash
# The HA mode of PostgreSQL (ORDERS_STACK_PG=ha): pg_auto_failover (Debian package postgresql-15-auto-failover)
# with a monitor and two PostgreSQL nodes, a primary and a synchronous secondary, each run by its pg_autoctl
# keeper. Its ports lie outside Linux's ephemeral range, beside the plain stack's:
#   monitor 127.0.0.1:56430, node1 127.0.0.1:56431, node2 127.0.0.1:56432
# ordersctl reaches whichever node is primary with the multi-host DSN that `ha-dsn` prints. Everything lives
# under <pg_home>/ha (the keepers' own files too: XDG_* point there). Fault injection: ha-faults.sh.
HA_MONITOR_PORT="${ORDERS_STACK_HA_MONITOR_PORT:-56430}"
HA_NODE_PORTS=("${ORDERS_STACK_HA_NODE1_PORT:-56431}" "${ORDERS_STACK_HA_NODE2_PORT:-56432}")
HA_NODE_NAMES=(node1 node2)
# Failure detection, shortened from pg_auto_failover's defaults (a 20 s silence, 5 s checks) so a failover takes
# seconds, not a minute; kept above a few seconds, so a busy 2-core machine does not fail over for nothing. A
# primary that cannot be reached must be given the time to demote itself before the secondary is promoted: its
# keeper demotes it after HA_PARTITION_S without the monitor or a standby (default 20 s), the monitor waits
# HA_DEMOTE_MS (default 30 s, more than the keeper's timeout) before promoting the secondary.
HA_UNHEALTHY_MS="${ORDERS_STACK_HA_UNHEALTHY_MS:-6000}"
HA_PARTITION_S="${ORDERS_STACK_HA_PARTITION_S:-10}"
HA_DEMOTE_MS="${ORDERS_STACK_HA_DEMOTE_MS:-15000}"

ha_mode() { [ "${ORDERS_STACK_PG:-plain}" = ha ]; }
ha_dir() { echo "$(pg_home)/ha"; }
ha_data() { echo "$(ha_dir)/$1"; } # monitor | node1 | node2
ha_port() { if [ "$1" = monitor ]; then echo "$HA_MONITOR_PORT"; else echo "${HA_NODE_PORTS[$((${1#node} - 1))]}"; fi; }
ha_monitor_uri() { echo "postgres://autoctl_node@127.0.0.1:$HA_MONITOR_PORT/pg_auto_failover?sslmode=disable"; }

# The DSN ordersctl uses: both nodes, and libpq picks the one that accepts writes.
ha_dsn() { # [dbname]
  local hosts="" port
  for port in "${HA_NODE_PORTS[@]}"; do hosts="${hosts:+$hosts,}127.0.0.1:$port"; done
  echo "postgresql://$PG_USER:$PG_PASSWORD@$hosts/${1:-orders}?target_session_attrs=read-write"
}

ha_env() { # the keepers' environment: their files under ha_dir, PostgreSQL 15's binaries
  local dir
  dir="$(ha_dir)"
  echo "PATH=$(pg_bin):$PATH" "XDG_CONFIG_HOME=$dir/config" "XDG_DATA_HOME=$dir/share" "XDG_RUNTIME_DIR=$dir/run" \
    "PG_CONFIG=$(pg_bin)/pg_config"
}
ha_autoctl() {
  local env
  read -r -a env <<<"$(ha_env)"
  # From its own folder: the caller's may be one the postgres user cannot enter (a checkout under /root).
  (cd "$(ha_dir)" && as_pg_owner env "${env[@]}" pg_autoctl "$@")
}

ha_ensure_packages() {
  local missing=()
  # The extension of the PostgreSQL the stack runs (15 on Debian 12).
  command -v pg_autoctl >/dev/null || missing+=("postgresql-$(basename "$(dirname "$(pg_bin)")")-auto-failover")
  command -v nft >/dev/null || missing+=(nftables)
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
}

ha_monitor_sql() { PGCONNECT_TIMEOUT=3 psql -X -q "$(ha_monitor_uri)" -tAF ' ' -c "$1"; }
# One line per node: name port reported-state goal-state.
ha_nodes() {
  ha_monitor_sql "SELECT nodename, nodeport, reportedstate, goalstate FROM pgautofailover.node ORDER BY nodeid"
}
ha_primary_port() { ha_nodes 2>/dev/null | awk '$3 == $4 && ($3 == "primary" || $3 == "wait_primary" || $3 == "single") {print $2; exit}'; }
ha_healthy() { # a primary and a secondary, both where the monitor wants them
  local nodes
  nodes="$(ha_nodes 2>/dev/null)" || return 1
  echo "$nodes" | awk '$3 == "primary" && $4 == "primary" {p++} $3 == "secondary" && $4 == "secondary" {s++}
    END {exit !(p == 1 && s == 1)}'
}

# The keeper of a node (its pid, from the process table: pg_autoctl run --pgdata <its data>).
ha_keeper_pid() { pgrep -o -f "^pg_autoctl run --pgdata $(ha_data "$1")\$" || return 1; }
ha_postmaster_pid() { local f; f="$(ha_data "$1")/postmaster.pid"; [ -s "$f" ] && head -1 "$f"; }

ha_launch() { # name: start its keeper (which starts and supervises its PostgreSQL) unless it runs
  local name=$1 log="$LOGS/ha-$1.log"
  ha_keeper_pid "$name" >/dev/null && return
  touch "$log" && { [ "$(id -u)" != 0 ] || chown postgres: "$log"; }
  local cmd env
  read -r -a env <<<"$(ha_env)"
  cmd=(env "${env[@]}" pg_autoctl run --pgdata "$(ha_data "$name")")
  [ "$(id -u)" != 0 ] || cmd=(runuser -u postgres -- "${cmd[@]}")
  # setsid: a keeper is a daemon of the stack, not of the shell or test that started it.
  (cd "$(ha_dir)" && setsid -f "${cmd[@]}" >>"$log" 2>&1 </dev/null)
  wait_for "the $name keeper" 30 ha_keeper_pid "$name"
}

ha_create_monitor() {
  local data
  data="$(ha_data monitor)"
  [ -s "$data/PG_VERSION" ] && return
  ha_autoctl create monitor --pgdata "$data" --pgport "$HA_MONITOR_PORT" --hostname 127.0.0.1 --auth trust \
    --no-ssl >>"$LOGS/ha-monitor.log" 2>&1 || { tail -20 "$LOGS/ha-monitor.log" >&2; die "pg_autoctl create monitor failed"; }
  cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
pgautofailover.health_check_period = 1000
pgautofailover.health_check_timeout = 1000
pgautofailover.health_check_max_retries = 1
pgautofailover.health_check_retry_delay = 1000
pgautofailover.node_considered_unhealthy_timeout = $HA_UNHEALTHY_MS
pgautofailover.primary_demote_timeout = $HA_DEMOTE_MS
CONF
}

ha_create_node() { # name
  local name=$1 data
  data="$(ha_data "$name")"
  [ -s "$data/PG_VERSION" ] && return
  ha_autoctl create postgres --pgdata "$data" --pgport "$(ha_port "$name")" --hostname 127.0.0.1 \
    --listen 127.0.0.1 --name "$name" --dbname orders --username "$PG_USER" --monitor "$(ha_monitor_uri)" \
    --auth trust --no-ssl >>"$LOGS/ha-$name.log" 2>&1 \
    || { tail -20 "$LOGS/ha-$name.log" >&2; die "pg_autoctl create postgres ($name) failed"; }
  ha_autoctl config set --pgdata "$data" timeout.network_partition_timeout "$HA_PARTITION_S" >/dev/null
}

ha_wait_healthy() { wait_for "the HA cluster (a primary and a secondary)" "${1:-180}" ha_healthy_or_hurry; }
# A former primary that cannot be rewound (pg_rewind of pg_auto_failover 2.0 fails on PostgreSQL 15 here) is
# copied again with pg_basebackup, which waits for a spread checkpoint: minutes. A CHECKPOINT on the primary makes
# the one under way immediate.
ha_healthy_or_hurry() { ha_healthy || { ha_node_sql "CHECKPOINT" >/dev/null 2>&1; false; }; }

ha_node_sql() { PGCONNECT_TIMEOUT=3 PGPASSWORD=$PG_PASSWORD psql -X -q "$(ha_dsn postgres)" -tAc "$1"; }

# The role and databases ordersctl uses, on the primary (the secondary replicates them).
ha_provision() {
  local primary db
  primary="$(ha_primary_port)"
  as_pg_owner psql -X -q -h 127.0.0.1 -p "$primary" -U postgres -d postgres -tAc \
    "ALTER ROLE $PG_USER WITH SUPERUSER LOGIN PASSWORD '$PG_PASSWORD'" >/dev/null \
    || die "could not set the role $PG_USER on the primary (port $primary)"
  for db in orders orders_test; do
    ha_node_sql "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 || ha_node_sql "CREATE DATABASE $db"
  done
}

ha_up() {
  local dir name
  ha_ensure_packages
  dir="$(ha_dir)"
  mkdir -p "$dir/config" "$dir/share" "$dir/run"
  [ "$(id -u)" != 0 ] || chown -R postgres: "$dir"
  ha_create_monitor
  ha_launch monitor
  wait_for "the HA monitor" 60 ha_monitor_sql "SELECT 1"
  # node1 first: the first node registered becomes the primary, the next one its secondary.
  for name in "${HA_NODE_NAMES[@]}"; do
    if [ ! -s "$(ha_data "$name")/PG_VERSION" ]; then
      ha_create_node "$name"
      ha_launch "$name"
      wait_for "$name to join" 180 ha_joined "$name"
    fi
    ha_launch "$name"
  done
  ha_wait_healthy 300
  ha_provision
  say "postgres  HA       primary 127.0.0.1:$(ha_primary_port), secondary; monitor 127.0.0.1:$HA_MONITOR_PORT"
  say "          DSN      $(ha_dsn | sed "s/:$PG_PASSWORD@/:***@/")"
}
ha_joined() { ha_nodes | awk -v n="$1" '$1 == n && ($3 == "single" || $3 == "primary" || $3 == "secondary") {f=1} END {exit !f}'; }

ha_stop() { # name: a clean stop of its keeper and PostgreSQL
  local name=$1
  ha_keeper_pid "$name" >/dev/null || return 0
  ha_autoctl stop --pgdata "$(ha_data "$name")" >/dev/null 2>&1 || true
  wait_for "the $name keeper to stop" 60 ha_keeper_gone "$name"
}
ha_keeper_gone() { ! ha_keeper_pid "$1" >/dev/null; }

ha_down() {
  ha_unblock
  local primary name
  # The secondary first, the primary last: nothing to fail over on the way down.
  primary="$(ha_node_of_port "$(ha_primary_port)" 2>/dev/null)" || primary=node1
  for name in "${HA_NODE_NAMES[@]}"; do [ "$name" = "$primary" ] || ha_stop "$name"; done
  ha_stop "$primary"; ha_stop monitor
  say "postgres  HA stopped"
}

ha_status() {
  local rc=0 name port state
  if ! ha_monitor_sql "SELECT 1" >/dev/null 2>&1; then
    echo "postgres  down  HA monitor 127.0.0.1:$HA_MONITOR_PORT"; return 1
  fi
  echo "postgres  up    HA monitor 127.0.0.1:$HA_MONITOR_PORT"
  while read -r name port state _; do
    echo "  $name  127.0.0.1:$port  $state"
  done < <(ha_nodes)
  port="$(ha_primary_port)"
  if [ -n "$port" ]; then echo "  primary 127.0.0.1:$port"; else echo "  no primary"; rc=1; fi
  ha_healthy || { echo "  not replicated: no secondary in sync"; rc=1; }
  return $rc
}

ha_command() {
  case "${1:-}" in
    up)
      ensure_packages; ha_up; redis_up
      if (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null; then say "kafka     answers  127.0.0.1:$KAFKA_PORT"
      else kafka_start; fi ;;
    down) ha_down ;;
    status) ha_status ;;
    ha-dsn) ha_dsn "${2:-orders}" ;;
    *) ha_fault_command "$@" ;;
  esac
}
