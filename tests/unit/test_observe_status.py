"""Status verdicts and exit codes from plain data: no service is needed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rich.console import Console

from ordersctl.adapters.kafka_observer import GroupInfo, GroupMember
from ordersctl.adapters.pipeline_queries import OutboxBacklog, StoredOrdersEstimate
from ordersctl.cli.observe_views import status_view
from ordersctl.observe.dead_letters import DlqWindow
from ordersctl.observe.services import ServiceCheck
from ordersctl.observe.status import OrdersProgress, PipelineStatus, Thresholds, partition_lag

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
UP = (ServiceCheck("PostgreSQL", "pg:5432/orders", True, 0.4), ServiceCheck("Redis", "r:6379/0", True, 0.1),
      ServiceCheck("Kafka", "k:9092", True, 1.2))  # fmt: skip


def _status(
    lag: int = 0,
    thresholds: Thresholds | None = None,
    services: tuple[ServiceCheck, ...] = UP,
    outbox_age: float | None = None,
    unread: dict[str, str] | None = None,
) -> PipelineStatus:
    group = GroupInfo("ordersctl", "stable", (GroupMember("rdkafka", "/10.0.0.5", (0, 1)),))
    orders = OrdersProgress("orders", group, (partition_lag(0, 100, 0, 100 + lag), partition_lag(1, 50, 0, 50)))
    dlq = DlqWindow("orders.dlq", NOW, 7, {"conflict": 2, "schema_violation": 1})
    outbox = OutboxBacklog(3 if outbox_age is not None else 0, outbox_age)
    return PipelineStatus(NOW, thresholds or Thresholds(), services, orders, dlq, outbox, unread or {})


def test_partition_lag_counts_from_the_commit_or_from_the_log_start() -> None:
    assert partition_lag(0, 90, 0, 100).lag == 10
    assert partition_lag(0, None, 20, 100).lag == 80, "never committed: the group starts at the log's start"
    assert partition_lag(0, 5, 20, 100).lag == 80, "committed before retention deleted it: same"
    assert partition_lag(0, 100, 0, 100).lag == 0


def test_idle_and_healthy_is_0() -> None:
    status = _status(thresholds=Thresholds(max_lag=0))
    assert status.exit_code() == 0 and status.problems() == []
    assert status.as_json()["healthy"] is True


def test_lag_is_judged_only_against_max_lag() -> None:
    assert _status(lag=25).exit_code() == 0
    assert _status(lag=25, thresholds=Thresholds(max_lag=25)).exit_code() == 0
    lagging = _status(lag=26, thresholds=Thresholds(max_lag=25))
    assert lagging.exit_code() == 4
    assert lagging.problems() == ["lag 26 is above --max-lag 25"]


def test_a_service_down_is_1_and_beats_lag() -> None:
    down = (UP[0], UP[1], ServiceCheck("Kafka", "k:9092", False, None, "KafkaException: timed out"))
    status = _status(lag=1000, thresholds=Thresholds(max_lag=1), services=down)
    assert status.exit_code() == 1
    assert status.problems()[0] == "Kafka down at k:9092: KafkaException: timed out"


REDIS_DOWN = ServiceCheck("Redis", "r:6379/0", False, None, "ConnectionError: refused")


def test_redis_down_is_degraded_6_not_a_broken_pipeline() -> None:
    status = _status(services=(UP[0], REDIS_DOWN, UP[2]))
    assert status.exit_code() == 6
    assert status.problems() == ["Redis down at r:6379/0: ConnectionError: refused"]
    assert status.as_json()["healthy"] is False
    console = Console(width=200, record=True)
    console.print(status_view(status))
    assert "status: degraded (exit 6)" in console.export_text()


def test_redis_down_is_beaten_by_lag_and_by_another_service_down() -> None:
    assert _status(lag=9, thresholds=Thresholds(max_lag=1), services=(UP[0], REDIS_DOWN, UP[2])).exit_code() == 4
    pg_down = ServiceCheck("PostgreSQL", "pg:5432/orders", False, None, "refused")
    assert _status(services=(pg_down, REDIS_DOWN, UP[2])).exit_code() == 1


def test_redis_turned_off_is_healthy() -> None:
    off = ServiceCheck("Redis", "off", False, error="off (redis.url is empty)", disabled=True)
    status = _status(services=(UP[0], off, UP[2]))
    assert status.exit_code() == 0 and status.problems() == []
    assert status.as_json()["services"][1]["disabled"] is True
    console = Console(width=200, record=True)
    console.print(status_view(status))
    assert "status: healthy (exit 0)" in console.export_text()


def test_an_old_outbox_event_is_1() -> None:
    assert _status(outbox_age=299.0).exit_code() == 0
    old = _status(outbox_age=301.0)
    assert old.exit_code() == 1
    assert "oldest pending event is 301 s old" in old.problems()[0]
    assert _status(outbox_age=301.0, thresholds=Thresholds(max_outbox_age_seconds=600)).exit_code() == 0


def test_a_section_that_could_not_be_read_is_1() -> None:
    status = _status(unread={"dlq": "topic orders.dlq does not exist"})
    assert status.exit_code() == 1
    assert status.problems() == ["dlq not read: topic orders.dlq does not exist"]


def test_json_carries_every_section() -> None:
    doc = _status(lag=4, outbox_age=12.5).as_json()
    assert doc["checked_at"] == "2026-03-01T12:00:00.000Z"
    assert doc["orders"]["total_lag"] == 4
    assert doc["orders"]["partitions"][0] == {"partition": 0, "committed": 100, "end": 104, "lag": 4}
    member = {"client_id": "rdkafka", "host": "/10.0.0.5", "partitions": [0, 1]}
    assert doc["orders"]["group"] == {"group_id": "ordersctl", "state": "stable", "members": [member]}
    assert doc["dlq"] == {"topic": "orders.dlq", "since": "2026-03-01T12:00:00.000Z", "retained": 7, "in_window": 3,
                          "by_reason": {"conflict": 2, "schema_violation": 1}}  # fmt: skip
    assert doc["outbox"] == {"pending": 3, "oldest_age_seconds": 12.5}
    assert [s["name"] for s in doc["services"]] == ["PostgreSQL", "Redis", "Kafka"]


@pytest.mark.parametrize("unread", [{}, {"orders": "Kafka down", "dlq": "Kafka down", "outbox": "PostgreSQL down"}])
def test_the_table_renders_with_and_without_sections(unread: dict[str, str]) -> None:
    status = _status(lag=3, unread=unread)
    if unread:
        status = PipelineStatus(NOW, Thresholds(), UP, None, None, None, unread)
    console = Console(record=True, width=200)
    console.print(status_view(status))
    text = console.export_text()
    assert "PostgreSQL" in text and "Kafka" in text
    assert ("not healthy (exit 1)" in text) == bool(unread)
    if not unread:
        assert "conflict" in text and "rdkafka" in text and "outbox: 0 pending" in text


def test_the_orders_tables_statistics_are_shown_as_an_estimate() -> None:
    status = _status()
    assert status.as_json()["stored_orders"] is None
    status = PipelineStatus(NOW, Thresholds(), UP, None, None, None, {}, StoredOrdersEstimate(1200, 1234))
    assert status.as_json()["stored_orders"] == {"rows_estimate": 1200, "inserted": 1234}
    console = Console(record=True, width=200)
    console.print(status_view(status))
    assert "orders table: about 1200 rows, 1234 written (PostgreSQL statistics" in console.export_text()
