"""Liveness on every connection: a peer that vanishes without a word (no RST: a host lost, a firewall dropping
packets) is noticed within a bound, not after TCP's retransmission limit; the user's own parameters win (Kafka's:
test_kafka_config)."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
import redis

from ordersctl.adapters.postgres import LIVENESS_SECONDS, SERVER_LIVENESS, connect_kwargs
from ordersctl.adapters.redis import make_client
from ordersctl.cache.redis_connections import ThreadConnections
from ordersctl.config import PostgresSettings, RedisSettings


def test_every_postgres_connection_has_a_user_timeout_keepalives_and_a_connect_timeout() -> None:
    kwargs = connect_kwargs(PostgresSettings())
    assert kwargs["tcp_user_timeout"] == LIVENESS_SECONDS * 1000 == 10_000
    assert (kwargs["keepalives"], kwargs["keepalives_idle"], kwargs["keepalives_interval"]) == (1, 4, 2)
    assert kwargs["keepalives_idle"] + kwargs["keepalives_interval"] * kwargs["keepalives_count"] <= LIVENESS_SECONDS
    assert kwargs["connect_timeout"] == 5
    # libpq knows every one of them: a misspelt parameter would fail every connection
    psycopg.conninfo.make_conninfo(PostgresSettings().dsn, **{k: v for k, v in kwargs.items() if k != "options"})


def test_the_dsns_own_liveness_parameters_win() -> None:
    dsn = "postgresql://u@h/db?tcp_user_timeout=30000&keepalives_idle=60&connect_timeout=20"
    kwargs = connect_kwargs(PostgresSettings(dsn=dsn))
    assert not {"tcp_user_timeout", "keepalives_idle", "connect_timeout"} & set(kwargs)
    assert kwargs["keepalives_count"] == 3  # the ones it does not set are still ours
    # postgres.connect_timeout set on purpose wins over the DSN's
    assert connect_kwargs(PostgresSettings(dsn=dsn, connect_timeout=3))["connect_timeout"] == 3


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose server never answers: its accept queue is full, so the kernel drops every new SYN (as a
    partition does), and the connections already in it are never read."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(2):  # fill the queue (backlog 0 holds one, Linux takes one more)
        filler = socket.socket()
        filler.settimeout(0.2)
        with contextlib.suppress(TimeoutError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    yield port
    for filler in fillers:
        filler.close()
    server.close()


def test_a_silent_redis_holds_a_read_no_longer_than_its_timeout(silent_port: int) -> None:
    settings = RedisSettings(url=f"redis://127.0.0.1:{silent_port}/0", timeout_seconds=0.2)
    client = make_client(settings)
    pipeline = client.pipeline(transaction=False)
    pipeline.set("k", b"v", ex=5)
    attempts: list[Callable[[], object]] = [lambda: ThreadConnections(client).get("order:x"), client.ping,
                                            pipeline.execute]  # fmt: skip
    for attempt in attempts:
        started = time.monotonic()
        with pytest.raises(redis.RedisError):
            attempt()
        assert time.monotonic() - started < settings.timeout_seconds + 0.15
    pool_kwargs = client.connection_pool.connection_kwargs
    assert pool_kwargs["socket_keepalive"] is True and pool_kwargs["socket_keepalive_options"]


def test_the_servers_end_of_every_session_has_the_same_liveness() -> None:
    options = connect_kwargs(PostgresSettings())["options"]
    for name, value in SERVER_LIVENESS.items():
        assert f"-c {name}={value}" in options
    assert SERVER_LIVENESS["tcp_user_timeout"] == str(LIVENESS_SECONDS * 1000)
    # the DSN's own options win (they come first; ours leave out what they set)
    dsn = "postgresql://u@h/db?options=-c%20tcp_keepalives_idle%3D60"
    options = connect_kwargs(PostgresSettings(dsn=dsn))["options"]
    assert options.startswith("-c tcp_keepalives_idle=60") and "tcp_keepalives_idle=4" not in options
    assert "-c tcp_keepalives_count=3" in options
