# shellcheck shell=bash
# The Kafka cluster (ORDERS_STACK_KAFKA_NODES=3): lifecycle of its nodes. Killing and pausing one: faults.sh.

# Three combined broker+controller nodes from the same jars, each with its own ports, data, pid and log, so the
# fault tests can kill, pause and restart one at a time. The quorum is static (controller.quorum.voters): its
# membership never changes here, and every node is formatted alike, with one cluster id.
CLUSTER="$STACK/cluster"
NODE_IDS=(1 2 3)
# Smaller than the single node's: three JVMs (four with the single node) share a 2-core machine.
CLUSTER_HEAP="${ORDERS_STACK_CLUSTER_HEAP:--Xms192m -Xmx512m}"

node_port() { echo $((29090 + 2 * $1)); }
node_props() { echo "$CLUSTER/node$1.properties"; }
node_log() { echo "$LOGS/kafka-node$1.log"; }
cluster_bootstrap() {
  local id
  for id in "${NODE_IDS[@]}"; do printf '127.0.0.1:%s,' "$(node_port "$id")"; done | sed 's/,$//'
}

need_node() { # id: exit 2 unless it names a cluster node
  case "${1:-}" in
    1 | 2 | 3) ;;
    *) say "stack: a Kafka cluster node is 1, 2 or 3 (got '${1:-}')"; exit 2 ;;
  esac
}

# The pid of the node's JVM while it runs (stopped by SIGSTOP included). The command line is checked so that a
# stale pid file never names a process that took over the number (kafka-kill sends -9 to it); a zombie, killed
# but not yet reaped, does not run.
node_pid() {
  local file="$CLUSTER/node$1.pid" pid state
  [ -s "$file" ] || return 1
  pid="$(cat "$file")"
  state="$(ps -o state= -p "$pid" 2>/dev/null | tr -d ' ')" || return 1
  [ -n "$state" ] && [ "$state" != Z ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$(node_props "$1")" || return 1
  echo "$pid"
}

node_paused() { local pid; pid="$(node_pid "$1")" && [ "$(ps -o state= -p "$pid" | tr -d ' ')" = T ]; }

# "Kafka Server started" comes after the broker caught up with the metadata log and the controller unfenced it.
node_ready() {
  node_pid "$1" >/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$(node_port "$1")") 2>/dev/null \
    && grep -q "Kafka Server started" "$(node_log "$1")" 2>/dev/null
}

node_java() { # id class args...
  local id=$1; shift
  # shellcheck disable=SC2046
  java $(java_opts "$CLUSTER_HEAP" "$CLUSTER/node$id-log4j2.properties") -cp "$KAFKA_LIBS/*" "$@"
}

node_config() {
  local id=$1 voters="" other
  for other in "${NODE_IDS[@]}"; do voters+="${voters:+,}$other@127.0.0.1:$(($(node_port "$other") + 1))"; done
  mkdir -p "$CLUSTER/node$id"
  cat >"$(node_props "$id")" <<PROPS
process.roles=broker,controller
node.id=$id
listeners=PLAINTEXT://127.0.0.1:$(node_port "$id"),CONTROLLER://127.0.0.1:$(($(node_port "$id") + 1))
advertised.listeners=PLAINTEXT://127.0.0.1:$(node_port "$id")
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.quorum.voters=$voters
inter.broker.listener.name=PLAINTEXT
log.dirs=$CLUSTER/node$id
num.partitions=1
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
auto.create.topics.enable=false
offsets.topic.replication.factor=3
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
group.initial.rebalance.delay.ms=0
log.retention.hours=168
PROPS
  log4j_config "$CLUSTER/node$id-log4j2.properties" "$(node_log "$id")"
}

# One id for the whole cluster, made once: a node formatted with another one would refuse to join.
cluster_id() {
  local file="$CLUSTER/cluster.id" id
  if [ ! -s "$file" ]; then
    id="$(node_java 1 kafka.tools.StorageTool random-uuid 2>>"$LOGS/kafka-format.log" | tail -1)"
    [ -n "$id" ] || die "kafka cluster: no cluster id from the StorageTool (log: $LOGS/kafka-format.log)"
    echo "$id" >"$file"
  fi
  cat "$file"
}

# Start a node's JVM without waiting for it (a node alone has no quorum: all start, then all are waited for).
# A paused node is resumed; a running one is left alone.
node_launch() {
  local id=$1 pid log cid
  if pid="$(node_pid "$id")"; then
    if node_paused "$id"; then kill -CONT "$pid"; say "kafka-$id   resumed (it was paused)"; fi
    return
  fi
  node_config "$id"
  if [ ! -f "$CLUSTER/node$id/meta.properties" ]; then
    cid="$(cluster_id)"
    node_java "$id" kafka.tools.StorageTool format -t "$cid" -c "$(node_props "$id")" >>"$LOGS/kafka-format.log" 2>&1 \
      || { tail -20 "$LOGS/kafka-format.log" >&2; die "kafka-$id: storage format failed"; }
  fi
  # The previous run's log stays beside the new one (a killed node's last words); readiness reads only the new.
  log="$(node_log "$id")"
  [ ! -f "$log" ] || mv -f "$log" "$log.prev"
  [ ! -f "${log%.log}.out" ] || mv -f "${log%.log}.out" "${log%.log}.out.prev"
  # setsid: as for the single node (kafka_up), a node must outlive the process group that (re)started it.
  # shellcheck disable=SC2046
  setsid nohup java $(java_opts "$CLUSTER_HEAP" "$CLUSTER/node$id-log4j2.properties") -cp "$KAFKA_LIBS/*" kafka.Kafka \
    "$(node_props "$id")" >"${log%.log}.out" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$CLUSTER/node$id.pid"
  # Until nohup has exec'd the JVM, the process does not show the node's command line that node_pid looks for.
  for _ in $(seq 1 100); do
    if node_pid "$id" >/dev/null || ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
}

nodes_wait() { # seconds ids...: until each is ready; a JVM that exits meanwhile fails at once
  local secs=$1 id; shift
  local end=$((SECONDS + secs))
  for id in "$@"; do
    until node_ready "$id"; do
      if ! node_pid "$id" >/dev/null; then
        tail -n 5 "$LOGS/kafka-node$id.out" >&2 || true
        grep -E '^\[[^]]*\] (ERROR|FATAL) ' "$(node_log "$id")" | tail -n 3 | cut -c1-400 >&2 || true
        die "kafka-$id exited while starting (log: $(node_log "$id"))"
      fi
      [ $SECONDS -lt $end ] \
        || die "kafka-$id did not start within ${secs}s (log: $(node_log "$id")); a node starts only while most nodes run"
      sleep 0.5
    done
  done
}

# Every node registered and unfenced, as the metadata tells a client; skipped before the virtualenv exists
# (the nodes' own "started" lines are then the only check).
cluster_complete() {
  local py="$ROOT/.venv/bin/python"
  [ -x "$py" ] || return 0
  [ "$("$py" -c 'import sys; from confluent_kafka.admin import AdminClient
print(len(AdminClient({"bootstrap.servers": sys.argv[1], "log_level": 0}).list_topics(timeout=5).brokers))' \
    "$(cluster_bootstrap)" 2>/dev/null)" = "${#NODE_IDS[@]}" ]
}

cluster_up() {
  local id started=()
  kafka_fetch
  for id in "${NODE_IDS[@]}"; do
    if node_ready "$id" && ! node_paused "$id"; then continue; fi
    node_launch "$id"
    started+=("$id")
  done
  nodes_wait 180 "${NODE_IDS[@]}"
  wait_for "the kafka cluster (${#NODE_IDS[@]} brokers in its metadata)" 60 cluster_complete
  if [ ${#started[@]} -eq 0 ]; then
    say "kafka     up       $(cluster_bootstrap) (KRaft, ${#NODE_IDS[@]} nodes)"
  else
    say "kafka     started  $(cluster_bootstrap) (KRaft, ${#NODE_IDS[@]} nodes; started: ${started[*]})"
  fi
}

node_up() {
  local id=$1
  kafka_fetch
  if node_ready "$id" && ! node_paused "$id"; then say "kafka-$id   up       127.0.0.1:$(node_port "$id")"; return; fi
  node_launch "$id"
  nodes_wait 180 "$id"
  say "kafka-$id   started  127.0.0.1:$(node_port "$id")"
}

nodes_down() { # ids...: SIGTERM (a clean shutdown) to all at once, then -9 for any still there after 60 s
  local id pids=() pid
  for id in "$@"; do
    pid="$(node_pid "$id")" || continue
    kill -CONT "$pid" 2>/dev/null || true # a paused JVM would not act on the SIGTERM
    kill "$pid" 2>/dev/null || true
    pids+=("$pid")
  done
  for _ in $(seq 1 120); do
    local alive=0
    for id in "$@"; do node_pid "$id" >/dev/null && alive=1; done
    [ $alive = 1 ] || break
    sleep 0.5
  done
  [ ${#pids[@]} -eq 0 ] || kill -9 "${pids[@]}" 2>/dev/null || true
  for id in "$@"; do node_pid "$id" >/dev/null || rm -f "$CLUSTER/node$id.pid"; done
}

cluster_status() {
  local id pid rc=0 state
  for id in "${NODE_IDS[@]}"; do
    if ! pid="$(node_pid "$id")"; then state=down pid=""
    elif node_paused "$id"; then state=paused
    elif node_ready "$id"; then state=up
    else state=starting; fi
    [ "$state" = up ] || rc=1
    printf '%-10s%-9s%s\n' "kafka-$id" "$state" "127.0.0.1:$(node_port "$id")${pid:+  pid $pid}"
  done
  return $rc
}

