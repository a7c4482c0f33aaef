# shellcheck shell=bash
# The secured stack (ORDERS_STACK_SECURE=1): its own CA and certificates, made once with openssl, its secrets
# and the client settings it writes. Its services: secure-services.sh (PostgreSQL, PgBouncer, Redis) and
# secure-kafka.sh. Everything lives under $STACK/secure. Its ports differ from the plain stack's, so both run,
# and lie outside Linux's ephemeral range (32768-60999), where a client connection can hold a port a server needs.
SECURE="$STACK/secure"
SECRETS="$SECURE/secrets"
SECURE_PG_PORT="${ORDERS_STACK_SECURE_PG_PORT:-15439}"
SECURE_BOUNCER_PORT="${ORDERS_STACK_SECURE_BOUNCER_PORT:-16439}"
SECURE_REDIS_PORT="${ORDERS_STACK_SECURE_REDIS_PORT:-63809}"
SECURE_SASL_PORT="${ORDERS_STACK_SECURE_KAFKA_SASL_PORT:-19192}"
SECURE_CONTROLLER_PORT="${ORDERS_STACK_SECURE_KAFKA_CONTROLLER_PORT:-19193}"
SECURE_MTLS_PORT="${ORDERS_STACK_SECURE_KAFKA_MTLS_PORT:-19194}"
# Smaller than the plain node's: it carries only the secured tests' few messages.
SECURE_KAFKA_HEAP="${ORDERS_STACK_SECURE_KAFKA_HEAP:--Xms128m -Xmx512m}"
# The one user name of ordersctl everywhere: PostgreSQL role, Redis ACL user, Kafka SCRAM user and the common
# name of its client certificate (Kafka maps CN=ordersctl to User:ordersctl, so one set of ACLs serves both).
SECURE_USER=ordersctl

secure_mode() { [ -n "${ORDERS_STACK_SECURE:-}" ] && [ "${ORDERS_STACK_SECURE}" != 0 ]; }

secret() { cat "$SECRETS/$1"; } # name

# A random password per service, written once (mode 600); the services and the client settings read the files.
secure_secrets() {
  local name
  mkdir -p "$SECRETS" && chmod 700 "$SECRETS"
  for name in postgres_password redis_password kafka_sasl_password kafka_ssl_key_password; do
    [ -s "$SECRETS/$name" ] || (umask 077 && openssl rand -hex 18 >"$SECRETS/$name")
  done
}

# cert name subject ext: a key and a certificate signed by the stack's CA, unless they exist.
secure_cert() {
  local name=$1 subject=$2 ext=$3 dir="$SECURE/tls"
  [ -s "$dir/$name.crt" ] && return
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$name.key" 2>/dev/null)
  openssl req -new -key "$dir/$name.key" -subj "$subject" -out "$dir/$name.csr" 2>/dev/null
  printf '%s\n' "$ext" >"$dir/$name.ext"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 825 \
    -sha256 -extfile "$dir/$name.ext" -out "$dir/$name.crt" 2>/dev/null || die "openssl could not sign $name.crt"
  rm -f "$dir/$name.csr" "$dir/$name.ext"
}

# The CA; the server certificate of PostgreSQL, PgBouncer and Redis; the broker's (Kafka's listeners and its own
# connections to its controller, as User:broker, the super user); the client's for Kafka mTLS, its key encrypted
# with kafka_ssl_key_password (ssl.key.password). Each names 127.0.0.1 and localhost.
secure_certs() {
  local dir="$SECURE/tls" san="subjectAltName=DNS:localhost,IP:127.0.0.1"
  mkdir -p "$dir"
  if [ ! -s "$dir/ca.crt" ]; then
    say "making the secured stack's CA and certificates (once; in $dir)"
    (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/ca.key" 2>/dev/null)
    openssl req -x509 -new -key "$dir/ca.key" -subj "/CN=ordersctl local stack CA" -days 3650 -sha256 \
      -out "$dir/ca.crt" 2>/dev/null || die "openssl could not make the CA"
  fi
  secure_cert server "/CN=localhost" "$san
extendedKeyUsage=serverAuth"
  secure_cert broker "/CN=broker" "$san
extendedKeyUsage=serverAuth,clientAuth"
  secure_cert client "/CN=$SECURE_USER" "extendedKeyUsage=clientAuth"
  if [ ! -s "$dir/client-encrypted.key" ]; then
    (umask 077 && openssl pkcs8 -topk8 -v2 aes-256-cbc -in "$dir/client.key" -out "$dir/client-encrypted.key" \
      -passout "file:$SECRETS/kafka_ssl_key_password") || die "openssl could not encrypt the client key"
  fi
  # Kafka reads a PEM keystore: the unencrypted PKCS#8 key, then the certificate.
  if [ ! -s "$dir/broker-keystore.pem" ]; then
    (umask 077 && { openssl pkcs8 -topk8 -nocrypt -in "$dir/broker.key"; cat "$dir/broker.crt"; } >"$dir/broker-keystore.pem")
  fi
}

# The client settings a user would write: ordersctl.toml (Kafka over SASL_SSL with SCRAM-SHA-512) and
# ordersctl-mtls.toml (Kafka over SSL with the client certificate); both reach PostgreSQL through PgBouncer
# (transaction pooling) with verify-full, and Redis over TLS as the ACL user. Secrets stay in their files.
secure_client_settings() {
  local tls="$SECURE/tls" kafka file
  for kafka in sasl mtls; do
    file="$SECURE/ordersctl.toml"
    [ "$kafka" = sasl ] || file="$SECURE/ordersctl-mtls.toml"
    {
      echo "# Written by scripts/stack (ORDERS_STACK_SECURE=1) for its secured services; secrets are read from files."
      echo "[kafka]"
      if [ "$kafka" = sasl ]; then
        echo "bootstrap_servers = \"127.0.0.1:$SECURE_SASL_PORT\""
        echo 'security_protocol = "SASL_SSL"'
        echo 'sasl_mechanism = "SCRAM-SHA-512"'
        echo "sasl_username = \"$SECURE_USER\""
        echo "sasl_password_file = \"$SECRETS/kafka_sasl_password\""
      else
        echo "bootstrap_servers = \"127.0.0.1:$SECURE_MTLS_PORT\""
        echo 'security_protocol = "SSL"'
        echo "ssl_certificate_location = \"$tls/client.crt\""
        echo "ssl_key_location = \"$tls/client-encrypted.key\""
        echo "ssl_key_password_file = \"$SECRETS/kafka_ssl_key_password\""
      fi
      echo "ssl_ca_location = \"$tls/ca.crt\""
      echo
      echo "[postgres]"
      echo "dsn = \"postgresql://$SECURE_USER@127.0.0.1:$SECURE_BOUNCER_PORT/orders?sslmode=verify-full&sslrootcert=$tls/ca.crt\""
      echo "password_file = \"$SECRETS/postgres_password\""
      echo 'pooler = "transaction"'
      echo
      echo "[redis]"
      echo "url = \"rediss://$SECURE_USER@127.0.0.1:$SECURE_REDIS_PORT/0?ssl_ca_certs=$tls/ca.crt\""
      echo "password_file = \"$SECRETS/redis_password\""
    } >"$file.tmp"
    mv "$file.tmp" "$file"
  done
}

secure_up() {
  local missing=()
  command -v openssl >/dev/null || missing+=(openssl)
  command -v pgbouncer >/dev/null || missing+=(pgbouncer)
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
  [ -x "$ROOT/.venv/bin/python" ] || die "the secured stack sets Kafka's ACLs with ordersctl's virtualenv: run make install first"
  mkdir -p "$SECURE"
  secure_secrets
  secure_certs
  secure_pg_up
  secure_bouncer_up
  secure_redis_up
  secure_kafka_up
  secure_client_settings
  say "client settings: $SECURE/ordersctl.toml (Kafka SASL_SSL/SCRAM), $SECURE/ordersctl-mtls.toml (Kafka mTLS)"
}

secure_down() { secure_kafka_down; secure_redis_down; secure_bouncer_down; secure_pg_down; say "secured stack stopped"; }

secure_status() {
  local rc=0
  if secure_pg_ready; then echo "postgres  up    127.0.0.1:$SECURE_PG_PORT  hostssl, scram-sha-256"
  else echo "postgres  down  127.0.0.1:$SECURE_PG_PORT"; rc=1; fi
  if secure_bouncer_ready; then echo "pgbouncer up    127.0.0.1:$SECURE_BOUNCER_PORT  TLS, transaction pooling"
  else echo "pgbouncer down  127.0.0.1:$SECURE_BOUNCER_PORT"; rc=1; fi
  if secure_redis_ready; then echo "redis     up    127.0.0.1:$SECURE_REDIS_PORT  TLS, ACL user $SECURE_USER"
  else echo "redis     down  127.0.0.1:$SECURE_REDIS_PORT"; rc=1; fi
  if secure_kafka_ready; then echo "kafka     up    127.0.0.1:$SECURE_SASL_PORT SASL_SSL, 127.0.0.1:$SECURE_MTLS_PORT mTLS"
  else echo "kafka     down  127.0.0.1:$SECURE_SASL_PORT SASL_SSL, 127.0.0.1:$SECURE_MTLS_PORT mTLS"; rc=1; fi
  return $rc
}
