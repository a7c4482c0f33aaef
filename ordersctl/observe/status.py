"""Is the pipeline healthy: the orders group's lag, the DLQ, the outbox and the services, read now.

Every figure comes from its source of truth (the broker's offsets, the DLQ's headers, the outbox table),
never from a worker's counters, which a killed worker takes with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from ordersctl.adapters.citus import stored_orders_on_shards
from ordersctl.adapters.kafka_observer import GroupInfo
from ordersctl.adapters.pipeline_queries import (
    OutboxBacklog,
    StoredOrdersEstimate,
    outbox_backlog,
    stored_orders_estimate,
)
from ordersctl.domain.times import utc_z
from ordersctl.observe.dead_letters import DlqWindow, dlq_window
from ordersctl.observe.nodes_citus import CitusNodes, read_citus_nodes
from ordersctl.observe.nodes_ha import NodeCheck, check_nodes
from ordersctl.observe.services import ServiceCheck, check_services
from ordersctl.observe.sources import Sources, attempt, one_connection
from ordersctl.observe.stall import CommitWatch, StallCheck, check_stall
from ordersctl.observe.thresholds import DEFAULT_MAX_OUTBOX_AGE_SECONDS as DEFAULT_MAX_OUTBOX_AGE_SECONDS
from ordersctl.observe.thresholds import Thresholds as Thresholds

EXIT_HEALTHY = 0
# A service is down, a section could not be read, the outbox is behind, or the pipeline has stopped while orders
# wait: lag with no member in the group, or lag whose committed offsets have not moved for --stall-seconds.
EXIT_UNHEALTHY = 1
EXIT_LAGGING = 4  # the orders group is further behind than --max-lag (only when nothing is unhealthy)
# Redis is down: serve answers from memory and PostgreSQL, the pipeline does not need it (only when nothing is
# unhealthy or lagging). Redis turned off (redis.url empty) is no problem at all.
EXIT_DEGRADED = 6
CACHE = "Redis"


@dataclass(frozen=True)
class PartitionLag:
    """One partition of the orders topic: the group's committed offset, the end offset, what is left."""

    partition: int
    committed: int | None  # None: the group never committed on this partition
    end: int
    lag: int

    def as_json(self) -> dict[str, Any]:
        return {"partition": self.partition, "committed": self.committed, "end": self.end, "lag": self.lag}


@dataclass(frozen=True)
class OrdersProgress:
    """The orders topic as the consumer group has got through it."""

    topic: str
    group: GroupInfo
    partitions: tuple[PartitionLag, ...]

    @property
    def total_lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    def as_json(self) -> dict[str, Any]:
        return {"topic": self.topic, "group": self.group.as_json(), "total_lag": self.total_lag,
                "partitions": [p.as_json() for p in self.partitions]}  # fmt: skip


def partition_lag(partition: int, committed: int | None, low: int, high: int) -> PartitionLag:
    # Without a commit, or behind the log's start (retention deleted it), the group starts at the log's start
    # (auto.offset.reset=earliest): everything still held is left to read.
    position = low if committed is None else max(committed, low)
    return PartitionLag(partition, committed, high, max(0, high - position))


def orders_progress(src: Sources) -> OrdersProgress:
    k = src.settings.kafka
    parts = src.kafka.partitions(k.orders_topic)
    marks = src.kafka.watermarks(k.orders_topic, parts)
    committed = src.kafka.committed(k.group_id, k.orders_topic, parts)
    group = src.kafka.group(k.group_id, k.orders_topic)
    lags = tuple(partition_lag(p, committed.get(p), *marks[p]) for p in parts)
    return OrdersProgress(k.orders_topic, group, lags)


@dataclass(frozen=True)
class PipelineStatus:
    """Everything ``status`` shows; a section that could not be read is None and named in ``unread``."""

    checked_at: datetime
    thresholds: Thresholds
    services: tuple[ServiceCheck, ...]
    orders: OrdersProgress | None
    dlq: DlqWindow | None
    outbox: OutboxBacklog | None
    unread: dict[str, str] = field(default_factory=dict)
    stored: StoredOrdersEstimate | None = None  # PostgreSQL's statistics of the orders table
    stall: StallCheck | None = None  # the pipeline rules: lag with nobody consuming, or not moving
    nodes: tuple[NodeCheck, ...] = ()  # the PostgreSQL nodes of a multi-host DSN (nodes_ha.py)
    citus: CitusNodes | None = None  # the Citus cluster's nodes (None on plain PostgreSQL)

    def outbox_behind(self) -> bool:
        age = self.outbox.oldest_age_seconds if self.outbox else None
        return age is not None and age > self.thresholds.max_outbox_age_seconds

    def lagging(self) -> bool:
        limit = self.thresholds.max_lag
        return limit is not None and self.orders is not None and self.orders.total_lag > limit

    def problems(self, details: bool = True) -> list[str]:
        """Why the status is not healthy, one line each (empty when it is). Without ``details``, no address or
        client error: for answers to people who may not see the infrastructure (the HTTP API)."""
        return self._unreachable(details) + self._pipeline_problems()

    def _unreachable(self, details: bool) -> list[str]:
        """The services down and the sections not read, with their addresses and errors when ``details``."""
        down = [s for s in self.services if not s.up and not s.disabled]
        if not details:
            return [f"{s.name} down" for s in down] + [f"{section} not read" for section in self.unread]
        found = [f"{s.name} down at {s.address}: {s.error}" for s in down]
        return found + [f"{section} not read: {why}" for section, why in self.unread.items()]

    def _pipeline_problems(self) -> list[str]:
        """The Citus nodes, the outbox's age, a stalled pipeline and the lag against its thresholds."""
        found = self.citus.problems() if self.citus is not None else []
        if self.outbox_behind() and self.outbox is not None:
            found.append(f"outbox: oldest pending event is {self.outbox.oldest_age_seconds:.0f} s old"
                         f" (more than {self.thresholds.max_outbox_age_seconds:.0f} s)")  # fmt: skip
        if self.stall is not None and self.orders is not None:
            found += self.stall.problems(self.orders)
        if self.lagging() and self.orders is not None:
            found.append(f"lag {self.orders.total_lag} is above --max-lag {self.thresholds.max_lag}")
        return found

    def cache_down(self) -> bool:
        """Redis is on but does not answer: serving is degraded, the pipeline is not."""
        return any(s.name == CACHE and not s.up and not s.disabled for s in self.services)

    def exit_code(self) -> int:
        """0 healthy; 1 unhealthy (beats 4: a lag figure means little while something is down); 4 lagging;
        6 degraded, Redis down (beaten by 1 and 4)."""
        if self.unread or self.outbox_behind() or not all(s.up for s in self.services if s.name != CACHE):
            return EXIT_UNHEALTHY
        if self.stall is not None and self.stall.unhealthy:
            return EXIT_UNHEALTHY
        if self.citus is not None and self.citus.problems():
            return EXIT_UNHEALTHY
        if self.lagging():
            return EXIT_LAGGING
        return EXIT_DEGRADED if self.cache_down() else EXIT_HEALTHY

    def as_json(self) -> dict[str, Any]:
        outbox = None
        if self.outbox is not None:
            outbox = {"pending": self.outbox.pending, "oldest_age_seconds": self.outbox.oldest_age_seconds}
        return {
            "checked_at": utc_z(self.checked_at, "milliseconds"),
            "exit_code": self.exit_code(),
            "healthy": self.exit_code() == EXIT_HEALTHY,
            "problems": self.problems(),
            "services": [s.as_json() for s in self.services],
            "orders": self.orders.as_json() if self.orders else None,
            "dlq": self.dlq.as_json() if self.dlq else None,
            "outbox": outbox,
            "stored_orders": stored_json(self.stored),
            "stall": self.stall.as_json() if self.stall else None,
            "postgres_nodes": [n.as_json() for n in self.nodes],
            **({"citus_nodes": self.citus.as_json()} if self.citus else {}),
            "unread": dict(self.unread),
            "thresholds": {
                "max_lag": self.thresholds.max_lag,
                "max_outbox_age_seconds": self.thresholds.max_outbox_age_seconds,
                "stall_seconds": self.thresholds.stall_seconds,
            },
        }


def stored_json(stored: StoredOrdersEstimate | None) -> dict[str, int] | None:
    return None if stored is None else {"rows_estimate": stored.rows, "inserted": stored.inserted}


def read_status(
    src: Sources,
    since: datetime,
    thresholds: Thresholds,
    watch: CommitWatch | None = None,
    note: Callable[[str], None] = lambda _: None,
) -> PipelineStatus:
    """Check the services, then read what each one that answers holds; a service down skips its sections.
    With ``thresholds.stall_seconds``, lagging partitions' committed offsets are watched (``watch``: what earlier
    reads saw) until they move or that long has passed; ``note`` says so when it waits."""
    with one_connection(src.connect) as connect:
        return _read_status(replace(src, connect=connect), since, thresholds, watch, note)


def _read_status(
    src: Sources, since: datetime, thresholds: Thresholds, watch: CommitWatch | None, note: Callable[[str], None]
) -> PipelineStatus:
    checked_at = datetime.now(UTC)
    services = check_services(src)
    up = {s.name: s.up for s in services}
    unread: dict[str, str] = {}
    orders = dlq = outbox = stored = citus = None
    stall: StallCheck | None = None
    if up["Kafka"]:

        def progress_and_stall() -> tuple[OrdersProgress, StallCheck]:
            first = orders_progress(src)
            return check_stall(first, lambda: orders_progress(src), thresholds.stall_seconds,
                               watch or CommitWatch(), note=note)  # fmt: skip

        judged = attempt("orders", unread, progress_and_stall)
        if judged is not None:
            orders, stall = judged
        dlq = attempt("dlq", unread, lambda: dlq_window(src.dlq_reader(src.settings.kafka.dlq_topic), since))
    else:
        unread["orders"] = unread["dlq"] = "Kafka down"
    if up["PostgreSQL"]:

        def backlog() -> OutboxBacklog:
            with src.connect() as conn:
                return outbox_backlog(conn)

        citus = attempt("citus", unread, lambda: read_citus_nodes(src))

        def estimate() -> StoredOrdersEstimate:
            with src.connect() as conn:
                return stored_orders_on_shards(conn) if citus else stored_orders_estimate(conn)

        outbox = attempt("outbox", unread, backlog)
        stored = attempt("stored", unread, estimate)
    else:
        unread["outbox"] = unread["stored"] = "PostgreSQL down"
    nodes = check_nodes(src.settings.postgres)
    return PipelineStatus(
        checked_at, thresholds, tuple(services), orders, dlq, outbox, unread, stored, stall, nodes, citus
    )
