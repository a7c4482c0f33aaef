# shellcheck shell=bash
# The secured stack's Kafka (KRaft, one combined node): a SASL_SSL listener (SCRAM-SHA-512) and an SSL listener
# that requires a client certificate, the StandardAuthorizer with the broker as its only super user, and
# ordersctl's ACLs (kafka_acls.py). SCRAM credentials are bootstrapped into the metadata log when the storage is
# formatted (kafka-storage format --add-scram), so the broker knows them before it first starts.
SECURE_KAFKA_DATA="$SECURE/kafka-data"
SECURE_KAFKA_PID="$SECURE/kafka.pid"
SECURE_KAFKA_LOG="$LOGS/kafka-secure.log"

secure_kafka_running() {
  [ -s "$SECURE_KAFKA_PID" ] && kill -0 "$(cat "$SECURE_KAFKA_PID")" 2>/dev/null \
    && tr '\0' ' ' <"/proc/$(cat "$SECURE_KAFKA_PID")/cmdline" 2>/dev/null | grep -qF "$SECURE/kafka.properties"
}
secure_kafka_ready() {
  secure_kafka_running && (exec 3<>"/dev/tcp/127.0.0.1/$SECURE_SASL_PORT") 2>/dev/null \
    && grep -q "Kafka Server started" "$SECURE_KAFKA_LOG" 2>/dev/null
}

secure_kafka_config() {
  local tls="$SECURE/tls"
  mkdir -p "$SECURE_KAFKA_DATA"
  cat >"$SECURE/kafka.properties" <<PROPS
process.roles=broker,controller
node.id=1
listeners=SASL_SSL://127.0.0.1:$SECURE_SASL_PORT,SSL://127.0.0.1:$SECURE_MTLS_PORT,CONTROLLER://127.0.0.1:$SECURE_CONTROLLER_PORT
advertised.listeners=SASL_SSL://127.0.0.1:$SECURE_SASL_PORT,SSL://127.0.0.1:$SECURE_MTLS_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:SSL
controller.quorum.bootstrap.servers=127.0.0.1:$SECURE_CONTROLLER_PORT
inter.broker.listener.name=SSL
ssl.keystore.type=PEM
ssl.keystore.location=$tls/broker-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$tls/ca.crt
listener.name.ssl.ssl.client.auth=required
listener.name.controller.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^CN=([^,]+)\$/\$1/,DEFAULT
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:broker
allow.everyone.if.no.acl.found=false
PROPS
  single_node_config "$SECURE_KAFKA_DATA" >>"$SECURE/kafka.properties"
  chmod 600 "$SECURE/kafka.properties"
  log4j_config "$SECURE/log4j2.properties" "$SECURE_KAFKA_LOG"
}

secure_kafka_up() {
  if secure_kafka_ready; then say "kafka     up       127.0.0.1:$SECURE_SASL_PORT (SASL_SSL), $SECURE_MTLS_PORT (mTLS)"
  else
    kafka_fetch
    secure_kafka_config
    KAFKA_HEAP="$SECURE_KAFKA_HEAP" single_node_format "$SECURE_KAFKA_DATA" "$SECURE/log4j2.properties" "$SECURE/kafka.properties" \
      --add-scram "SCRAM-SHA-512=[name=$SECURE_USER,password=$(secret kafka_sasl_password)]"
    : >"$SECURE_KAFKA_LOG"
    KAFKA_HEAP="$SECURE_KAFKA_HEAP" single_node_launch "$SECURE/log4j2.properties" "$SECURE/kafka.properties" "$LOGS/kafka-secure.out" "$SECURE_KAFKA_PID"
    wait_for "secured kafka" 120 secure_kafka_ready
    say "kafka     started  127.0.0.1:$SECURE_SASL_PORT (SASL_SSL, SCRAM-SHA-512), $SECURE_MTLS_PORT (SSL, client certificates)"
  fi
  # Idempotent: an ACL that exists already is left as it is. As the super user, over the mTLS listener.
  "$ROOT/.venv/bin/python" "$ROOT/scripts/stack.d/kafka_acls.py" "127.0.0.1:$SECURE_MTLS_PORT" "$SECURE/tls" "$SECURE_USER" \
    || die "could not set ordersctl's ACLs on the secured kafka"
}

secure_kafka_down() { secure_kafka_running || return 0; single_node_stop "$SECURE_KAFKA_PID"; }
