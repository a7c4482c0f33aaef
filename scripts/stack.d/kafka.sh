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
PROPS
  single_node_config "$KAFKA_DATA" >>"$STACK/kafka.properties"
  log4j_config "$STACK/log4j2.properties" "$LOGS/kafka.log"
}

# A single node's settings besides its listeners (the plain node's and the secured one's).
single_node_config() { # data-dir
  cat <<PROPS
log.dirs=$1
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

# A single node's storage, formatted once before its first start (the plain node's and the secured one's).
single_node_format() { # data-dir log4j-config properties [format options...]
  local data=$1 log4j=$2 props=$3 cluster_id; shift 3
  [ ! -f "$data/meta.properties" ] || return 0
  # shellcheck disable=SC2046
  cluster_id="$(java $(java_opts "$KAFKA_HEAP" "$log4j") -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool random-uuid \
    2>>"$LOGS/kafka-format.log" | tail -1)"
  # shellcheck disable=SC2046
  java $(java_opts "$KAFKA_HEAP" "$log4j") -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool format --standalone \
    -t "$cluster_id" -c "$props" "$@" >>"$LOGS/kafka-format.log" 2>&1 \
    || { tail -20 "$LOGS/kafka-format.log" >&2; die "kafka storage format failed"; }
}

kafka_ready() { (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null && grep -q "Kafka Server started" "$LOGS/kafka.log"; }
kafka_running() { [ -s "$KAFKA_PID" ] && kill -0 "$(cat "$KAFKA_PID")" 2>/dev/null; }

kafka_up() {
  if kafka_running && kafka_ready; then say "kafka     up       127.0.0.1:$KAFKA_PORT"; return; fi
  kafka_fetch
  kafka_config
  single_node_format "$KAFKA_DATA" "$STACK/log4j2.properties" "$STACK/kafka.properties"
  : >"$LOGS/kafka.log"
  single_node_launch "$STACK/log4j2.properties" "$STACK/kafka.properties" "$LOGS/kafka.out" "$KAFKA_PID"
  wait_for kafka 120 kafka_ready
  say "kafka     started  127.0.0.1:$KAFKA_PORT (KRaft, single node)"
}

single_node_launch() { # log4j-config properties out-file pid-file
  # setsid: a broker is a daemon of the stack, not of whoever started it. In the caller's process group a
  # signal to that group (a timeout, Ctrl-C of a test run that restarted a node) would take the broker along.
  # shellcheck disable=SC2046
  setsid nohup java $(java_opts "$KAFKA_HEAP" "$1") -cp "$KAFKA_LIBS/*" kafka.Kafka "$2" >"$3" 2>&1 </dev/null &
  echo $! >"$4"
}

kafka_down() { kafka_running || return 0; single_node_stop "$KAFKA_PID"; }

single_node_stop() { # pid-file: SIGTERM (a clean shutdown), then -9 if it still runs after 30 s
  local pid; pid="$(cat "$1")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
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
