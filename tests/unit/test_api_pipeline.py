"""The pipeline endpoints' shared reads and their HTTP shape, without services."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from ordersctl.adapters.kafka_observer import GroupInfo, GroupMember
from ordersctl.adapters.pipeline_queries import OutboxBacklog, StoredOrdersEstimate
from ordersctl.api.dashboard.reads import SharedReads, public_status
from ordersctl.api.dashboard.schemas import PipelineStatusOut
from ordersctl.observe.services import ServiceCheck
from ordersctl.observe.status import OrdersProgress, PartitionLag, PipelineStatus, Thresholds
from tests.fakes import FakeClock

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_a_result_is_kept_for_the_ttl_then_read_again() -> None:
    clock = FakeClock(100.0)
    shared = SharedReads(ttl=2.0, clock=clock)
    reads: list[int] = []

    def read() -> bytes:
        reads.append(1)
        return str(len(reads)).encode()

    assert shared.get("status", read) == b"1"
    clock.now += 1.9
    assert shared.get("status", read) == b"1"
    assert shared.get("dead-letters", read) == b"2", "each name has its own result"
    clock.now += 0.2
    assert shared.get("status", read) == b"3"


def test_callers_during_a_read_wait_for_it_and_share_its_result() -> None:
    shared = SharedReads(ttl=2.0)
    started, release = threading.Event(), threading.Event()
    reads: list[int] = []
    results: list[bytes] = []

    def slow_read() -> bytes:
        reads.append(1)
        started.set()
        release.wait(10)
        return b"the one read"

    first = threading.Thread(target=lambda: results.append(shared.get("status", slow_read)))
    first.start()
    assert started.wait(10)
    others = [threading.Thread(target=lambda: results.append(shared.get("status", slow_read))) for _ in range(8)]
    for t in others:
        t.start()
    # Whether a caller comes while the read runs (it waits on the lock) or just after (the result is fresh),
    # it gets that read's result and starts none of its own.
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert reads == [1] and results == [b"the one read"] * 9


def _status(redis_up: bool = True) -> PipelineStatus:
    services = (
        ServiceCheck("PostgreSQL", "db.internal:5432/orders", True, 1.5),
        ServiceCheck("Redis", "cache.internal:6379/0", redis_up, 0.2 if redis_up else None,
                     None if redis_up else "ConnectionError: Error 111 connecting to cache.internal:6379"),
        ServiceCheck("Kafka", "kafka.internal:9092", True, 3.0),
    )  # fmt: skip
    group = GroupInfo("ordersctl", "stable", (GroupMember("rdkafka", "/10.0.0.5", (0, 1)),))
    orders = OrdersProgress("orders", group, (PartitionLag(0, 100, 104, 4), PartitionLag(1, None, 7, 7)))
    unread = {"dlq": "KafkaException: broker kafka.internal:9092 said no"}
    return PipelineStatus(NOW, Thresholds(), services, orders, None, OutboxBacklog(2, 1.5), unread,
                          StoredOrdersEstimate(1200, 1234))  # fmt: skip


def test_the_public_status_has_no_address_error_or_member_host() -> None:
    doc = public_status(_status(redis_up=False))
    PipelineStatusOut.model_validate(doc)
    text = str(doc)
    for internal in ("internal", "10.0.0.5", "rdkafka", "ConnectionError", "KafkaException", "5432"):
        assert internal not in text, internal
    assert doc["services"][1] == {"name": "Redis", "up": False, "rtt_ms": None}
    assert doc["problems"] == ["Redis down", "dlq not read"] and doc["unread"] == ["dlq"]
    assert doc["healthy"] is False and doc["dlq"] is None
    assert doc["orders"]["group"] == {"group_id": "ordersctl", "state": "stable", "member_count": 1}
    assert doc["orders"]["total_lag"] == 11 and doc["orders"]["partitions"][1]["committed"] is None
    assert doc["stored_orders"] == {"rows_estimate": 1200, "inserted": 1234}
    assert doc["outbox"] == {"pending": 2, "oldest_age_seconds": 1.5}
