"""Redis: client factory with short timeouts, so a slow or absent Redis never blocks a request for long."""

from __future__ import annotations

import redis

from ordersctl.config import RedisSettings


def make_client(settings: RedisSettings) -> redis.Redis:
    return redis.Redis.from_url(
        settings.url,
        socket_timeout=settings.timeout_seconds,
        socket_connect_timeout=settings.timeout_seconds,
        health_check_interval=30,
        retry_on_timeout=False,
    )
