"""Sending generated (or file) messages to the orders topic, with confirmation and optional rate limit."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, Producer

from ordersctl.domain.generator import Message


@dataclass
class PublishResult:
    sent: int = 0
    failed: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


def messages_from_file(path: Path) -> Iterator[Message]:
    """JSON lines as messages, keyed by their order_uid when they have one."""
    with path.open("rb") as fh:
        for raw in fh:
            line = raw.rstrip(b"\r\n")
            if not line.strip():
                continue
            uid = ""
            try:
                doc = json.loads(line)
                if isinstance(doc, dict) and isinstance(doc.get("order_uid"), str):
                    uid = doc["order_uid"]
            except ValueError:
                pass
            yield Message(uid.encode(), line, "file", uid)


def publish(
    producer: Producer,
    topic: str,
    messages: Iterable[Message],
    *,
    rate: float | None = None,
    on_sent: Callable[[int], None] | None = None,
    timeout: float = 30.0,
) -> PublishResult:
    """Produce every message and wait for every delivery report."""
    result = PublishResult()
    started = time.monotonic()

    def delivered(err: KafkaError | None, _msg: Any) -> None:
        if err is None:
            result.sent += 1
        else:
            result.failed += 1
        if on_sent is not None:
            on_sent(1)

    for n, msg in enumerate(messages):
        if rate:
            ahead = started + n / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        while True:
            try:
                producer.produce(topic, key=msg.key or None, value=msg.value, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.1)  # local queue full: let deliveries drain
        producer.poll(0)
    remaining = producer.flush(timeout)
    result.failed += remaining
    result.seconds = time.monotonic() - started
    return result
