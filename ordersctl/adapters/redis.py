"""Redis: client factory with short timeouts, so a slow or absent Redis never blocks a request for long."""

from __future__ import annotations

import socket
import sys

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ordersctl.config import RedisSettings

# TCP keepalives on every connection: a kept connection to a Redis that vanished without a word (a host lost, a
# firewall dropping packets) is ended within 10 s, as PostgreSQL's and Kafka's are, even while nothing is sent.
KEEPALIVE_OPTIONS: dict[int, int] = (
    {socket.TCP_KEEPIDLE: 4, socket.TCP_KEEPINTVL: 2, socket.TCP_KEEPCNT: 3} if sys.platform == "linux" else {}
)


def make_client(settings: RedisSettings) -> redis.Redis:
    """A client whose every command takes at most ``redis.timeout_seconds`` to connect and as long to answer, once:
    no retry (redis-py's default tries a command up to 11 times with back-off, seconds on a Redis that does not
    answer); the cache layer steps aside after a failure instead (cache/redis_layer.py). Parameters in the URL win."""
    return redis.Redis.from_url(
        settings.url,
        socket_timeout=settings.timeout_seconds,
        socket_connect_timeout=settings.timeout_seconds,
        socket_keepalive=True,
        socket_keepalive_options=KEEPALIVE_OPTIONS,
        health_check_interval=30,
        retry_on_timeout=False,
        retry=Retry(NoBackoff(), 0),
    )
