"""The outbox relay: publishes "order saved" events written by the store, then deletes their rows.

Rows are claimed with ``FOR UPDATE SKIP LOCKED``, so relays of several workers never publish the same row
at once. A row is deleted only after the broker confirmed its event; while Kafka is down rows just wait.
Delivery is at least once: consumers of the events topic deduplicate on the ``event-id`` header.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from ordersctl.adapters.kafka import is_fatal
from ordersctl.adapters.order_store import OrderStore
from ordersctl.adapters.postgres import translated
from ordersctl.config import PostgresSettings
from ordersctl.errors import ClientFailed, TransientError
from ordersctl.pipeline.backoff import Backoff

log = logging.getLogger(__name__)
LOCK_MARGIN_SECONDS = 2.0  # beyond the relay's own Kafka timeout, before PostgreSQL frees a stuck relay's rows


class OutboxRelay:
    """Publish pending outbox rows in pages; ``run_forever`` is the thread body."""

    def __init__(
        self,
        connect: Callable[[], AbstractContextManager[Any]],
        pg_settings: PostgresSettings,
        producer: Producer,
        topic: str,
        *,
        page: int = 500,
        timeout: float = 15.0,
        on_published: Any = None,
    ) -> None:
        self._connect = connect
        self._pg = pg_settings
        self._producer = producer
        self._topic = topic
        self._page = page
        self._timeout = timeout
        self._store = OrderStore()
        self._on_published = on_published
        self.published = 0
        self.idle = threading.Event()

    def publish_once(self) -> int:
        """Publish one page; returns how many events were confirmed (and their rows deleted)."""
        with translated(self._pg), self._connect() as conn, conn.transaction():
            # The page's row locks are held while Kafka confirms. Should this thread hang past its own timeout
            # (a stuck client), PostgreSQL ends the session and frees them for the other relays.
            lock_bound_ms = int((self._timeout + LOCK_MARGIN_SECONDS) * 1000)
            conn.execute("SELECT set_config('idle_in_transaction_session_timeout', %s, true)", (str(lock_bound_ms),))
            rows = self._store.claim_unpublished(conn, self._page)
            if not rows:
                return 0
            failed: set[int] = set()
            fatal: list[KafkaError] = []

            def on_delivery(event_id: int) -> Callable[[KafkaError | None, Any], None]:
                def delivered(err: KafkaError | None, _msg: Any) -> None:
                    if err is not None:
                        failed.add(event_id)
                        if is_fatal(err):
                            fatal.append(err)

                return delivered

            for event_id, uid, event in rows:
                try:
                    self._producer.produce(
                        self._topic,
                        key=uid.encode(),
                        value=event,
                        headers=[("event-id", str(event_id).encode()), ("event-type", b"order_saved")],
                        on_delivery=on_delivery(event_id),
                    )
                except (KafkaException, BufferError) as exc:
                    if isinstance(exc, KafkaException) and is_fatal(exc.args[0]):
                        fatal.append(exc.args[0])
                        break
                    # e.g. the events topic does not exist (yet): nothing is deleted, the rows wait.
                    failed.add(event_id)
                    log.debug("event not accepted by the producer", extra={"error": str(exc)})
                self._producer.poll(0)
            deadline = time.monotonic() + self._timeout
            while not fatal and len(self._producer) and time.monotonic() < deadline:
                self._producer.flush(0.5)
            if fatal:
                # Rolls the page back: its rows are published again (same event-ids) by a new producer.
                raise ClientFailed(f"events producer failed: {fatal[0].str()}")
            if len(self._producer):
                failed.update(i for i, _, _ in rows)  # not confirmed: publish again later (same event-id)
            done = [i for i, _, _ in rows if i not in failed]
            if done:
                self._store.mark_published(conn, done)
        self.published += len(done)
        if self._on_published is not None and done:
            self._on_published(len(done))
        if failed:
            raise TransientError(f"{len(failed)} events not confirmed by Kafka")
        return len(done)

    def run_forever(self, stop: threading.Event, initial: float = 0.2, cap: float = 10.0) -> None:
        backoff = Backoff(initial, cap)
        while not stop.is_set():
            try:
                count = self.publish_once()
                backoff.reset()
            except TransientError as exc:
                delay = backoff.next()
                log.warning("outbox relay retrying", extra={"error": str(exc), "retry_in_s": round(delay, 2)})
                stop.wait(delay)
                continue
            if count == 0:
                self.idle.set()
                stop.wait(0.2)
            else:
                self.idle.clear()
