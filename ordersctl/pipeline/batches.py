"""A batch on its way through a worker: fetched and decoded (``Prepared``), then being stored (``InFlight``)."""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from confluent_kafka import Message

from ordersctl.adapters.kafka_errors import fatal_error, raised_once
from ordersctl.adapters.order_store.writes import Saved
from ordersctl.dlq.letters import DeadLetter
from ordersctl.domain.rows import OrderRows
from ordersctl.domain.rules import decode_rows
from ordersctl.errors import PoisonError

if TYPE_CHECKING:
    from ordersctl.tracing import BatchSpans

log = logging.getLogger(__name__)
Partition = tuple[str, int]


def partition_of(msg: Message) -> Partition:
    return (msg.topic() or "", msg.partition() or 0)


# Not frozen: one is made per order on the ingest path, and a frozen dataclass takes three times as long to build.
@dataclass(slots=True)
class Decoded:
    """A valid message and its order's rows, ready for the store."""

    message: Message
    rows: OrderRows


@dataclass
class Prepared:
    """A fetched batch, decoded: what to store and what is already known to be poison."""

    records: list[Message]
    valid: list[Decoded] = field(default_factory=list)
    letters: list[DeadLetter] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    spans: BatchSpans | None = None  # tracing on: its spans (pipeline/batch_spans.py)

    def without(self, gone: set[Partition]) -> Prepared:
        return Prepared(
            [m for m in self.records if partition_of(m) not in gone],
            [v for v in self.valid if partition_of(v.message) not in gone],
            [d for d in self.letters if partition_of(d.message) not in gone],
            self.started,
            self.spans,
        )


@dataclass
class InFlight:
    """A prepared batch whose store has been started on a store thread (``future`` is None: nothing valid)."""

    batch: Prepared
    future: Future[list[Saved[Decoded]]] | None
    uids: frozenset[str]

    def done(self) -> bool:
        return self.future is None or self.future.done()


def decode_batch(batch: list[Message], max_items: int, started: float) -> Prepared:
    """Decode a fetched batch (main thread, while the previous batch is being stored); ``started``: when it was
    fetched (the batch's duration is measured from then)."""
    prepared = Prepared([], started=started)
    for msg in batch:
        error = msg.error()
        if error is not None:
            fatal = fatal_error(error)
            if fatal is not None:
                raise raised_once(fatal)  # say the topic to consume does not exist: never retried
            log.warning("consumer error", extra={"error": error.str()})
        else:
            prepared.records.append(msg)
    for msg in prepared.records:
        try:
            rows = decode_rows(msg.value(), max_items)
        except PoisonError as exc:
            prepared.letters.append(DeadLetter(msg, exc))
            continue
        prepared.valid.append(Decoded(msg, rows))
    return prepared
