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
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import gc
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition

from ordersctl.adapters.order_store import OrderStore, Outcome
from ordersctl.adapters.postgres import translated
from ordersctl.domain.rows import OrderRows, to_rows
from ordersctl.domain.rules import decode_order
from ordersctl.errors import PoisonError, TransientError
from ordersctl.pipeline.backoff import Backoff
from ordersctl.pipeline.dead_letters import DeadLetter, DeadLetterSender, key_uid
from ordersctl.pipeline.metrics import PipelineMetrics
from ordersctl.pipeline.options import WorkerOptions
from ordersctl.pipeline.outbox_relay import OutboxRelay
from ordersctl.pipeline.stats import WorkerStats
from ordersctl.runtime import Runtime, finishes_within

log = logging.getLogger(__name__)
T = TypeVar("T")
_LOST_GENERATION = {
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.ILLEGAL_GENERATION,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError._ASSIGNMENT_LOST,
    KafkaError._NO_OFFSET,
}


class Abandoned(Exception):
    """Shutdown was asked while a batch waited on a dependency: leave it uncommitted."""


Partition = tuple[str, int]
CLOSE_SECONDS = 5.0  # how long a finished worker waits for its consumer to leave the group
COMMIT_TIMEOUT_SECONDS = 10.0  # an offset commit not confirmed by then is retried (transient)
# How long a revoke callback waits for a batch being stored. The group's rebalance waits on this callback, so
# it must end well within max.poll.interval.ms; a batch not done by then is left to the partitions' next owner.
REVOKE_WAIT_SECONDS = 30.0


def tune_interpreter() -> None:
    """Process-wide settings for a worker process, whose hot loop allocates a few hundred thousand objects a second."""
    # The store and relay threads mostly wait on sockets; with the default 5 ms switch interval each of
    # their wake-ups waits behind the CPU-bound decoding of the main thread (a GIL convoy).
    sys.setswitchinterval(0.0005)
    # Decoding a batch makes ~20 container objects per order that live until the batch is committed. With the
    # default threshold (700) the cyclic collector ran ~50 times per 1,000 orders and, measured in a worker,
    # took over a third of the main thread's time re-scanning the live batches. Nearly all of it is freed by
    # reference counting, so collect rarely: after 100,000 net new objects, and never re-scan what was
    # imported at start-up (frozen). Cyclic garbage is still collected, just in larger, rarer passes.
    gc.freeze()
    gc.set_threshold(100_000, 10, 10)


def _once(operation: str, fn: Callable[[], T]) -> T:
    """One attempt, where retrying is not possible (inside a rebalance callback)."""
    return fn()


def _partition_of(msg: Message) -> Partition:
    return (msg.topic() or "", msg.partition() or 0)


@dataclass
class Prepared:
    """A fetched batch, decoded: what to store and what is already known to be poison."""

    records: list[Message]
    valid: list[tuple[Message, OrderRows]] = field(default_factory=list)  # each with its rows, for the store
    letters: list[DeadLetter] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def without(self, gone: set[Partition]) -> Prepared:
        return Prepared(
            [m for m in self.records if _partition_of(m) not in gone],
            [v for v in self.valid if _partition_of(v[0]) not in gone],
            [d for d in self.letters if _partition_of(d.message) not in gone],
            self.started,
        )


@dataclass
class InFlight:
    """A prepared batch whose store has been started on a store thread (``future`` is None: nothing valid)."""

    batch: Prepared
    future: Future[list[Outcome]] | None
    uids: frozenset[str]

    def done(self) -> bool:
        return self.future is None or self.future.done()


class ConsumeWorker:
    """The consume loop of one process."""

    revoke_wait_seconds = REVOKE_WAIT_SECONDS

    def __init__(
        self,
        runtime: Runtime,
        options: WorkerOptions,
        stop: threading.Event,
        report: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.rt = runtime
        self.s = runtime.settings
        self.opt = options
        self.stop = stop
        self.report = report
        self.stats = WorkerStats()
        self.metrics = PipelineMetrics()
        self.store = OrderStore()
        self._carry: list[Message] = []
        self._next: Prepared | None = None  # decoded, waiting for the batch in flight to complete
        self._inflight: deque[InFlight] = deque()  # oldest first; completed strictly in this order
        self._completing: InFlight | None = None  # the oldest, while the main loop completes it
        self._paused = False
        self._awaited_commit: frozenset[tuple[str, int, int]] | None = None
        self._commit_result: tuple[KafkaError | None, list[TopicPartition]] | None = None  # of the awaited one
        self._last_report = time.monotonic()
        self._consumer: Consumer | None = None
        self._sender: DeadLetterSender | None = None
        self._depth = self.s.pipeline.batches_in_flight
        self._executor = ThreadPoolExecutor(max_workers=self._depth, thread_name_prefix="store")

    # ------------------------------------------------------------------ set-up

    @property
    def consumer(self) -> Consumer:
        assert self._consumer is not None
        return self._consumer

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # librdkafka keeps a partition's pause flag across revoke/assign: a partition paused during a retry
        # and lost to a rebalance would come back paused and never be fetched again. Set the state explicitly.
        consumer.assign(partitions)
        if self._paused:
            consumer.pause(partitions)
        else:
            consumer.resume(partitions)
        log.info("partitions assigned", extra={"partitions": [p.partition for p in partitions]})

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Complete the batch in flight while its partitions are still ours, so that their next owner neither
        # stores it again nor dead-letters its poison a second time.
        self._settle_inflight()
        self._forget(partitions)
        log.info("partitions revoked", extra={"partitions": [p.partition for p in partitions]})

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Lost, not revoked: nothing can be committed for them any more; their next owner re-reads (no-op stores).
        self._forget(partitions)
        log.warning("partitions lost", extra={"partitions": [p.partition for p in partitions]})

    def _forget(self, partitions: list[TopicPartition]) -> None:
        """Messages held back from partitions we no longer own belong to their next owner now."""
        gone = {(p.topic, p.partition) for p in partitions}
        self._carry = [m for m in self._carry if _partition_of(m) not in gone]
        if self._next is not None:
            self._next = self._next.without(gone)

    def run(self) -> WorkerStats:
        k = self.s.kafka
        self._consumer = self.rt.consumer(on_commit=self._on_commit)
        self.consumer.subscribe([k.orders_topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_lost)  # fmt: skip
        self._sender = DeadLetterSender(
            self.rt.producer("dlq", **{"message.timeout.ms": 10_000}), k.dlq_topic, k.group_id
        )
        relay = OutboxRelay(
            self.rt.pg_connection, self.s.postgres, self.rt.producer("events", **{"message.timeout.ms": 10_000}),
            k.events_topic, on_published=self._count_events,
        )  # fmt: skip
        relay_stop = threading.Event()
        relay_thread = threading.Thread(target=relay.run_forever, args=(relay_stop,), name="outbox-relay", daemon=True)
        relay_thread.start()
        if self.opt.metrics_port is not None:
            self.metrics.serve(self.s.pipeline.metrics_host, self.opt.metrics_port + self.opt.worker_id)
        started = last_message = time.monotonic()
        try:
            while not self.stop.is_set():
                if not relay_thread.is_alive():
                    raise RuntimeError("the outbox relay thread died; restarting the worker")
                # While a batch is being stored, don't wait long for a full next one: the store's commit waits.
                wait = 0.1 if self._inflight else 0.5
                more = max(1, self.opt.batch_size - len(self._carry))
                batch = self._carry + self.consumer.consume(num_messages=more, timeout=wait)
                self._carry = []
                now = time.monotonic()
                self._report_if_due(now)
                if batch:
                    last_message = now
                    self._next = self._prepare(batch)
                elif not self._inflight and self._idle_done(now, started, last_message, relay):
                    break
                try:
                    self._finish_due()  # the oldest batches: stored, dead letters sent, committed
                    self._launch()  # the batch just decoded starts storing while the loop fetches the next
                except Abandoned:
                    self._abandon()
                    break
            try:
                while self._inflight:
                    self._finish_oldest()
            except Abandoned:
                self._abandon()
        finally:
            relay_stop.set()
            relay_thread.join(timeout=5)
            self._executor.shutdown(wait=True)
            self._report()
            self._leave_group()
        return self.stats

    def _leave_group(self) -> None:
        """Close the consumer, which leaves the group at once: partitions move without waiting for the session
        timeout. Bounded, because librdkafka can block in close after the broker restarted
        (confluentinc/librdkafka#4674); everything is committed by now, so giving up costs only that timeout."""
        if not finishes_within(CLOSE_SECONDS, self.consumer.close, "close-consumer"):
            log.warning(
                "the consumer did not close in time; its session expires instead", extra={"seconds": CLOSE_SECONDS}
            )

    def _count_events(self, n: int) -> None:
        self.stats.events += n
        self.metrics.events.inc(n)

    # ------------------------------------------------------------------ one batch

    def _prepare(self, batch: list[Message]) -> Prepared:
        """Decode a fetched batch (main thread, while the previous batch is being stored)."""
        prepared = Prepared([])
        for msg in batch:
            error = msg.error()
            if error is not None:
                log.warning("consumer error", extra={"error": error.str()})
            else:
                prepared.records.append(msg)
        for msg in prepared.records:
            try:
                order = decode_order(msg.value(), self.s.pipeline.max_items)
            except PoisonError as exc:
                prepared.letters.append(DeadLetter(msg, exc))
                continue
            prepared.valid.append((msg, to_rows(order, msg.value())))
        return prepared

    def _launch(self) -> None:
        prepared, self._next = self._next, None
        if prepared is None or not prepared.records:
            return
        uids = frozenset(rows.order[0] for _, rows in prepared.valid)
        # An order also in a batch in flight (a re-sent copy): let that batch complete first, so that the
        # copy read first is the one stored and a later one is compared with it (duplicate or conflict).
        while any(not uids.isdisjoint(earlier.uids) for earlier in self._inflight):
            self._finish_oldest()
        future = self._executor.submit(self._store, prepared.valid) if prepared.valid else None
        self._inflight.append(InFlight(prepared, future, uids))

    def _finish_due(self) -> None:
        """Complete the oldest batches in flight that are done, or must be: to make room for the batch just
        decoded, or because nothing new came (then all of them)."""
        while self._inflight and (self._next is None or len(self._inflight) >= self._depth or self._inflight[0].done()):
            self._finish_oldest()

    def _finish_oldest(self) -> None:
        """Wait for the oldest batch's store (retrying transient failures), dead-letter, commit. Batches complete
        in the order they were fetched, so a commit never passes a message of an earlier, unfinished batch."""
        inflight = self._completing = self._inflight[0]
        try:
            valid = inflight.batch.valid
            outcomes: list[Outcome] = []
            if inflight.future is not None:
                outcomes = self._until_done("store", lambda: self._store(valid), first=inflight.future)
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
        the first failure leave the rest to the main loop (which commits only partitions still ours)."""
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
            except (TransientError, KafkaException) as exc:
                log.warning("batch in flight not completed before revoke", extra={"error": str(exc)})
                return
            self._inflight.popleft()

    def _complete(self, batch: Prepared, outcomes: list[Outcome], *, retry: bool) -> None:
        letters = list(batch.letters)
        stored = duplicates = 0
        for (msg, _), outcome in zip(batch.valid, outcomes, strict=True):
            if outcome == "stored":
                stored += 1
            elif outcome == "duplicate":
                duplicates += 1
            else:
                assert isinstance(outcome, PoisonError)
                letters.append(DeadLetter(msg, outcome))
        assert self._sender is not None
        sender = self._sender
        attempt = self._until_done if retry else _once
        if letters:
            attempt("dlq", lambda: sender.send(letters))
        # In a revoke callback the consumer cannot be polled, so the commit is sent without waiting for its
        # result there; librdkafka completes it before the group moves on.
        attempt("commit", lambda: self._commit(batch.records, wait=retry))
        # Counted once complete, so that consumed = stored + duplicates + dead-lettered for this worker.
        self.stats.consumed += len(batch.records)
        self.metrics.consumed.inc(len(batch.records))
        self.metrics.batch_size.observe(len(batch.records))
        self.stats.stored += stored
        self.metrics.stored.inc(stored)
        self.stats.duplicates += duplicates
        self.metrics.duplicates.inc(duplicates)
        for letter in letters:
            self.stats.dlq[letter.error.reason] += 1
            self.metrics.dlq.labels(letter.error.reason).inc()
            m = letter.message
            log.warning(
                "dead-lettered",
                extra={"topic": m.topic(), "partition": m.partition(), "offset": m.offset(),
                       "order_uid": key_uid(m.key()), "reason": letter.error.reason},
            )  # fmt: skip
        self.metrics.batch_seconds.observe(time.monotonic() - batch.started)

    def _store(self, valid: list[tuple[Message, OrderRows]]) -> list[Outcome]:
        with translated(self.s.postgres), self.rt.pg_connection() as conn:
            return self.store.save_rows(conn, [r for _, r in valid])

    def _commit(self, records: list[Message], *, wait: bool = True) -> None:
        """Commit the records' offsets (the partitions still ours) and, with ``wait``, confirm every partition.

        Asynchronous plus a wait that keeps polling, never ``commit(asynchronous=False)``: that call blocks
        until the broker answers and can wait forever when a rebalance starts while it is outstanding (seen
        after a broker restart; the group then waits for this worker, which waits for the group)."""
        offsets: dict[tuple[str, int], int] = {}
        for m in records:
            key = (m.topic() or "", m.partition() or 0)
            offsets[key] = max(offsets.get(key, 0), (m.offset() or 0) + 1)
        assigned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
        wanted = [TopicPartition(t, p, o) for (t, p), o in offsets.items() if (t, p) in assigned]
        if not wanted:
            return  # all revoked meanwhile: their next owner re-reads them, and the store makes that a no-op
        if not wait:
            self._send_commit(wanted)
            return
        self._awaited_commit = frozenset((tp.topic, tp.partition, tp.offset) for tp in wanted)
        self._commit_result = None
        try:
            if not self._send_commit(wanted):
                return
            deadline = time.monotonic() + COMMIT_TIMEOUT_SECONDS
            while self._commit_result is None:
                if time.monotonic() > deadline:
                    raise TransientError(f"offset commit not confirmed within {COMMIT_TIMEOUT_SECONDS:.0f} s")
                self._poll_meanwhile()
            self._check_commit(*self._commit_result)
        finally:
            self._awaited_commit = self._commit_result = None

    def _send_commit(self, wanted: list[TopicPartition]) -> bool:
        """False if librdkafka refused the commit at once (handled like a refusal from the broker)."""
        try:
            self.consumer.commit(offsets=wanted, asynchronous=True)
        except KafkaException as exc:
            self._check_commit(exc.args[0], [])
            return False
        return True

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        """Commit results arrive here, from poll/consume on the main thread."""
        if frozenset((tp.topic, tp.partition, tp.offset) for tp in partitions) == self._awaited_commit:
            self._commit_result = (err, partitions)
        elif err is not None or any(tp.error is not None for tp in partitions):
            # A commit sent from a revoke callback, or one given up on: its records are re-read by their owner.
            log.warning("offset commit not applied", extra={"error": err.str() if err else "per partition"})

    def _check_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if err is not None:
            if err.code() in _LOST_GENERATION:
                log.warning("commit skipped after a rebalance", extra={"error": err.str()})
                return
            raise TransientError(f"offset commit failed: {err.str()}")
        for tp in partitions:
            if tp.error is not None:
                if tp.error.code() in _LOST_GENERATION:
                    continue
                raise TransientError(f"offset commit failed for {tp.topic}[{tp.partition}]: {tp.error.str()}")

    def _poll_meanwhile(self) -> None:
        """Serve callbacks (commit results, rebalances) while waiting; a message that arrives starts the next
        batch. Past a batch's worth, every partition is paused until the wait ends."""
        msg = self.consumer.poll(0.05)
        if msg is None or msg.error() is not None:
            return
        self._carry.append(msg)
        if len(self._carry) >= self.opt.batch_size and not self._paused:
            self.consumer.pause(self.consumer.assignment())
            self._paused = True

    # ------------------------------------------------------------------ retries

    def _until_done(self, operation: str, fn: Callable[[], T], first: Future[T] | None = None) -> T:
        """``fn()`` until it stops failing transiently; ``first`` is an attempt already running elsewhere."""
        backoff = Backoff(self.s.pipeline.retry_initial_seconds, self.s.pipeline.retry_max_seconds)
        try:
            while True:
                try:
                    if first is not None:
                        attempt, first = first, None
                        return attempt.result()
                    return fn()
                except TransientError as exc:
                    if self.stop.is_set():
                        raise Abandoned from exc
                    delay = backoff.next()
                    self.stats.retries += 1
                    self.metrics.retries.labels(operation).inc()
                    log.warning(
                        "transient failure, retrying",
                        extra={"operation": operation, "error": str(exc), "attempt": backoff.attempt,
                               "retry_in_s": round(delay, 2)},
                    )  # fmt: skip
                    self._pause_and_poll(delay)
        finally:
            if self._paused:
                self.consumer.resume(self.consumer.assignment())
                self._paused = False

    def _pause_and_poll(self, seconds: float) -> None:
        """Wait, polling so the group keeps us; anything fetched meanwhile is kept for the next batch."""
        if not self._paused:
            self.consumer.pause(self.consumer.assignment())
            self._paused = True
        deadline = time.monotonic() + seconds
        while not self.stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._report_if_due(time.monotonic())  # the progress line shows the retries as they happen
            msg = self.consumer.poll(min(left, 0.2))
            if msg is not None and msg.error() is None:
                self._carry.append(msg)
                self.consumer.pause([TopicPartition(msg.topic() or "", msg.partition() or 0)])

    # ------------------------------------------------------------------ progress and idling

    def _assignment_lag(self) -> int:
        """Lag of our own partitions from local state only (cached high watermarks, positions): no round trip,
        so the progress report never slows the batch loop down."""
        total = 0
        assignment = self.consumer.assignment()
        if not assignment:
            return 0
        for tp in self.consumer.position(assignment):
            _low, high = self.consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), cached=True)
            if high < 0 or tp.offset < 0:
                continue  # nothing fetched yet for this partition
            lag = max(0, high - tp.offset)
            self.metrics.lag.labels(tp.topic, str(tp.partition)).set(lag)
            total += lag
        return total

    def _topic_lag(self) -> int:
        """The group's committed lag over every partition of the orders topic, whoever owns them now.

        Asks the broker (a round trip per partition): only used once the worker is idle."""
        topic = self.s.kafka.orders_topic
        meta = self.consumer.list_topics(topic, timeout=2).topics[topic]
        partitions = [TopicPartition(topic, p) for p in meta.partitions]
        total = 0
        for tp in self.consumer.committed(partitions, timeout=2):
            low, high = self.consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=2)
            total += high - (tp.offset if tp.offset >= 0 else low)
        return total

    def _report_if_due(self, now: float) -> None:
        if now - self._last_report >= self.opt.report_every:
            self._report()
            self._last_report = now

    def _report(self) -> None:
        with contextlib.suppress(KafkaException):  # lag is informative only; the broker may be away
            self.stats.lag = self._assignment_lag()
        if self.report is not None:
            self.report(self.stats.as_dict())
        log.debug("progress", extra=self.stats.as_dict())

    def _idle_done(self, now: float, started: float, last_message: float, relay: OutboxRelay) -> bool:
        idle = self.opt.stop_when_idle
        if idle is None or now - last_message < idle or now - started < idle:
            return False
        # The whole topic, not just our assignment: during a rebalance (say a dead worker's session has not
        # expired yet) we may own nothing while others' partitions still wait.
        try:
            return self._topic_lag() == 0 and relay.idle.is_set()
        except KafkaException:
            return False
