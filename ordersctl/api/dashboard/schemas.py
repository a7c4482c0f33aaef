"""Response models of ``/pipeline/status`` and ``/pipeline/dead-letters``, for the OpenAPI document.

The bodies are built by ``pipeline_reads`` from the observe package's ``as_json()``; these models only
describe them (a test checks a real body against them, and schemathesis checks every response)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ordersctl.api.dashboard.reads import LATEST_DEAD_LETTERS


class ServiceOut(BaseModel):
    """One service the pipeline depends on, reachable or not; the round trip of one request when it is."""

    name: Literal["PostgreSQL", "Redis", "Kafka"]
    up: bool
    rtt_ms: float | None


class PartitionLagOut(BaseModel):
    """One partition of the orders topic (committed is null while the group never committed on it)."""

    partition: int
    committed: int | None
    end: int
    lag: int


class GroupOut(BaseModel):
    """The consumer group of the ingest workers."""

    group_id: str
    state: str
    member_count: int


class OrdersProgressOut(BaseModel):
    """How far the consumer group got through the orders topic."""

    topic: str
    group: GroupOut
    total_lag: int
    partitions: list[PartitionLagOut]


class DlqWindowOut(BaseModel):
    """Dead letters the topic holds (retained), and those that failed in the last hour, by reason."""

    topic: str
    since: str
    retained: int
    in_window: int
    by_reason: dict[str, int]


class OutboxOut(BaseModel):
    """The outbox: "order saved" events not yet confirmed by Kafka."""

    pending: int
    oldest_age_seconds: float | None


class StoredOrdersOut(BaseModel):
    """PostgreSQL's statistics of the orders table (estimates): rows held, and rows written since the
    statistics were last reset; the rise of `inserted` over time is the store rate."""

    rows_estimate: int
    inserted: int


class PipelineStatusOut(BaseModel):
    """What `ordersctl status --json` says, without addresses or client errors; a section that could not be
    read is null and named in `unread`, a service that is down has `up: false`."""

    checked_at: str
    healthy: bool
    problems: list[str]
    services: list[ServiceOut]
    orders: OrdersProgressOut | None
    dlq: DlqWindowOut | None
    outbox: OutboxOut | None
    stored_orders: StoredOrdersOut | None
    unread: list[str]


class DeadLetterOut(BaseModel):
    """One dead letter without its payload."""

    partition: int
    offset: int
    reason: str
    failed_at: str | None
    order_uid: str | None
    replay_count: int
    unreadable: list[str] = Field(description="Fields that could not be read from the record (e.g. order_uid).")


class DeadLettersOut(BaseModel):
    """The most recent dead letters, newest first (null when the DLQ could not be read)."""

    checked_at: str
    topic: str
    kafka: Literal["up", "down"]
    items: list[DeadLetterOut] | None = Field(max_length=LATEST_DEAD_LETTERS)
    unread: list[str]
