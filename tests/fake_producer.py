"""A stand-in for confluent_kafka.Producer (same methods) whose deliveries fail as told, for the failure
paths a real broker cannot be made to take on demand (a fatal idempotent-producer error)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException

FATAL = KafkaError(KafkaError._FATAL, "producer fenced", fatal=True)
TIMED_OUT = KafkaError(KafkaError._MSG_TIMED_OUT, "Local: Message timed out")


class FakeProducer:
    """``deliver`` is the error each delivery report carries (None: delivered); ``refuse`` is raised by
    ``produce`` from the ``refuse_after``-th message on."""

    def __init__(
        self, deliver: KafkaError | None = None, refuse: KafkaError | None = None, refuse_after: int = 0
    ) -> None:
        self.deliver = deliver
        self.refuse = refuse
        self.refuse_after = refuse_after
        self.produced: list[dict[str, Any]] = []
        self._pending: list[Callable[[KafkaError | None, Any], None]] = []

    def produce(self, topic: str, *, on_delivery: Callable[[KafkaError | None, Any], None], **kw: Any) -> None:
        if self.refuse is not None and len(self.produced) >= self.refuse_after:
            raise KafkaException(self.refuse)
        self.produced.append({"topic": topic, **kw})
        self._pending.append(on_delivery)

    def poll(self, timeout: float = 0) -> int:
        return self.flush(timeout)

    def flush(self, timeout: float = 0) -> int:
        pending, self._pending = self._pending, []
        for report in pending:
            report(self.deliver, None)
        return 0

    def __len__(self) -> int:
        return len(self._pending)
