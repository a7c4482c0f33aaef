"""Runtime: the only place clients are built. Each is created on first use and closed by ``close()``.

Nothing here connects at import time or in ``__init__``; worker processes build their own Runtime after
they start, so no client crosses a fork.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import cached_property
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from ordersctl import tracing as tracing_port
from ordersctl.adapters import kafka as kafka_adapter
from ordersctl.adapters import kafka_errors
from ordersctl.config import Settings
from ordersctl.errors import ConfigError
from ordersctl.settings_postgres import PostgresSettings

if TYPE_CHECKING:
    import psycopg
    import redis
    from psycopg_pool import ConnectionPool

    from ordersctl.adapters.order_store import OrderStore

log = logging.getLogger(__name__)


def finishes_within(seconds: float, fn: Callable[[], object], name: str) -> bool:
    """Run ``fn`` in a daemon thread and wait for it at most ``seconds``; False if it is still running.

    What ``fn`` raises is logged as one line: closing a client can raise the error that made the process stop
    (librdkafka serves its error callback from within ``close()``, and ours raises an error that cannot heal), and
    a thread's uncaught exception would print a traceback after the process's one-line reason."""

    def run() -> None:
        try:
            fn()
        except Exception as exc:  # nothing more to do with it: the process is closing
            log.warning("%s ended with an error", name, extra={"error": str(exc)})

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


class Runtime:
    """Settings plus lazily built clients."""

    def __init__(self, settings: Settings, member: kafka_adapter.Member | None = None) -> None:
        self.settings = settings
        # Names this process's Kafka clients (client.id; a consume worker's static membership).
        self.member = member or kafka_adapter.Member()
        self._producers: dict[str, Producer] = {}
        self._consumers: list[Consumer] = []

    # PostgreSQL's client (psycopg and its pool: about 75 ms of CPU to import) is imported by the methods that use
    # it: produce, topics and the DLQ tools build a Runtime and never talk to PostgreSQL.
    @cached_property
    def pg_pool(self) -> ConnectionPool:
        from ordersctl.adapters import postgres as pg_adapter

        return pg_adapter.make_pool(self.settings.postgres)

    def pg_connection(self, timeout: float | None = None) -> AbstractContextManager[psycopg.Connection[Any]]:
        """A pooled connection for one unit of work (``with runtime.pg_connection() as conn``). PostgreSQL errors
        raised in the ``with`` block, and a pool with no connection to give, come out as our error classes
        (``adapters.postgres.classify``), so callers decide retry or dead letter without knowing psycopg."""
        from ordersctl.adapters import postgres as pg_adapter

        return pg_adapter.pooled_connection(self.pg_pool, self.settings.postgres, timeout)

    @cached_property
    def _read_settings(self) -> PostgresSettings:
        return self.settings.postgres.for_reads()

    @cached_property
    def pg_read_pool(self) -> ConnectionPool:
        """serve's order reads: a pool of its own on ``postgres.read_dsn``; without one, the pool of the DSN."""
        if self.settings.postgres.read_dsn is None:
            return self.pg_pool
        from ordersctl.adapters import postgres as pg_adapter

        return pg_adapter.make_pool(self._read_settings, name="ordersctl-read")

    def pg_read_connection(self, timeout: float | None = None) -> AbstractContextManager[psycopg.Connection[Any]]:
        """As ``pg_connection``, from ``pg_read_pool``: for reads that a standby or a read-only role may answer (an
        order, the recent orders, serve's warm-up). Never for a write, readiness or the pipeline's state."""
        from ordersctl.adapters import postgres as pg_adapter

        return pg_adapter.pooled_connection(self.pg_read_pool, self._read_settings, timeout)

    @cached_property
    def store(self) -> OrderStore:
        """The order store's parts, built once: nothing else constructs them."""
        from ordersctl.adapters.order_store import OrderStore
        from ordersctl.adapters.order_store.outbox import Outbox
        from ordersctl.adapters.order_store.reads import OrderReads
        from ordersctl.adapters.order_store.writes import OrderWrites

        reads = OrderReads()
        return OrderStore(writes=OrderWrites(reads), reads=reads, outbox=Outbox())

    @cached_property
    def tracing(self) -> tracing_port.Tracing:
        """``NO_TRACING`` unless ``[otel] enabled`` (then OpenTelemetry's SDK, exporting as the settings say)."""
        pipeline = self.settings.pipeline
        return tracing_port.build(self.settings.otel, burst=pipeline.batch_size * pipeline.batches_in_flight)

    def pg_connect(self, *, autocommit: bool = False) -> psycopg.Connection[tuple[Any, ...]]:
        """A dedicated connection (migrations, long reads); the caller closes it."""
        from ordersctl.adapters import postgres as pg_adapter

        return pg_adapter.connect(self.settings.postgres, autocommit=autocommit)

    @cached_property
    def redis(self) -> redis.Redis:
        if not self.settings.redis.enabled:  # callers check redis.enabled; no client is built without Redis
            raise ConfigError("Redis is off (redis.url is empty)")
        # Imported here: redis-py takes a tenth of a second of CPU to import, and a consume worker never uses it.
        from ordersctl.adapters import redis as redis_adapter

        return redis_adapter.make_client(self.settings.redis)

    @cached_property
    def kafka_admin(self) -> AdminClient:
        return kafka_adapter.make_admin(self.settings.kafka, self.member)

    def producer(self, name: str = "default", **overrides: Any) -> Producer:
        """One producer per purpose (DLQ, events, generator), created once."""
        if name not in self._producers:
            self._producers[name] = kafka_adapter.make_producer(self.settings.kafka, self.member, **overrides)
        return self._producers[name]

    def consumer(self, group_id: str | None = None, **overrides: Any) -> Consumer:
        """A new consumer; closed with the runtime unless the caller closes it first."""
        consumer = kafka_adapter.make_consumer(self.settings.kafka, group_id, self.member, **overrides)
        self._consumers.append(consumer)
        return consumer

    def close(self, timeout: float | None = None) -> bool:
        """Flush producers and close every client that was built.

        With ``timeout``, stop waiting after that many seconds and return False (the closing carries on in a
        daemon thread): librdkafka can block in close after the broker restarted, and a process whose work
        is done must still be able to exit."""
        if timeout is None:
            self._close()
            return True
        return finishes_within(timeout, self._close, "close-clients")

    def _close(self) -> None:
        # After an error that cannot heal (refused credentials) nothing will be delivered: no 10 s wait for it.
        flush_seconds = 0 if kafka_errors.fatal_raised() else 10
        for name, producer in self._producers.items():
            left = producer.flush(flush_seconds)
            if left:
                log.warning("producer closed with undelivered messages", extra={"producer": name, "left": left})
        self._producers.clear()
        for consumer in self._consumers:
            with contextlib.suppress(RuntimeError):  # already closed by its owner
                consumer.close()
        self._consumers.clear()
        closed: list[object] = []
        for attr in ("pg_pool", "pg_read_pool", "redis"):
            client = self.__dict__.pop(attr, None)
            if client is not None and not any(client is other for other in closed):  # the read pool may be pg_pool
                client.close()
                closed.append(client)
        self.__dict__.pop("kafka_admin", None)
        tracing = self.__dict__.pop("tracing", None)
        if tracing is not None:
            tracing.close()  # its last spans out (bounded): a process that stops has made them
