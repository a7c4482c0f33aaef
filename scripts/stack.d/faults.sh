# shellcheck shell=bash
# Fault injection for the outage, crash and chaos tests: crash PostgreSQL, kill or pause a cluster node.
# (pg-stop, pg-start, redis-stop, redis-start and kafka-start ID reuse the lifecycle of each service.)

# A crash, for the fault tests: an immediate stop writes no shutdown checkpoint, so the next start must recover
# from the WAL, as after a power cut (the durable profile's fsync already put every commit on disk).
pg_crash() {
  local data
  data="$(pg_home)/pgdata"
  if [ ! -s "$data/postmaster.pid" ]; then
    say "postgres  not running at 127.0.0.1:$PG_PORT: nothing to crash"
    return
  fi
  as_pg_owner "$(pg_bin)/pg_ctl" -D "$data" -m immediate -w stop >/dev/null || die "postgres did not stop (logs: $LOGS)"
  say "postgres  crashed  127.0.0.1:$PG_PORT (immediate stop, no checkpoint; pg-start recovers it)"
}

node_kill() {
  local id=$1 pid
  if ! pid="$(node_pid "$id")"; then say "kafka-$id   not running: nothing to kill"; return; fi
  kill -9 "$pid"
  wait_for "kafka-$id to die" 30 node_gone "$id"
  rm -f "$CLUSTER/node$id.pid"
  say "kafka-$id   killed   (pid $pid, kill -9; kafka-start $id restarts it on its data)"
}
node_gone() { ! node_pid "$1" >/dev/null; }

node_signal() { # id STOP|CONT
  local id=$1 pid
  pid="$(node_pid "$id")" || die "kafka-$id is not running"
  kill "-$2" "$pid"
  if [ "$2" = STOP ]; then wait_for "kafka-$id to pause" 10 node_paused "$id"; say "kafka-$id   paused   (pid $pid)"
  else wait_for "kafka-$id to resume" 10 node_not_paused "$id"; say "kafka-$id   resumed  (pid $pid)"; fi
}
node_not_paused() { ! node_paused "$1"; }

node_print_pid() { node_pid "$1" || die "kafka-$1 is not running"; }

# The fault commands of scripts/stack; the usage for any other.
fault_command() {
  case "${1:-}" in
    pg-stop) pg_down ;;          # used by the outage tests
    pg-crash) pg_crash ;;        # used by the crash tests
    pg-start) pg_up ;;
    redis-stop) redis_down ;;
    redis-start) redis_up ;;
    kafka-kill) need_node "${2:-}"; node_kill "$2" ;;
    kafka-pause) need_node "${2:-}"; node_signal "$2" STOP ;;
    kafka-resume) need_node "${2:-}"; node_signal "$2" CONT ;;
    kafka-pid) need_node "${2:-}"; node_print_pid "$2" ;;
    *) usage ;;
  esac
}
