"""The Kafka side of status and trace, which a command builds first.

librdkafka connects to the brokers in its own threads as soon as a client exists: built before the command
imports the rest of what it reads through (psycopg and redis-py: about 0.15 s of CPU), the clients' connections are
set up by the time the first request is made instead of after it (status and trace: 20-40 ms of wall time less)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ordersctl.adapters.kafka_observer import KafkaView
from ordersctl.adapters.kafka_scan import READER_SETTINGS

if TYPE_CHECKING:
    from ordersctl.runtime import Runtime


def kafka_view(rt: Runtime, timeout: float = 5.0) -> KafkaView:
    """``rt``'s admin client and an observer's consumer: never subscribed, never committing (its group id only
    satisfies librdkafka)."""
    consumer = rt.consumer(group_id=f"{rt.settings.kafka.group_id}.observe", **READER_SETTINGS)
    return KafkaView(rt.kafka_admin, consumer, timeout)
