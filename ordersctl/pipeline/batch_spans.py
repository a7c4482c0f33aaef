"""The consume worker's tracing hooks, on the port of ``ordersctl/tracing.py``: kept out of the loop, so that
the loop reads as without them, and tracing off costs one check per batch and nothing per order."""

from __future__ import annotations

from ordersctl.adapters.order_store.writes import Saved, Status
from ordersctl.dlq.letters import DeadLetter
from ordersctl.pipeline.batches import Decoded, Prepared
from ordersctl.pipeline.ports import OrderSink
from ordersctl.tracing import Tracing


def start(tracing: Tracing, batch: Prepared) -> None:
    """A batch just decoded: its spans start (batch, and one per order continuing its message's traceparent)."""
    if tracing.enabled:
        batch.spans = tracing.batch(batch.records)


def save(store: OrderSink, batch: Prepared) -> list[Saved[Decoded]]:
    """Store the batch's valid orders; traced, inside a store span and with each new order's traceparent, which
    its outbox row keeps for its event."""
    spans = batch.spans
    if spans is None:
        return store.save(batch.valid)
    traceparents: dict[str, str] = {}
    for decoded in batch.valid:
        traceparent = spans.traceparent(decoded.message)
        if traceparent:
            traceparents.setdefault(decoded.rows.order_uid, traceparent)  # the copy read first is the one stored
    with spans.storing():
        return store.save(batch.valid, traceparents)


def end(batch: Prepared, outcomes: list[Saved[Decoded]], letters: list[DeadLetter]) -> None:
    """The batch is complete (committed): each order's span says what became of it, and every span ends."""
    if batch.spans is None:
        return
    kept = [(o.item.message, o.status.value) for o in outcomes if o.status in (Status.STORED, Status.DUPLICATE)]
    batch.spans.end(kept + [(letter.message, letter.error.reason) for letter in letters])
