"""The outbox relay: publishes "order saved" events written by the store, then deletes their rows.

Rows are claimed with ``FOR UPDATE SKIP LOCKED``, so relays of several workers never publish the same row
at once. A row is deleted only after the broker confirmed its event; while Kafka is down rows just wait.
Delivery is at least once: consumers of the events topic deduplicate on the ``event-id`` header.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from ordersctl.adapters.kafka import ConfirmedSender, Outgoing, SendingProducer
from ordersctl.adapters.order_store.outbox import Outbox
from ordersctl.adapters.postgres_errors import came_from_postgres
from ordersctl.errors import ClientFailed, FatalError, TransientError
from ordersctl.pipeline.backoff import Backoff

log = logging.getLogger(__name__)
EVENT_TYPE = b"order_saved"
IDLE_POLL_SECONDS = 0.2  # how often an idle relay looks for rows nobody woke it for
LOCK_MARGIN_SECONDS = 2.0  # beyond the relay's own Kafka timeout, before PostgreSQL frees a stuck relay's rows


def _event_headers(event_id: int, traceparent: str | None) -> list[tuple[str, bytes]]:
    headers = [("event-id", str(event_id).encode()), ("event-type", EVENT_TYPE)]
    if traceparent:  # tracing on (ordersctl/tracing.py): the order's trace goes on with its event
        headers.append(("traceparent", traceparent.encode()))
    return headers


class OutboxRelay:
    """Publish pending outbox rows in pages; ``run_forever`` is the thread body."""

    def __init__(
        self,
        connect: Callable[[], AbstractContextManager[Any]],
        outbox: Outbox,
        producer: SendingProducer,
        topic: str,
        *,
        page: int = 500,
        timeout: float = 15.0,
        on_published: Any = None,
    ) -> None:
        self._connect = connect  # its connections translate PostgreSQL errors (Runtime.pg_connection)
        self._producer = producer
        self._topic = topic
        self._page = page
        self._timeout = timeout
        self._outbox = outbox
        self._on_published = on_published
        self.published = 0
        self.idle = threading.Event()
        self.reached_postgres = threading.Event()  # its last page reached PostgreSQL (readiness)
        self.failure: FatalError | None = None  # what ended it for good; the worker raises it
        self._wakeup = threading.Event()

    def publish_once(self) -> int:
        """Publish one page; returns how many events were confirmed (and their rows deleted)."""
        with self._connect() as conn, conn.transaction():
            # The page's row locks are held while Kafka confirms. Should this thread hang past its own timeout
            # (a stuck client), PostgreSQL ends the session and frees them for the other relays.
            lock_bound_ms = int((self._timeout + LOCK_MARGIN_SECONDS) * 1000)
            conn.execute("SELECT set_config('idle_in_transaction_session_timeout', %s, true)", (str(lock_bound_ms),))
            rows = self._outbox.claim_unpublished(conn, self._page)
            if not rows:
                return 0
            done: list[int] = []
            sender = ConfirmedSender(self._producer, timeout=self._timeout, on_delivered=done.append)
            report = sender.send_all(
                Outgoing(self._topic, event, uid.encode(), _event_headers(event_id, traceparent), tag=event_id)
                for event_id, uid, event, traceparent in rows
            )
            if report.fatal is not None:
                # Rolls the page back: its rows are published again (same event-ids) by a new producer.
                raise ClientFailed(f"events producer failed: {report.fatal.str()}")
            # Unconfirmed or refused (say the events topic does not exist yet): the rows wait for the next page.
            if done:
                self._outbox.mark_published(conn, done)
        self.published += len(done)
        if self._on_published is not None and done:
            self._on_published(len(done))
        if not report.complete:
            raise TransientError(f"{len(rows) - len(done)} events not confirmed by Kafka")
        return len(done)

    def wake(self) -> None:
        """New rows were committed (the worker's store just finished a batch): publish now, not at the next poll."""
        self._wakeup.set()

    def run_forever(self, stop: threading.Event, initial: float = 0.2, cap: float = 10.0) -> None:
        backoff = Backoff(initial, cap)
        while not stop.is_set():
            self._wakeup.clear()  # a wake from now on is seen by the wait below, even one during this page
            try:
                count = self.publish_once()
                backoff.reset()
                self.reached_postgres.set()
            except FatalError as exc:
                self.failure = exc  # cannot heal: the worker sees the thread gone and raises this
                return
            except TransientError as exc:
                if came_from_postgres(exc):
                    self.reached_postgres.clear()
                delay = backoff.next()
                log.warning("outbox relay retrying", extra={"error": str(exc), "retry_in_s": round(delay, 2)})
                stop.wait(delay)
                continue
            if count == 0:
                self.idle.set()
            else:
                self.idle.clear()
            if count == 0 or (count < self._page and not self._outbox.claims_alone):
                # The claim found all there was: what is committed from now on wakes it (the store's batches), and
                # rows of other workers, or left from before a restart, are found by this poll. (Claiming again at
                # once cost a transaction per batch that found nothing.) Where one relay claims at a time, another
                # worker's relay may have been refused meanwhile: its rows are this relay's to find, at once.
                self._wakeup.wait(IDLE_POLL_SECONDS)
