# shellcheck shell=bash
# The secured stack's PostgreSQL (hostssl and scram-sha-256 only), PgBouncer in front of it (transaction pooling,
# TLS to clients and to PostgreSQL, verify-full) and Redis (TLS only, an ACL user, no default user).

# PostgreSQL's and PgBouncer's files, readable by the 'postgres' user when running as root (see pg_home).
secure_pg_home() { STACK="$SECURE" pg_home; }

secure_pg_ready() { pg_bin >/dev/null && "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$SECURE_PG_PORT"; }

# SQL as the cluster's superuser, over its Unix socket (trust): the only way in without TLS and a password.
secure_pg_admin() { as_pg_owner psql -X -q -h "$(secure_pg_home)/pgdata" -p "$SECURE_PG_PORT" -U stackadmin -d postgres -tAc "$1"; }

# A private copy of a file for the 'postgres' user (PostgreSQL refuses a key others can read).
secure_pg_copy() { # source target
  install -m 600 "$1" "$2"
  [ "$(id -u)" != 0 ] || chown postgres: "$2"
}

secure_pg_up() {
  local bin home data password
  bin="$(pg_bin)"
  home="$(secure_pg_home)"
  data="$home/pgdata"
  if secure_pg_ready; then say "postgres  up       127.0.0.1:$SECURE_PG_PORT (TLS)"; return; fi
  mkdir -p "$home"
  [ "$(id -u)" != 0 ] || chown postgres: "$home"
  if [ ! -s "$data/PG_VERSION" ]; then
    as_pg_owner "$bin/initdb" -D "$data" -U stackadmin --auth-local=trust --auth-host=reject -E UTF8 \
      --locale=C.UTF-8 >"$LOGS/initdb-secure.log" 2>&1 || { tail -20 "$LOGS/initdb-secure.log" >&2; die "initdb failed"; }
    # TLS and a password, or nothing: no 'host' line, so a connection without TLS finds no entry.
    printf '%s\n' "local all stackadmin trust" "hostssl all all 127.0.0.1/32 scram-sha-256" >"$data/pg_hba.conf"
  fi
  secure_pg_copy "$SECURE/tls/server.crt" "$home/server.crt"
  secure_pg_copy "$SECURE/tls/server.key" "$home/server.key"
  touch "$home/postgres.log" && { [ "$(id -u)" != 0 ] || chown postgres: "$home/postgres.log"; }
  ln -sf "$home/postgres.log" "$LOGS/postgres-secure.log"
  as_pg_owner "$bin/pg_ctl" -D "$data" -l "$home/postgres.log" -w -t 300 start -o "-c listen_addresses=127.0.0.1 \
    -p $SECURE_PG_PORT -k $data -c max_connections=100 -c ssl=on -c ssl_cert_file=$home/server.crt \
    -c ssl_key_file=$home/server.key -c password_encryption=scram-sha-256" >/dev/null \
    || { tail -20 "$home/postgres.log" >&2; die "the secured postgres did not start"; }
  wait_for "secured postgres" 60 secure_pg_ready
  # ordersctl's role owns its databases and nothing more (no superuser, no CREATEDB); its password from its file.
  password="$(secret postgres_password)"
  secure_pg_admin "SELECT 1 FROM pg_roles WHERE rolname='$SECURE_USER'" | grep -q 1 \
    || secure_pg_admin "CREATE ROLE $SECURE_USER LOGIN"
  secure_pg_admin "ALTER ROLE $SECURE_USER PASSWORD '$password'" >/dev/null
  for db in orders orders_test; do
    secure_pg_admin "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 \
      || secure_pg_admin "CREATE DATABASE $db OWNER $SECURE_USER"
  done
  say "postgres  started  127.0.0.1:$SECURE_PG_PORT (hostssl + scram-sha-256 only; databases orders, orders_test)"
}

secure_pg_down() { pg_stop_cluster "$(secure_pg_home)/pgdata"; }

# ---------------------------------------------------------------- PgBouncer
secure_bouncer_pid() { local f; f="$(secure_pg_home)/pgbouncer.pid"; [ -s "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"; }
secure_bouncer_ready() { secure_bouncer_pid >/dev/null && pg_bin >/dev/null && "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$SECURE_BOUNCER_PORT"; }

secure_bouncer_up() {
  local home
  home="$(secure_pg_home)"
  if secure_bouncer_ready; then say "pgbouncer up       127.0.0.1:$SECURE_BOUNCER_PORT (TLS, transaction pooling)"; return; fi
  secure_pg_copy "$SECURE/tls/ca.crt" "$home/ca.crt"
  # The password in clear: PgBouncer then answers the client's SCRAM exchange and makes its own with PostgreSQL.
  printf '"%s" "%s"\n' "$SECURE_USER" "$(secret postgres_password)" >"$home/userlist.tmp"
  secure_pg_copy "$home/userlist.tmp" "$home/userlist.txt" && rm -f "$home/userlist.tmp"
  cat >"$home/pgbouncer.ini" <<INI
[databases]
orders = host=127.0.0.1 port=$SECURE_PG_PORT dbname=orders
orders_test = host=127.0.0.1 port=$SECURE_PG_PORT dbname=orders_test

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $SECURE_BOUNCER_PORT
unix_socket_dir =
pool_mode = transaction
max_client_conn = 300
default_pool_size = 20
auth_type = scram-sha-256
auth_file = $home/userlist.txt
client_tls_sslmode = require
client_tls_cert_file = $home/server.crt
client_tls_key_file = $home/server.key
client_tls_ca_file = $home/ca.crt
server_tls_sslmode = verify-full
server_tls_ca_file = $home/ca.crt
logfile = $home/pgbouncer.log
pidfile = $home/pgbouncer.pid
INI
  [ "$(id -u)" != 0 ] || chown postgres: "$home/pgbouncer.ini"
  touch "$home/pgbouncer.log" && { [ "$(id -u)" != 0 ] || chown postgres: "$home/pgbouncer.log"; }
  ln -sf "$home/pgbouncer.log" "$LOGS/pgbouncer.log"
  as_pg_owner pgbouncer -d -q "$home/pgbouncer.ini" || { tail -20 "$home/pgbouncer.log" >&2; die "pgbouncer did not start"; }
  wait_for pgbouncer 30 secure_bouncer_ready
  say "pgbouncer started  127.0.0.1:$SECURE_BOUNCER_PORT (TLS to clients and to PostgreSQL, transaction pooling)"
}

secure_bouncer_down() {
  local pid
  pid="$(secure_bouncer_pid)" || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
}

# ---------------------------------------------------------------- Redis
secure_redis_cli() {
  REDISCLI_AUTH="$(secret redis_password)" redis-cli --tls --cacert "$SECURE/tls/ca.crt" -h 127.0.0.1 \
    -p "$SECURE_REDIS_PORT" --user "$SECURE_USER" --no-auth-warning "$@"
}
secure_redis_ready() { command -v redis-cli >/dev/null && secure_redis_cli ping 2>/dev/null | grep -q PONG; }

secure_redis_up() {
  local dir="$SECURE/redis"
  if secure_redis_ready; then say "redis     up       127.0.0.1:$SECURE_REDIS_PORT (TLS)"; return; fi
  mkdir -p "$dir"
  # The cache's commands and INFO (status); no default user, nothing else dangerous.
  (umask 077 && cat >"$dir/redis.conf" <<CONF
bind 127.0.0.1
port 0
tls-port $SECURE_REDIS_PORT
tls-cert-file $SECURE/tls/server.crt
tls-key-file $SECURE/tls/server.key
tls-ca-cert-file $SECURE/tls/ca.crt
tls-auth-clients no
daemonize yes
dir $dir
pidfile $dir/redis.pid
logfile $LOGS/redis-secure.log
save ""
appendonly no
user default off
user $SECURE_USER on >$(secret redis_password) ~* &* +@all -@dangerous +info
CONF
  )
  redis-server "$dir/redis.conf" || die "the secured redis did not start (log: $LOGS/redis-secure.log)"
  wait_for "secured redis" 30 secure_redis_ready
  say "redis     started  127.0.0.1:$SECURE_REDIS_PORT (TLS only; ACL user $SECURE_USER, no default user)"
}

secure_redis_down() {
  local pidfile="$SECURE/redis/redis.pid" pid
  [ -s "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q redis-server || return 0 # a stale pid file
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
}
