"""One exception hierarchy for ordersctl.

The pipeline decides what to do with a failure from its class alone:
``TransientError`` is retried with backoff, ``PoisonError`` sends the message to the dead-letter topic,
``FatalError`` cannot heal and stops the whole process (``consume``: every worker) with one line and a non-zero
exit, anything else is a bug and crashes the worker (the supervisor restarts it, offsets are not committed).
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass


class OrdersError(Exception):
    """Base of every error ordersctl raises on purpose."""


class ConfigError(OrdersError):
    """The settings are invalid or a config file cannot be read."""


class TransientError(OrdersError):
    """A dependency is briefly unavailable; the same work will succeed later."""


class ServiceUnavailable(TransientError):
    """A service (PostgreSQL, Redis, Kafka) cannot be reached at its address."""

    def __init__(self, service: str, address: str, reason: str = "") -> None:
        self.service = service
        self.address = address
        self.reason = reason
        detail = f" ({reason})" if reason else ""
        super().__init__(f"{service} unreachable at {address}{detail}")


class ClientFailed(OrdersError):
    """A Kafka client hit a fatal error (e.g. an idempotent producer can no longer keep its guarantees) and
    cannot be used again. Not transient, since retrying with the same client would fail forever: the worker
    process exits uncommitted and the supervisor starts it again with new clients."""


class FatalError(OrdersError):
    """A failure that retrying cannot heal: the same credentials, topic or query fail the same way every time.
    Never retried and never dead-lettered: the process stops (``consume``: every worker, no restart) and exits
    non-zero with one line naming the service and the cause."""

    def __init__(self, service: str, cause: str) -> None:
        self.service = service
        self.cause = cause
        super().__init__(f"{service}: {cause}")


class AccessDenied(FatalError):
    """Authentication or authorization refused: a wrong password or user, an untrusted or expired certificate, a
    host name mismatch, a missing ACL or privilege, a security protocol the listener does not speak."""


class UnknownTopic(FatalError):
    """A topic to consume does not exist (consumers never create topics: ``ordersctl topics create``)."""


class QueryRefused(FatalError):
    """PostgreSQL refused a statement as unsupported or invalid (SQLSTATE classes 0A and 42, say a table missing
    or renamed): the code and the schema disagree, the same statement fails every time."""


class CrashLoop(OrdersError):
    """A child process died again and again within the crash-loop window: its supervisor gives up."""


FATAL_ERRORS: dict[str, type[FatalError]] = {
    cls.__name__: cls for cls in (FatalError, AccessDenied, UnknownTopic, QueryRefused)
}
"""By name, to rebuild one that crossed a process boundary (a worker reports it to its supervisor)."""


class MigrationError(OrdersError):
    """A migration file is missing, changed after it was applied, or failed."""


class TopicError(OrdersError):
    """A Kafka topic could not be created or has the wrong shape."""


@dataclass(frozen=True)
class FieldError:
    """One precise, machine-readable reason an order is invalid; never carries the value itself."""

    path: str
    rule: str
    value_type: str
    message: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "rule": self.rule, "value_type": self.value_type, "message": self.message}


class PoisonError(OrdersError):
    """A message that will never be stored as it is; it belongs in the dead-letter topic.

    ``reason`` is a stable code (see ``ordersctl.domain.reasons``); ``errors`` the field errors when known.
    """

    reason = "poison"

    def __init__(self, message: str, errors: tuple[FieldError, ...] = ()) -> None:
        super().__init__(message)
        self.errors = errors


class DecodeError(PoisonError):
    """The message bytes are empty or not UTF-8."""

    reason = "decode_error"


class InvalidJson(PoisonError):
    """The message is not a JSON document."""

    reason = "invalid_json"


class SchemaViolation(PoisonError):
    """A field is missing, has the wrong type, or breaks a format rule."""

    reason = "schema_violation"


class RuleViolation(PoisonError):
    """The order breaks a business rule (totals, sale, ...)."""

    reason = "rule_violation"


class TooManyItems(RuleViolation):
    """The order has more items than the configured maximum."""

    reason = "too_many_items"


class OrderConflict(PoisonError):
    """An order with this order_uid is stored already with different content."""

    reason = "conflict"


class DataRejected(PoisonError):
    """PostgreSQL rejected a value as data (SQLSTATE class 22 or 23)."""

    reason = "db_rejected"


POISON_REASONS: tuple[str, ...] = tuple(
    cls.reason
    for cls in (
        DecodeError,
        InvalidJson,
        SchemaViolation,
        RuleViolation,
        TooManyItems,
        OrderConflict,
        DataRejected,
    )
)


def release_frames(exc: BaseException) -> None:
    """Let go of what the frames of ``exc``'s tracebacks hold (its context's and cause's too).

    confluent-kafka keeps a reference to an exception raised in a client's callback (2.16.1 on Python < 3.12:
    ``CallState_restore_exception`` re-raises it with ``PyErr_SetObject``, which does not take over the reference
    ``PyErr_Fetch`` gave): the exception outlives the process's work, and with it every frame it passed through
    and their locals, a librdkafka client among them. A client still alive when the interpreter exits has its
    threads running while the process tears down (OpenSSL's clean-up among it): a segfault at exit, now and then,
    after the command's one line (``topics list`` refused a client certificate, exit -11 once in CI)."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        current.__traceback__ = None
        pending += [current.__context__, current.__cause__]
