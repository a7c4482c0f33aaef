"""What the pipeline page reads: ``ordersctl status`` and the latest dead letters, from the observe package,
shared by the requests of a moment and shaped for HTTP.

Shared: every open page asks every few seconds, and each status read asks Kafka for metadata, watermarks,
the group's offsets and the DLQ. A result is kept for ``CACHE_SECONDS``, and requests that arrive while it is
being read wait for that read instead of starting their own.

Shaped for HTTP: the services' addresses, the clients' error messages and the group members' hosts stay out
of the body (they describe the infrastructure); the details go to the log, at most once per
``LOG_EVERY_SECONDS``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ordersctl.domain.times import utc_z
from ordersctl.logs import RateLimit
from ordersctl.masking import mask_text
from ordersctl.observe.dead_letters import latest_dead_letters
from ordersctl.observe.sources import Sources, attempt
from ordersctl.observe.status import EXIT_HEALTHY, PipelineStatus, Thresholds, read_status

if TYPE_CHECKING:
    from ordersctl.runtime import Runtime

log = logging.getLogger(__name__)
CACHE_SECONDS = 2.0
# A broker that does not answer holds a page's request this long (scans twice as long); the CLI waits 5 s.
KAFKA_TIMEOUT_SECONDS = 3.0
DLQ_WINDOW = timedelta(hours=1)  # as `ordersctl status` by default
LATEST_DEAD_LETTERS = 20
LOG_EVERY_SECONDS = 30.0


class SharedReads:
    """Results kept for ``ttl`` seconds after their read ended, read by one caller at a time.

    One lock does two jobs: callers that come while a read runs wait for it and take its result (one read
    however many pages are open), and the observe sources behind every read (a ``KafkaView``, which is not
    thread-safe) have one user at a time."""

    def __init__(self, ttl: float = CACHE_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._kept: dict[str, tuple[float, bytes]] = {}

    def get(self, name: str, read: Callable[[], bytes]) -> bytes:
        with self._lock:
            kept = self._kept.get(name)
            if kept is not None and self._clock() - kept[0] < self._ttl:
                return kept[1]
            value = read()
            # Stamped when the read ended: a read that waited out a timeout is not stale at once, so an
            # outage does not turn into back-to-back reads.
            self._kept[name] = (self._clock(), value)
            return value


def public_status(status: PipelineStatus) -> dict[str, Any]:
    """``status.as_json()`` without addresses, client errors or member hosts; unread sections by name only."""
    full = status.as_json()
    orders = full["orders"]
    if orders is not None and status.orders is not None:
        group = status.orders.group
        orders["group"] = {"group_id": group.group_id, "state": group.state, "member_count": len(group.members)}
    return {
        "checked_at": full["checked_at"],
        "healthy": status.exit_code() == EXIT_HEALTHY,
        "problems": status.problems(details=False),
        "services": [{"name": s.name, "up": s.up, "rtt_ms": s.rtt_ms} for s in status.services],
        "orders": orders,
        "dlq": full["dlq"],
        "outbox": full["outbox"],
        "stored_orders": full["stored_orders"],
        "unread": sorted(status.unread),
    }


def _body(doc: dict[str, Any]) -> bytes:
    return mask_text(json.dumps(doc, separators=(",", ":"))).encode()


class PipelineReads:
    """The two reads behind ``/pipeline/status`` and ``/pipeline/dead-letters``, as JSON bodies.

    ``sources`` is called once, on the first read: the Kafka clients are built in the process that serves
    (after ``serve --processes`` forked), never when the app is created."""

    def __init__(self, sources: Callable[[], Sources], shared: SharedReads | None = None) -> None:
        self._make_sources = sources
        self._sources: Sources | None = None
        self._shared = shared or SharedReads()
        self._log_limit = RateLimit(LOG_EVERY_SECONDS)

    @classmethod
    def of(cls, runtime: Runtime) -> PipelineReads:
        return cls(lambda: Sources.from_runtime(runtime, KAFKA_TIMEOUT_SECONDS))

    def status(self) -> bytes:
        return self._shared.get("status", self._read_status)

    def dead_letters(self) -> bytes:
        return self._shared.get("dead-letters", self._read_dead_letters)

    def _src(self) -> Sources:
        # Only ever called inside a shared read, so under its lock: built once.
        if self._sources is None:
            self._sources = self._make_sources()
        return self._sources

    def _read_status(self) -> bytes:
        status = read_status(self._src(), datetime.now(UTC) - DLQ_WINDOW, Thresholds())
        self._log("status", status.problems())
        return _body(public_status(status))

    def _read_dead_letters(self) -> bytes:
        src = self._src()
        topic = src.settings.kafka.dlq_topic
        checked_at = datetime.now(UTC)
        unread: dict[str, str] = {}
        # One quick question first, as trace does: with Kafka down the read would wait out a longer timeout.
        attempt("kafka", unread, lambda: src.kafka.ping(topic))
        items = None
        if not unread:
            reader = src.dlq_reader(topic)
            found = attempt("dlq", unread, lambda: latest_dead_letters(reader, LATEST_DEAD_LETTERS))
            items = None if found is None else [d.as_json() for d in found]
        self._log("dead letters", [f"{section} not read: {why}" for section, why in unread.items()])
        return _body({
            "checked_at": utc_z(checked_at, "milliseconds"),
            "topic": topic,
            "kafka": "down" if "kafka" in unread else "up",
            "items": items,
            "unread": sorted(unread),
        })  # fmt: skip

    def _log(self, what: str, problems: list[str]) -> None:
        if not problems:
            return
        suppressed = self._log_limit.allow(what)
        if suppressed is not None:
            log.warning("pipeline %s: %s", what, "; ".join(problems), extra={"suppressed": suppressed})
