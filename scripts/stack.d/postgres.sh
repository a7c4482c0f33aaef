# shellcheck shell=bash
# PostgreSQL from the Debian packages: one cluster under pg_home, its durability profile.

pg_ready() { "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; }
pg_sql() { PGPASSWORD=$PG_PASSWORD psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres -tAc "$1"; }

# The durability settings of each profile, as server options.
pg_profile_options() {
  local value
  case "$1" in
    durable) value=on ;;
    fast) value=off ;;
  esac
  echo "-c fsync=$value -c synchronous_commit=$value -c full_page_writes=$value"
}

# The profile the running server has: durable, fast, or custom (set some other way).
pg_running_profile() {
  local settings
  settings="$(pg_sql "SELECT current_setting('fsync') || current_setting('synchronous_commit')
                     || current_setting('full_page_writes')")" || return 1
  case "$settings" in
    ononon) echo durable ;;
    offoffoff) echo fast ;;
    *) echo custom ;;
  esac
}

pg_up() {
  local bin home data pglog
  bin="$(pg_bin)"
  home="$(pg_home)"
  data="$home/pgdata"
  pglog="$home/postgres.log"
  if pg_ready; then
    local running
    running="$(pg_running_profile)" || die "postgres at 127.0.0.1:$PG_PORT does not tell its settings (logs: $LOGS)"
    if [ "$running" = "$PG_PROFILE" ]; then say "postgres  up       127.0.0.1:$PG_PORT (profile $PG_PROFILE)"; return; fi
    say "postgres  restarting 127.0.0.1:$PG_PORT: it runs with the $running profile, asked for $PG_PROFILE"
    pg_down
    ! pg_ready || die "postgres at 127.0.0.1:$PG_PORT is not the cluster in $data: stop it, then run this again"
  fi
  if [ ! -s "$data/PG_VERSION" ]; then
    mkdir -p "$data"
    printf '%s\n' "$PG_PASSWORD" >"$home/pgpass.tmp"
    [ "$(id -u)" = 0 ] && chown -R postgres: "$home"
    as_pg_owner "$bin/initdb" -D "$data" -U "$PG_USER" --pwfile="$home/pgpass.tmp" \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$LOGS/initdb.log" 2>&1 \
      || { rm -f "$home/pgpass.tmp"; tail -20 "$LOGS/initdb.log" >&2; die "initdb failed"; }
    rm -f "$home/pgpass.tmp"
  fi
  touch "$pglog" && { [ "$(id -u)" != 0 ] || chown postgres: "$pglog"; }
  [ "$pglog" = "$LOGS/postgres.log" ] || ln -sf "$pglog" "$LOGS/postgres.log"
  # After a crash (pg-crash) the start replays the WAL written since the last checkpoint, up to max_wal_size:
  # longer than a clean start, so the wait is generous. pg_ctl -w returns once connections are accepted.
  as_pg_owner "$bin/pg_ctl" -D "$data" -l "$pglog" -w -t 300 start \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $data -c max_connections=200 $(pg_profile_options "$PG_PROFILE")" \
    >/dev/null \
    || { tail -20 "$pglog" >&2; die "postgres did not start"; }
  wait_for postgres 60 pg_ready
  for db in orders orders_test; do
    pg_sql "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 || pg_sql "CREATE DATABASE $db"
  done
  say "postgres  started  127.0.0.1:$PG_PORT (databases orders, orders_test; user $PG_USER; profile $PG_PROFILE)"
}

pg_down() { pg_stop_cluster "$(pg_home)/pgdata"; }

pg_stop_cluster() { # data-dir: a clean (fast) stop, if it runs
  [ -s "$1/postmaster.pid" ] || return 0
  as_pg_owner "$(pg_bin)/pg_ctl" -D "$1" -m fast -w stop >/dev/null 2>&1 || true
}


pg_profile() {
  if ! pg_bin >/dev/null || ! pg_ready 2>/dev/null; then die "postgres is not running at 127.0.0.1:$PG_PORT"; fi
  pg_running_profile
}
