"""One consume worker: batches from Kafka -> validated orders in PostgreSQL -> offsets committed.

Guarantees, in order of importance:
- an offset is committed only after every message below it is stored or confirmed in the DLQ;
- a poison message is isolated and dead-lettered; the rest of its batch is stored;
- a transient failure (PostgreSQL, Kafka) is retried with backoff while the worker keeps polling with its
  partitions paused, so it stays in the group and resumes by itself.

Throughput: up to ``pipeline.batches_in_flight`` batches are written to PostgreSQL at once, each by a store
thread on its own connection, while the main thread fetches and decodes the next one (decoding is CPU in
this process; the write is mostly CPU in the server). Everything that touches the consumer (polling,
pausing, committing) stays on the main thread, and batches complete strictly in the order they were read.
A batch that shares an order_uid with a batch in flight starts only once that batch is complete, so the
copy of an order read first is always the one stored.

Batches form by group commit (``_fill``): a trickle is stored within a millisecond or two, a backlog in whole batches.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from collections import deque

from confluent_kafka import KafkaException, Message, TopicPartition

from ordersctl.adapters.order_store.writes import Saved, Status
from ordersctl.dlq.letters import DeadLetter
from ordersctl.domain.peek import key_uid
from ordersctl.errors import FatalError, TransientError
from ordersctl.pipeline import batch_spans
from ordersctl.pipeline.batches import Decoded, InFlight, Prepared, decode_batch
from ordersctl.pipeline.ports import Limits, WorkerConsumer, WorkerPorts
from ordersctl.pipeline.retry_policy import Abandoned, once
from ordersctl.pipeline.stats import WorkerStats
from ordersctl.runtime import finishes_within

log = logging.getLogger(__name__)
CLOSE_SECONDS = 5.0  # how long a finished worker waits for its consumer to leave the group
# How long a revoke callback waits for a batch being stored. The group's rebalance waits on this callback, so
# it must end well within max.poll.interval.ms; a batch not done by then is left to the partitions' next owner.
REVOKE_WAIT_SECONDS = 30.0
# While a store runs, how often the filling of the next batch looks whether it is done (a consume() call each).
STORE_CHECK_SECONDS = 0.001


class ConsumeWorker:
    """The consume loop of one process, over ports it receives built."""

    revoke_wait_seconds = REVOKE_WAIT_SECONDS

    def __init__(self, ports: WorkerPorts, limits: Limits, stop: threading.Event) -> None:
        self.ports = ports
        self.consumer = ports.consumer
        self.buffer = ports.buffer
        self.committer = ports.committer
        self.counters = ports.counters
        self.progress = ports.progress
        self.retry = ports.retry
        self.limits = limits
        self.stop = stop
        self._clock = ports.clock
        self._next: Prepared | None = None  # decoded, waiting for the batch in flight to complete
        self._inflight: deque[InFlight] = deque()  # oldest first; completed strictly in this order
        self._completing: InFlight | None = None  # the oldest, while the main loop completes it
        self._idle_from = 0.0

    @property
    def stats(self) -> WorkerStats:
        return self.counters.stats

    # ------------------------------------------------------------------ set-up and the group

    def _on_assign(self, consumer: WorkerConsumer, partitions: list[TopicPartition]) -> None:
        # Under an incremental protocol the partitions given are those added, and assign() would refuse them.
        if self.limits.incremental:
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)
            # Eager: the whole assignment. librdkafka can serve two in a row with no revoke between (a rejoin while
            # one was still to be served): what the last one lacks is another member's now, as if lost.
            kept = {(tp.topic, tp.partition) for tp in partitions}
            if gone := [TopicPartition(t, p) for t, p in self.committer.owned - kept]:
                self._forget(gone)
                log.warning("partitions gone without a revoke", extra={"partitions": [p.partition for p in gone]})
        self.committer.assigned(partitions)
        self.progress.joined = True  # health: a member of the balanced group
        # librdkafka keeps a partition's pause flag across revoke/assign: a partition paused during a retry
        # and lost to a rebalance would come back paused and never be fetched again. Set the state explicitly.
        self._idle_from = self._clock()  # --stop-when-idle waits anew (also when lost)
        if self.buffer.paused:
            consumer.pause(partitions)
        else:
            consumer.resume(partitions)
        log.info("partitions assigned", extra={"partitions": [p.partition for p in partitions]})

    def _on_revoke(self, consumer: WorkerConsumer, partitions: list[TopicPartition]) -> None:
        # Complete the batch in flight while its partitions are still ours, so that their next owner neither
        # stores it again nor dead-letters its poison a second time.
        self._settle_inflight()
        self._forget(partitions)
        self._give_back(consumer, partitions)
        log.info("partitions revoked", extra={"partitions": [p.partition for p in partitions]})

    def _on_lost(self, consumer: WorkerConsumer, partitions: list[TopicPartition]) -> None:
        # Lost, not revoked: nothing can be committed for them any more; their next owner re-reads (no-op stores).
        self._idle_from = self._clock()
        self.progress.joined = False  # health: out of the group until it assigns us again
        self._forget(partitions)
        self._give_back(consumer, partitions)
        log.warning("partitions lost", extra={"partitions": [p.partition for p in partitions]})

    def _give_back(self, consumer: WorkerConsumer, partitions: list[TopicPartition]) -> None:
        # Incremental: only the partitions leaving are unassigned, the others go on being fetched. (The eager
        # protocol's unassign of everything is left to the client, as before.)
        if self.limits.incremental:
            consumer.incremental_unassign(partitions)

    def _forget(self, partitions: list[TopicPartition]) -> None:
        """Messages held back from partitions we no longer own belong to their next owner now, and so does
        reporting their lag."""
        gone = {(p.topic, p.partition) for p in partitions}
        self.buffer.forget(gone)
        self.committer.forget(gone)
        self.counters.partitions_gone(gone)
        if self._next is not None:
            self._next = self._next.without(gone)

    def run(self) -> WorkerStats:
        """Consume until ``stop`` is set (or, with --stop-when-idle, until idle); then leave the group."""
        relay, limits = self.ports.relay, self.limits
        self.consumer.subscribe([limits.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_lost)  # fmt: skip
        relay_stop = threading.Event()
        relay_thread = threading.Thread(target=relay.run_forever, args=(relay_stop,), name="outbox-relay", daemon=True)
        relay_thread.start()
        self._idle_from = last_message = self._clock()
        try:
            while not self.stop.is_set():
                if not relay_thread.is_alive():
                    raise relay.failure or RuntimeError("the outbox relay thread died; restarting the worker")
                self.committer.resend_refused()
                batch = self._fill()
                now = self._clock()
                self.progress.report_if_due()
                if batch:
                    last_message = now
                    self._next = decode_batch(batch, limits.max_items, now)
                    batch_spans.start(self.ports.tracing, self._next)  # tracing hook: one check when off
                elif not self._inflight and self.progress.idle_done(now, self._idle_from, last_message, relay.idle):
                    break
                if not self._advance():
                    break
            self._drain_inflight()
        finally:
            relay_stop.set()
            relay.wake()
            relay_thread.join(timeout=5)
            self.ports.executor.shutdown(wait=True)
            self.progress.report()
            self._leave_group()
        return self.stats

    def _fill(self) -> list[Message]:
        """The next batch (group commit): what is fetched already, and while a store runs, what comes until it is
        done (or the batch is full). With none running it starts at once; ``max_wait_seconds`` bounds the filling."""
        deadline = self._clock() + self.limits.max_wait_seconds
        buffer = self.buffer
        buffer.fetch(0.0)  # what librdkafka has fetched already
        # librdkafka waits in whole milliseconds: a shorter timeout returns at once, and the loop would spin.
        while buffer.room() and (left := deadline - self._clock()) >= STORE_CHECK_SECONDS:
            if any(not inflight.done() for inflight in self._inflight):  # no store can wake consume(): look often
                buffer.fetch(min(left, STORE_CHECK_SECONDS))
            elif buffer.carry or self._inflight:
                break  # nothing being stored: start this batch now (or complete the stored ones first)
            elif buffer.fetch(left, first=True):  # idle: returns the moment an order comes ...
                buffer.fetch(0.0)  # ... with whatever came along
        return self.buffer.take()

    def _advance(self) -> bool:
        """Complete what is due and start the batch just decoded; False once shutdown abandoned the batches."""
        try:
            self._finish_due()  # the oldest batches: stored, dead letters sent, committed
            self._launch()  # the batch just decoded starts storing while the loop fetches the next
        except Abandoned:
            self._abandon()
            return False
        return True

    def _drain_inflight(self) -> None:
        try:
            while self._inflight:
                self._finish_oldest()
        except Abandoned:
            self._abandon()

    def _leave_group(self) -> None:
        """Leave the group at once (no session timeout to wait out), once the commits sent are answered; both
        bounded (librdkafka can block in close after a broker restart, confluentinc/librdkafka#4674)."""
        if not self.committer.settle():
            log.warning("offset commits not answered before leaving; the next owner re-reads (no-op stores)")
        if not finishes_within(CLOSE_SECONDS, self.consumer.close, "close-consumer"):
            log.warning("the consumer did not close in time; its session expires", extra={"seconds": CLOSE_SECONDS})

    # ------------------------------------------------------------------ one batch

    def _launch(self) -> None:
        prepared, self._next = self._next, None
        if prepared is None or not prepared.records:
            return
        uids = frozenset(decoded.rows.order_uid for decoded in prepared.valid)
        # An order also in a batch in flight (a re-sent copy): let that batch complete first, so that the
        # copy read first is the one stored and a later one is compared with it (duplicate or conflict).
        while any(not uids.isdisjoint(earlier.uids) for earlier in self._inflight):
            self._finish_oldest()
        future = self.ports.executor.submit(self._store, prepared) if prepared.valid else None
        self._inflight.append(InFlight(prepared, future, uids))

    def _finish_due(self) -> None:
        """Complete the oldest batches in flight that are done, or must be: to make room for the batch just
        decoded, or because nothing new came (then all of them)."""
        while self._inflight and (
            self._next is None or len(self._inflight) >= self.limits.batches_in_flight or self._inflight[0].done()
        ):
            self._finish_oldest()

    def _finish_oldest(self) -> None:
        """Wait for the oldest batch's store (retrying transient failures), dead-letter, commit. Batches complete
        in the order they were fetched, so a commit never passes a message of an earlier, unfinished batch."""
        inflight = self._completing = self._inflight[0]
        try:
            batch = inflight.batch
            outcomes: list[Saved[Decoded]] = []
            if inflight.future is not None:
                outcomes = self.retry.until_done("store", lambda: self._store(batch), first=inflight.future)
            self._complete(inflight.batch, outcomes, retry=True)
        finally:
            self._completing = None
        self._inflight.popleft()

    def _abandon(self) -> None:
        """Shutdown while a batch waited on a dependency: it and every later batch stay uncommitted (their
        messages are read again after a restart; the ones already stored are then duplicates, a no-op)."""
        log.info("batches in flight abandoned for shutdown (left uncommitted)", extra={"batches": len(self._inflight)})
        self._inflight.clear()
        self._next = None

    def _settle_inflight(self) -> None:
        """From a revoke callback: complete the batches in flight, in order, once each and without polling; at
        the first failure, or a store still running after ``revoke_wait_seconds``, leave the rest to the main
        loop (which commits only partitions still ours)."""
        while self._inflight:
            inflight = self._inflight[0]
            if inflight is self._completing:
                return  # the main loop is retrying it (this callback came from its polling); later ones wait
            try:
                outcomes = inflight.future.result(self.revoke_wait_seconds) if inflight.future is not None else []
                self._complete(inflight.batch, outcomes, retry=False)
            except concurrent.futures.TimeoutError:
                log.warning("batch in flight not stored before revoke", extra={"seconds": self.revoke_wait_seconds})
                return
            except (TransientError, FatalError, KafkaException) as exc:  # a FatalError: the main loop raises it
                log.warning("batch in flight not completed before revoke", extra={"error": str(exc)})
                return
            self._inflight.popleft()

    def _complete(self, batch: Prepared, outcomes: list[Saved[Decoded]], *, retry: bool) -> None:
        letters = list(batch.letters)
        stored = duplicates = 0
        for outcome in outcomes:
            if outcome.status is Status.STORED:
                stored += 1
            elif outcome.status is Status.DUPLICATE:
                duplicates += 1
            else:
                assert outcome.error is not None, outcome
                letters.append(DeadLetter(outcome.item.message, outcome.error))
        sender = self.ports.dead_letters
        attempt = self.retry.until_done if retry else once
        if letters:
            attempt("dlq", lambda: sender.send(letters))
        attempt("commit", lambda: self.committer.commit(batch.records))
        reasons = [letter.error.reason for letter in letters]
        self.counters.batch_completed(len(batch.records), stored, duplicates, reasons, self._clock() - batch.started)
        batch_spans.end(batch, outcomes, letters)  # tracing hook
        for letter in letters:
            m = letter.message
            log.warning(
                "dead-lettered",
                extra={"topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
                       "order_uid": key_uid(m.key()), "reason": letter.error.reason},
            )  # fmt: skip

    def _store(self, batch: Prepared) -> list[Saved[Decoded]]:
        outcomes = batch_spans.save(self.ports.store, batch)  # traced when tracing is on
        self.ports.relay.wake()  # the batch's outbox rows are committed: their events go out now
        return outcomes
