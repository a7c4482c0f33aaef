# shellcheck shell=bash
# Fault injection on the Citus stack (scripts/stack.d/citus.sh): kill or stop one node, start it again.

need_citus_node() {
  case "${1:-}" in 0 | 1 | 2) ;; *) die "a citus node is 0 (the coordinator), 1 or 2 (the workers)" ;; esac
}

# Fault injection: kill -9 a node's postmaster (its backends die with it; citus-start recovers from the WAL).
citus_kill() {
  local n=$1 data pid
  data="$(citus_home)/node$n"
  if [ ! -s "$data/postmaster.pid" ]; then say "citus     $(citus_name "$n") not running: nothing to kill"; return; fi
  pid="$(head -1 "$data/postmaster.pid")"
  kill -9 "$pid" 2>/dev/null || true
  wait_for "citus node $n to die" 30 citus_gone "$pid"
  say "citus     $(citus_name "$n") killed (pid $pid, kill -9; citus-start $n recovers it)"
}
citus_gone() { ! kill -0 "$1" 2>/dev/null; }

