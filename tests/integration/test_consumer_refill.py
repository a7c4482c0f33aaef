"""A consumer catching up on a backlog is never left waiting for its next fetch: librdkafka stops fetching once its
prefetch queue is full and, by default, fetches again only a second later (``fetch.queue.backoff.ms``), while
ordersctl drains its 12 MiB in about half of that. Seen as 0.4-0.5 s without a stored batch, again and again, in a
worker catching up (docs/performance.md); a catch-up after downtime ran at 0.88-0.92 of the COPY ceiling."""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import Producer

from ordersctl.adapters.kafka import make_consumer
from ordersctl.config import Settings, load_settings
from tests.conftest import KAFKA
from tests.helpers import create_topics

pytestmark = pytest.mark.integration

MESSAGES = 3_000
PAYLOAD = b"x" * 2_000  # about an order's size
PREFETCH_KIB = 512  # the queue fills after about 250 messages: it is refilled a dozen times in this backlog


@pytest.fixture
def backlog(services: None, topic_prefix: str) -> Settings:
    topic = f"{topic_prefix}.orders"
    settings = load_settings(overrides={"kafka": {"bootstrap_servers": KAFKA, "orders_topic": topic}})
    create_topics(settings, partitions=1, dlq=False, events=False)
    producer = Producer({"bootstrap.servers": KAFKA, "linger.ms": 20})
    for i in range(MESSAGES):
        producer.produce(topic, PAYLOAD, key=str(i).encode())
        producer.poll(0)
    assert producer.flush(30) == 0, "the backlog was not confirmed"
    return settings


def test_a_consumer_draining_a_backlog_is_not_left_waiting_for_its_next_fetch(backlog: Settings) -> None:
    k = backlog.kafka
    prefetch: dict[str, Any] = {"queued.max.messages.kbytes": PREFETCH_KIB}
    consumer = make_consumer(k, f"{k.orders_topic}.refill", None, **prefetch)
    try:
        consumer.subscribe([k.orders_topic])
        deadline = time.monotonic() + 60
        received, waits = 0, []
        while not received and time.monotonic() < deadline:  # joins the group, fetches from the start
            received = len([m for m in consumer.consume(1, 0.5) if m.error() is None])
        while received < MESSAGES and time.monotonic() < deadline:
            asked = time.monotonic()
            # consume() returns once it has as many as asked (or at the timeout): never more than are left.
            batch = [m for m in consumer.consume(min(500, MESSAGES - received), 5.0) if m.error() is None]
            if batch:
                waits.append(time.monotonic() - asked)
            received += len(batch)
    finally:
        consumer.close()
    assert received == MESSAGES, f"only {received} of {MESSAGES} messages arrived"
    # librdkafka's default backoff left the loop waiting 0.5-1 s at each refill; with ordersctl's, a few ms.
    assert max(waits) < 0.3, f"waited {max(waits):.2f} s for a refill while {MESSAGES - received} were left"
