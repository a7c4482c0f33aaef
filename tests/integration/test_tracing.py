"""Tracing against the real stack: a traceparent on an orders message continues into a worker's spans (the SDK's
in-memory exporter), and the order's event carries the order span's traceparent on to the events topic through
the outbox. Tracing off: no event carries one."""

from __future__ import annotations

import threading

import pytest
from confluent_kafka import Message, Producer
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ordersctl.adapters.otel import OtelTracing
from ordersctl.config import Settings
from ordersctl.domain.generator import OrderGenerator
from ordersctl.pipeline.options import WorkerOptions
from ordersctl.pipeline.wiring import build_worker
from ordersctl.runtime import Runtime
from ordersctl.settings_otel import OtelSettings
from tests.helpers import create_topics, headers, read_topic
from tests.unit.test_tracing import attrs

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"


def send_orders(settings: Settings, count: int) -> list[str]:
    """``count`` orders; the first carries a traceparent header, as an instrumented producer sends it."""
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
    uids = []
    for i, msg in enumerate(OrderGenerator(seed=7).messages(count)):
        traced: list[tuple[str, str | bytes | None]] | None = None
        if i == 0:
            traced = [("traceparent", f"00-{TRACE_ID}-{PARENT_ID}-01")]
        producer.produce(settings.kafka.orders_topic, msg.value, msg.key, headers=traced)
        uids.append(msg.key.decode())
    assert producer.flush(30) == 0
    return uids


def key(msg: Message) -> str:
    return (msg.key() or b"").decode()


def _consume(settings: Settings, tracing: OtelTracing | None) -> None:
    """One worker in this process, until the topic is drained and its events are out."""
    runtime = Runtime(settings)
    if tracing is not None:
        runtime.tracing = tracing
    try:
        build_worker(runtime, WorkerOptions(batch_size=50, stop_when_idle=2.0), threading.Event()).run()
    finally:
        runtime.close()


def test_a_traceparent_goes_from_the_orders_message_through_the_outbox_to_the_event(settings: Settings) -> None:
    create_topics(settings, partitions=1, dlq=True)
    uids = send_orders(settings, 5)
    exporter = InMemorySpanExporter()
    _consume(settings, OtelTracing.from_settings(OtelSettings(enabled=True), SimpleSpanProcessor(exporter)))

    spans = exporter.get_finished_spans()
    order_spans = {attrs(span)["ordersctl.order_uid"]: span for span in spans if span.name == "consume.order"}
    assert set(order_spans) == set(uids)
    first = order_spans[uids[0]]
    assert first.parent is not None and f"{first.parent.span_id:016x}" == PARENT_ID
    assert f"{first.context.trace_id:032x}" == TRACE_ID
    assert all(attrs(span)["ordersctl.outcome"] == "stored" for span in order_spans.values())
    assert [span.name for span in spans].count("consume.store") >= 1

    events = {key(msg): headers(msg) for msg in read_topic(settings, settings.kafka.events_topic, expect=5)}
    assert set(events) == set(uids)
    for uid, span in order_spans.items():  # each event continues its order's span: the producer's trace for one
        c = span.context
        assert events[uid]["traceparent"] == f"00-{c.trace_id:032x}-{c.span_id:016x}-{int(c.trace_flags):02x}"


def test_with_tracing_off_no_event_carries_a_traceparent(settings: Settings) -> None:
    create_topics(settings, partitions=1, dlq=True)
    uids = send_orders(settings, 3)
    _consume(settings, None)
    events = read_topic(settings, settings.kafka.events_topic, expect=3)
    assert sorted(key(msg) for msg in events) == sorted(uids)
    assert all("traceparent" not in headers(msg) for msg in events)
