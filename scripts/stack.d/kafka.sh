# shellcheck shell=bash
# Apache Kafka (KRaft, combined broker+controller) from the broker jars on Maven Central: the single node, and
# kafka-start/kafka-stop for the Kafka that ORDERS_STACK_KAFKA_NODES selects.

KAFKA_LIBS="$STACK/kafka-libs"
KAFKA_DATA="$STACK/kafka-data"
KAFKA_PID="$STACK/kafka.pid"

kafka_fetch() {
  [ -f "$KAFKA_LIBS/.complete" ] && return
  say "fetching the Kafka broker classpath from Maven Central (once; cached in $KAFKA_LIBS)"
  rm -rf "$KAFKA_LIBS"
  mvn -q -B -f "$ROOT/scripts/kafka/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$KAFKA_LIBS" -DincludeScope=runtime >"$LOGS/maven.log" 2>&1 \
    || { tail -30 "$LOGS/maven.log" >&2; die "could not fetch the Kafka jars"; }
  touch "$KAFKA_LIBS/.complete"
}

kafka_config() {
  mkdir -p "$KAFKA_DATA"
  cat >"$STACK/kafka.properties" <<PROPS
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT
inter.broker.listener.name=PLAINTEXT
log.dirs=$KAFKA_DATA
num.partitions=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
PROPS
  log4j_config "$STACK/log4j2.properties" "$LOGS/kafka.log"
}

log4j_config() { # file log-file
  cat >"$1" <<PROPS
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = $2
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = info
logger.apache.name = org.apache.kafka
logger.apache.level = warn
PROPS
}

java_opts() { # heap log4j-config
  # shellcheck disable=SC2086 # the heap flags are meant to split
  echo $1 -XX:+UseG1GC -Djava.awt.headless=true -Dlog4j2.configurationFile="$2"
}

kafka_java() {
  # shellcheck disable=SC2046
  java $(java_opts "$KAFKA_HEAP" "$STACK/log4j2.properties") -cp "$KAFKA_LIBS/*" "$@"
}

kafka_ready() { (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null && grep -q "Kafka Server started" "$LOGS/kafka.log"; }
kafka_running() { [ -s "$KAFKA_PID" ] && kill -0 "$(cat "$KAFKA_PID")" 2>/dev/null; }

kafka_up() {
  if kafka_running && kafka_ready; then say "kafka     up       127.0.0.1:$KAFKA_PORT"; return; fi
  kafka_fetch
  kafka_config
  if [ ! -f "$KAFKA_DATA/meta.properties" ]; then
    local cluster_id
    cluster_id="$(kafka_java kafka.tools.StorageTool random-uuid 2>>"$LOGS/kafka-format.log" | tail -1)"
    kafka_java kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$STACK/kafka.properties" \
      >>"$LOGS/kafka-format.log" 2>&1 || { tail -20 "$LOGS/kafka-format.log" >&2; die "kafka storage format failed"; }
  fi
  : >"$LOGS/kafka.log"
  # setsid: a broker is a daemon of the stack, not of whoever started it. In the caller's process group a
  # signal to that group (a timeout, Ctrl-C of a test run that restarted a node) would take the broker along.
  # shellcheck disable=SC2046
  setsid nohup java $(java_opts "$KAFKA_HEAP" "$STACK/log4j2.properties") -cp "$KAFKA_LIBS/*" kafka.Kafka \
    "$STACK/kafka.properties" >"$LOGS/kafka.out" 2>&1 </dev/null &
  echo $! >"$KAFKA_PID"
  wait_for kafka 120 kafka_ready
  say "kafka     started  127.0.0.1:$KAFKA_PORT (KRaft, single node)"
}

kafka_down() {
  kafka_running || return 0
  local pid; pid="$(cat "$KAFKA_PID")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$KAFKA_PID"
}

# kafka-start/kafka-stop: an id names a cluster node (the single node has none); without one, the Kafka that
# ORDERS_STACK_KAFKA_NODES selects, all of its nodes.
kafka_start() {
  if [ -n "${1:-}" ]; then need_node "$1"; node_up "$1"
  elif cluster_mode; then cluster_up
  else kafka_up; fi
}

kafka_stop() {
  if [ -n "${1:-}" ]; then need_node "$1"; nodes_down "$1"
  elif cluster_mode; then nodes_down "${NODE_IDS[@]}"
  else kafka_down; fi
}
