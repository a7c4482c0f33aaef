"""Sending generated (or file) messages to the orders topic, with confirmation and optional rate limit."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ordersctl.adapters.kafka import ConfirmedSender, Outgoing, SendingProducer
from ordersctl.domain.generator import Message
from ordersctl.domain.peek import order_uid_in
from ordersctl.errors import ClientFailed


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
            # A line that is not an order is sent as it is (unkeyed): the consumer dead-letters it with a reason.
            found = order_uid_in(line)
            uid = found if isinstance(found, str) else ""
            yield Message(uid.encode(), line, "file", uid)


def publish(
    producer: SendingProducer,
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

    def delivered(_tag: None) -> None:
        if on_sent is not None:
            on_sent(1)

    sender = ConfirmedSender(producer, timeout=timeout, rate=rate, on_delivered=delivered)
    report = sender.send_all(Outgoing(topic, msg.value, msg.key or None) for msg in messages)
    result.sent = report.confirmed
    result.failed = len(report.failed) + len(report.unconfirmed)
    if report.fatal is not None:
        raise ClientFailed(f"producer failed: {report.fatal.str()}")
    result.seconds = time.monotonic() - started
    return result
