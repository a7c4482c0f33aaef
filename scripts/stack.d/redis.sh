# shellcheck shell=bash
# Redis from the Debian package, one server without persistence.

redis_ready() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping | grep -q PONG; }

redis_up() {
  if redis_ready 2>/dev/null; then say "redis     up       127.0.0.1:$REDIS_PORT"; return; fi
  mkdir -p "$STACK/redis"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --dir "$STACK/redis" \
    --pidfile "$STACK/redis/redis.pid" --logfile "$LOGS/redis.log" --save '' --appendonly no
  wait_for redis 30 redis_ready
  say "redis     started  127.0.0.1:$REDIS_PORT"
}

redis_down() {
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
}
