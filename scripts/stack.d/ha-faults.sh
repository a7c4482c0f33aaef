# shellcheck shell=bash
# Fault injection on the HA PostgreSQL (ORDERS_STACK_PG=ha), each on whichever node is primary now. The lost host
# drops the node's port with nftables in a table of our own, inet ordersctl_ha, on the loopback interface only
# (never another table, port or interface); ha-heal and down remove it.
HA_NFT_TABLE=ordersctl_ha

ha_node_of_port() { # port -> node1 | node2
  local name
  for name in "${HA_NODE_NAMES[@]}"; do [ "$(ha_port "$name")" = "$1" ] && { echo "$name"; return; }; done
  return 1
}

ha_primary_node() {
  local port
  port="$(ha_primary_port)"
  [ -n "$port" ] || die "the HA cluster has no primary now (scripts/stack status)"
  ha_node_of_port "$port"
}

# kill -9 the postmaster: its keeper notices and starts it again, or the monitor fails over first.
ha_kill_postmaster() {
  local name pid
  name="$(ha_primary_node)"
  pid="$(ha_postmaster_pid "$name")" || die "$name has no postmaster running"
  kill -9 "$pid"
  say "postgres  killed   $name's postmaster (pid $pid, kill -9), primary at 127.0.0.1:$(ha_port "$name")"
}

# kill -9 everything of the node at once (its keeper's process group: the keeper, PostgreSQL and its backends),
# as after a crash; prints what was killed.
ha_kill_node() { # name
  local name=$1 pid group
  if pid="$(ha_keeper_pid "$name")"; then
    group="$(ps -o pgid= -p "$pid" | tr -d ' ')"
    kill -9 -- "-$group" 2>/dev/null || true
    echo "process group $group"
  elif pid="$(ha_postmaster_pid "$name")"; then
    kill -9 "$pid" 2>/dev/null || true
    echo "postmaster $pid"
  else
    die "nothing of $name runs"
  fi
}

ha_crash_primary() {
  local name pids
  name="$(ha_primary_node)"
  pids="$(ha_kill_node "$name")"
  say "postgres  crashed  $name (keeper and PostgreSQL, kill -9: $pids), primary at 127.0.0.1:$(ha_port "$name")"
}

# The primary's host lost without a word: first its port dropped both ways on the loopback interface (so the
# resets and FINs of what dies never reach anyone), then its processes killed. Clients see silence.
ha_lose_primary() {
  local name port pids
  name="$(ha_primary_node)"
  port="$(ha_port "$name")"
  ha_block "$port"
  pids="$(ha_kill_node "$name")"
  say "postgres  lost     $name: port $port dropped (nftables table inet $HA_NFT_TABLE), $pids killed -9"
}

ha_block() { # port
  command -v nft >/dev/null || apt_install nftables
  nft -f - <<RULES || die "nft could not add the table inet $HA_NFT_TABLE"
table inet $HA_NFT_TABLE {
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "lo" tcp dport $1 drop
    iifname "lo" tcp sport $1 drop
  }
}
RULES
}

ha_unblock() {
  command -v nft >/dev/null || return 0
  if nft list table inet "$HA_NFT_TABLE" >/dev/null 2>&1; then
    nft delete table inet "$HA_NFT_TABLE" && say "postgres  nftables table inet $HA_NFT_TABLE removed"
  fi
}

# Back to a primary and a secondary: the rules gone, every node's keeper running (a former primary rejoins as
# the secondary, rewound by pg_rewind).
ha_heal() {
  local name
  ha_unblock
  for name in monitor "${HA_NODE_NAMES[@]}"; do ha_launch "$name"; done
  ha_wait_healthy 300
  say "postgres  HA       healed: primary 127.0.0.1:$(ha_primary_port)"
}

ha_fault_command() {
  case "${1:-}" in
    ha-kill-primary) ha_kill_postmaster ;;
    ha-crash-primary) ha_crash_primary ;;
    ha-lose-primary) ha_lose_primary ;;
    ha-heal) ha_heal ;;
    ha-unblock) ha_unblock ;;
    ha-primary) ha_primary_port ;;
    *) say "usage: ORDERS_STACK_PG=ha scripts/stack up|down|status|ha-dsn [DB]|ha-primary"
       say "       ORDERS_STACK_PG=ha scripts/stack ha-kill-primary|ha-crash-primary|ha-lose-primary|ha-heal|ha-unblock"
       exit 2 ;;
  esac
}
