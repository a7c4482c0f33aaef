"""What status and trace read from, passed in: the CLI builds it from its Runtime, the API from its own."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar
from urllib.parse import urlsplit

import psycopg
import redis
from confluent_kafka import KafkaException

from ordersctl.adapters.kafka_observer import KafkaView
from ordersctl.adapters.postgres_errors import address
from ordersctl.config import Settings
from ordersctl.dlq.reader import DlqReader
from ordersctl.errors import OrdersError, ServiceUnavailable
from ordersctl.observe.kafka_view import kafka_view

if TYPE_CHECKING:
    from ordersctl.runtime import Runtime

T = TypeVar("T")
Connect = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]

# What a dependency that is down or refuses raises; anything else is a bug and is not caught.
# (OrdersError covers ServiceUnavailable, TransientError and a missing topic; psycopg.Error the pool's timeout;
# OSError the timeout of an admin request's future, TimeoutError.)
OFF = "off"  # the address of a service that is turned off (Redis with redis.url empty)
DEPENDENCY_ERRORS = (KafkaException, OrdersError, psycopg.Error, redis.RedisError, OSError)


class RedisReads(Protocol):
    """The part of ``redis.Redis`` status and trace use."""

    def ping(self, **kwargs: Any) -> object: ...

    def exists(self, *names: str) -> object: ...

    def ttl(self, name: str) -> object: ...


@dataclass(frozen=True)
class Sources:
    """Settings (names and addresses) and the clients status and trace read through."""

    settings: Settings
    kafka: KafkaView
    connect: Connect
    redis: RedisReads | None  # None: Redis is off (redis.url empty)

    @classmethod
    def from_runtime(cls, rt: Runtime, timeout: float = 5.0, kafka: KafkaView | None = None) -> Sources:
        """Clients of ``rt`` (Kafka's: ``kafka`` when the caller built them already, observe/kafka_view.py);
        PostgreSQL through a dedicated connection per use, which fails at once when the server refuses (a pool
        would wait out its timeout)."""

        def connect() -> AbstractContextManager[psycopg.Connection[Any]]:
            return contextlib.closing(rt.pg_connect(autocommit=True))

        redis = rt.redis if rt.settings.redis.enabled else None
        return cls(rt.settings, kafka or kafka_view(rt, timeout), connect, redis)

    def dlq_reader(self, topic: str) -> DlqReader:
        """The DLQ through the observer's consumer (assign only, never a member of any group)."""
        return DlqReader(self.kafka.consumer, topic, timeout=self.kafka.timeout * 2)

    def addresses(self) -> dict[str, str]:
        """Where each service is, without user or password."""
        url = urlsplit(self.settings.redis.url)
        redis_at = url.path if url.scheme == "unix" else f"{url.hostname or ''}:{url.port or 6379}{url.path or ''}"
        if not self.settings.redis.enabled:
            redis_at = OFF
        return {
            "PostgreSQL": address(self.settings.postgres.dsn),
            "Redis": redis_at,
            "Kafka": self.settings.kafka.bootstrap_servers,
        }


@contextlib.contextmanager
def one_connection(connect: Connect) -> Iterator[Connect]:
    """A ``connect`` that opens one connection on first use and hands the same one out again, closed at the end:
    the sections of one status read share it rather than each paying for a connection. A use that raises closes
    it, so the next use starts afresh on a new one (as a connection of its own would)."""
    held: list[psycopg.Connection[Any]] = []

    with contextlib.ExitStack() as stack:

        @contextlib.contextmanager
        def shared() -> Iterator[psycopg.Connection[Any]]:
            if not held:
                held.append(stack.enter_context(connect()))
            try:
                yield held[0]
            except BaseException:
                held.pop().close()
                raise

        yield shared


def short_error(exc: BaseException) -> str:
    """One line naming the failure, for people and JSON (addresses in it carry no password)."""
    if isinstance(exc, ServiceUnavailable):
        return exc.reason or str(exc)  # the service and its address are shown beside it already
    if isinstance(exc, KafkaException) and exc.args and hasattr(exc.args[0], "str"):
        text = str(exc.args[0].str())
    else:
        lines = str(exc).strip().splitlines()
        text = lines[0] if lines else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def attempt(section: str, unread: dict[str, str], read: Callable[[], T]) -> T | None:
    """``read()``, or None with the reason noted under ``section`` when a dependency fails it."""
    try:
        return read()
    except DEPENDENCY_ERRORS as exc:
        # Our own errors already say what failed in words; a client's error is named by its class.
        unread[section] = str(exc) if isinstance(exc, OrdersError) else short_error(exc)
        return None
