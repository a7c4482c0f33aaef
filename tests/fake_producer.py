"""A stand-in for confluent_kafka.Producer (the SendingProducer protocol) whose deliveries fail as told, for the
failure paths a real broker cannot be made to take on demand (a fatal idempotent-producer error)."""

from __future__ import annotations

from typing import Any

from confluent_kafka import KafkaError, KafkaException

from ordersctl.adapters.kafka import DeliveryReport

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
        self._pending: list[DeliveryReport] = []

    def produce(
        self,
        topic: str,
        *,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int = -1,
        on_delivery: DeliveryReport | None = None,
        headers: list[tuple[str, str | bytes | None]] | None = None,
    ) -> None:
        if self.refuse is not None and len(self.produced) >= self.refuse_after:
            raise KafkaException(self.refuse)
        self.produced.append({"topic": topic, "value": value, "key": key, "partition": partition, "headers": headers})
        if on_delivery is not None:
            self._pending.append(on_delivery)

    def poll(self, timeout: float = -1) -> int:
        return self.flush(timeout)

    def flush(self, timeout: float = -1) -> int:
        pending, self._pending = self._pending, []
        for report in pending:
            report(self.deliver, None)
        return 0

    def __len__(self) -> int:
        return len(self._pending)
