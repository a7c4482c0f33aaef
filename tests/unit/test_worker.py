"""The consume protocol of one worker, on fakes (tests/fakes.py): no service, no thread pool, no sleep.

The same guarantees against the real Kafka and PostgreSQL: tests/e2e/test_ingest.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence

import pytest
from confluent_kafka import Message, TopicPartition

from ordersctl.adapters.order_store.writes import Saved
from ordersctl.config import PipelineSettings
from ordersctl.pipeline.batches import Decoded, InFlight, Prepared
from ordersctl.pipeline.counters import PipelineCounters
from ordersctl.pipeline.fetch_buffer import FetchBuffer
from ordersctl.pipeline.offset_committer import CommitAnswers, OffsetCommitter
from ordersctl.pipeline.ports import Limits, WorkerPorts
from ordersctl.pipeline.progress import Progress
from ordersctl.pipeline.retry_policy import RetryPolicy
from ordersctl.pipeline.worker import ConsumeWorker
from tests.conftest import FIXTURE
from tests.fake_consumer import FakeConsumer, Script
from tests.fakes import (
    FakeClock,
    FakeDeadLetters,
    FakeRelay,
    FakeStore,
    NeverFuture,
    StepExecutor,
    TimedExecutor,
    message,
)

CANONICAL = FIXTURE.read_bytes()
CANONICAL_UID = b"b563feb7b2b84b6test"
MAX_WAIT = 0.05  # each empty fetch moves the fake clock on by this much


class Rig:
    """A worker on fakes, and the fakes to look at afterwards."""

    def __init__(
        self,
        messages: Sequence[Message],
        *,
        store: FakeStore | None = None,
        batch_size: int = 4,
        stop_when_idle: float | None = 1.0,
        executor: StepExecutor | None = None,
        script: Script | None = None,
        incremental: bool = False,
        arrivals: Sequence[tuple[float, Message]] = (),
        store_seconds: float | None = None,
    ) -> None:
        self.clock = FakeClock()
        # ``arrivals``: (seconds from the start, message), fetchable from then on.
        later = [(self.clock() + at, m) for at, m in arrivals]
        self.consumer = FakeConsumer(self.clock, messages, script=script, incremental=incremental, arrivals=later)
        self.committed_at: list[float] = []
        self.timed = TimedExecutor(self.clock, store_seconds or 0.0)  # the executor with ``store_seconds``
        self.store = store or FakeStore()
        self.dead_letters = FakeDeadLetters()
        self.relay = FakeRelay()
        self.counters = PipelineCounters()
        self.stop = threading.Event()
        answers = CommitAnswers(self.clock)
        self.consumer.on_commit = answers.on_commit
        self.consumer.check_commit = self.check_commit
        buffer = FetchBuffer(self.consumer, batch_size)
        progress = Progress(
            self.consumer, self.counters, "orders", 2.0, None, stop_when_idle, self.clock,
            postgres=self.relay.reached_postgres,
        )  # fmt: skip
        self.consumer.stats_cb = progress.lags.on_stats
        retry_settings = PipelineSettings(retry_initial_seconds=0.2, retry_max_seconds=1.0)
        ports = WorkerPorts(
            consumer=self.consumer,
            store=self.store,
            dead_letters=self.dead_letters,
            committer=OffsetCommitter(buffer, answers),
            relay=self.relay,
            clock=self.clock,
            counters=self.counters,
            buffer=buffer,
            retry=RetryPolicy(buffer, self.stop, retry_settings, self.counters, progress.report_if_due, self.clock),
            progress=progress,
            executor=self.timed if store_seconds is not None else executor or StepExecutor(),
        )
        limits = Limits("orders", batch_size, 1000, 2, MAX_WAIT, incremental=incremental)
        self.worker = ConsumeWorker(ports, limits, self.stop)

    def handled(self) -> set[tuple[int, int]]:
        """(partition, offset) of every message stored (or found stored already) or confirmed dead-lettered."""
        done = [item.message for item in self.store.handled if isinstance(item, Decoded)]
        done += [letter.message for letter in self.dead_letters.sent]
        return {(m.partition() or 0, m.offset() or 0) for m in done}

    def check_commit(self, offsets: list[TopicPartition]) -> None:
        """The rule: a commit of offset N covers every message below N, so each of them is already handled."""
        self.committed_at.append(self.clock())
        handled = self.handled()
        for tp in offsets:
            below = {(m.partition(), m.offset()) for m in self.consumer.log if m.partition() == tp.partition}
            below = {(p or 0, o or 0) for p, o in below if (o or 0) < tp.offset}
            missing = below - handled
            assert not missing, f"commit of partition {tp.partition} at {tp.offset} passes unhandled {sorted(missing)}"

    def run(self) -> None:
        self.worker.run()
        assert self.consumer.closed, "the worker did not leave the group"


def orders(count: int, seed: int = 1, partitions: int = 2, start: int = 0) -> list[Message]:
    """Valid orders (the canonical one under new order_uids) spread round-robin over the partitions, offsets
    counted per partition from ``start``."""
    out = []
    for i in range(count):
        uid = f"order-{seed}-{start}-{i}".encode()
        out.append(message(i % partitions, start + i // partitions, CANONICAL.replace(CANONICAL_UID, uid), uid))
    return out


def ends(messages: Sequence[Message]) -> dict[tuple[str, int], int]:
    """Per partition, the offset a complete commit names: one past its last message."""
    out: dict[tuple[str, int], int] = {}
    for m in messages:
        key = (m.topic() or "", m.partition() or 0)
        out[key] = max(out.get(key, 0), (m.offset() or 0) + 1)
    return out


def test_every_offset_is_committed_only_after_its_batch_is_stored() -> None:
    messages = orders(14)
    rig = Rig(messages)  # stores complete only when the worker waits for them: after the next fetches
    rig.run()
    assert rig.consumer.committed_offsets == ends(messages)
    assert len(rig.store.stored) == 14 and rig.counters.stats.stored == 14
    assert len(rig.consumer.commits) > 2, "one commit per batch expected, not one at the end"
    # Woken once each batch's outbox rows are committed (their events go out at once), and once to stop.
    assert rig.relay.wakes == rig.store.saves + 1
    for partition in (0, 1):  # a partition's commits only move forward
        sent = [tp.offset for commit in rig.consumer.commits for tp in commit if tp.partition == partition]
        assert sent == sorted(sent)


def test_a_commit_waits_for_a_store_still_running() -> None:
    messages = orders(8)
    rig = Rig(messages, batch_size=4)
    launched: list[int] = []

    def store_and_look() -> None:
        # Inside the store of a batch: nothing of it is stored yet, so no commit may name any of its offsets.
        launched.append(len(rig.consumer.commits))

    rig.store.during_save = store_and_look
    rig.run()
    assert launched == [0, 1], "each batch's commit came after its store, and only then"


def test_poison_is_dead_lettered_alone_and_the_rest_of_its_batch_stored() -> None:
    good = orders(4, seed=2)
    conflicting = json.loads(good[1].value() or b"")["order_uid"]
    bad = [message(0, 2, b"{not json"), message(1, 2, b'{"order_uid": "x"}', b"x")]
    messages = [*good, *bad]
    rig = Rig(messages, store=FakeStore(conflicting=frozenset({conflicting})), batch_size=10)
    rig.run()
    letters = {(d.message.partition(), d.message.offset()): d.error.reason for d in rig.dead_letters.sent}
    assert letters == {(0, 2): "invalid_json", (1, 2): "schema_violation", (1, 0): "conflict"}
    assert len(rig.store.stored) == 3
    assert rig.consumer.committed_offsets == ends(messages)
    stats = rig.counters.stats
    assert (stats.consumed, stats.stored, sum(stats.dlq.values())) == (6, 3, 3)


def test_a_transient_store_failure_is_retried_with_the_partitions_paused_then_resumed() -> None:
    messages = orders(10)
    rig = Rig(messages, store=FakeStore(failures=2), batch_size=4)
    paused_during_saves: list[set[int]] = []
    rig.store.during_save = lambda: paused_during_saves.append(set(rig.consumer.paused))
    started = rig.clock()
    rig.run()
    assert paused_during_saves[:3] == [set(), {0, 1}, {0, 1}], "retries ran with every partition paused"
    assert rig.consumer.paused == set(), "the partitions were resumed after the retry"
    assert rig.counters.stats.retries == 2
    assert rig.clock() - started >= 0.2, "the retries backed off (at least half the initial delay each)"
    # Nothing fetched while waiting was lost: every order stored, every offset committed.
    assert len(rig.store.stored) == 10 and rig.consumer.committed_offsets == ends(messages)


def test_a_revoke_completes_the_batch_being_stored_before_the_partition_goes() -> None:
    first = orders(4)  # one batch: partitions 0 and 1, offsets 0-1
    later = orders(4, seed=3, start=2)
    rig = Rig([*first, *later], batch_size=4, script=Script(revoke={2: [1]}))
    # Partition 1's rest waits for its next owner, so the topic is never drained: stop by signal instead.
    rig.consumer.script.call[40] = rig.stop.set
    rig.run()
    # The batch in flight was stored and committed for partition 1 while it was still ours ...
    assert rig.consumer.committed_offsets[("orders", 1)] == 2
    # ... and nothing of partition 1 after the revoke: its next owner reads it.
    assert {(p, o) for p, o in rig.handled() if p == 1} == {(1, 0), (1, 1)}
    assert rig.consumer.committed_offsets[("orders", 0)] == 4
    assert rig.store.saves == 2, "the revoked batch was stored once"


def _lag_series(rig: Rig) -> dict[int, float]:
    """The worker's lag gauge as it would be scraped: per partition."""
    registry = rig.counters.metrics.registry
    lag = [f for f in registry.collect() if f.name == "ordersctl_consumer_lag_messages"]
    return {int(sample.labels["partition"]): sample.value for family in lag for sample in family.samples}


@pytest.mark.parametrize("how", ["revoke", "lose"])
def test_a_partition_revoked_or_lost_takes_its_lag_series_with_it(how: str) -> None:
    # The series of a partition gone stayed behind with its last value: the partition's lag was then summed twice,
    # this worker's stale value and its new owner's, and alerts fired on a partition long since drained.
    seen: list[dict[int, float]] = []

    def report() -> None:
        rig.worker.progress.report()
        seen.append(_lag_series(rig))

    rig = Rig(orders(8), script=Script(**{how: {2: [1]}}, call={1: report, 40: lambda: rig.stop.set()}))
    rig.run()
    assert seen == [{0: 4, 1: 4}], "before the rebalance: the lag of both partitions (nothing committed yet)"
    assert set(_lag_series(rig)) == {0}, "after it: only the partition still held"


def test_an_incremental_rebalance_moves_only_the_partitions_it_names() -> None:
    # cooperative-sticky and group.protocol=consumer: a revoke takes partition 1 alone, partition 0 is fetched on,
    # and a later assignment adds partition 1 back; every message is handled once, every offset committed.
    messages = orders(12)
    rig = Rig(messages, batch_size=2, incremental=True, script=Script(revoke={3: [1]}, assign={6: [1]}))
    rig.run()
    assert [tp.partition for tp in rig.consumer.assigned] in ([0, 1], [])  # [] once the worker has left
    assert rig.handled() == {(m.partition() or 0, m.offset() or 0) for m in messages}
    assert rig.consumer.committed_offsets == ends(messages)


def test_an_eager_assignment_with_no_revoke_before_it_replaces_the_partitions_held() -> None:
    # librdkafka can serve two eager assignments in a row with no revoke between (a rejoin while one was still to
    # be served). Each is the whole assignment: partition 1, missing from the second, is another member's now, and
    # no commit of ours may name it (the coordinator checks only the generation, and would take it).
    rig = Rig(orders(8), batch_size=4, script=Script(assign={2: [0]}, call={40: lambda: rig.stop.set()}))
    foreign: list[int] = []

    def only_ours(offsets: list[TopicPartition]) -> None:
        held = {tp.partition for tp in rig.consumer.assigned}
        foreign.extend(tp.partition for tp in offsets if tp.partition not in held)
        rig.check_commit(offsets)

    rig.consumer.check_commit = only_ours
    rig.run()
    assert foreign == [], f"committed partitions no longer assigned: {foreign}"
    assert rig.consumer.committed_offsets[("orders", 0)] == 4, "partition 0, kept, is committed to its end"


def test_a_revoke_waits_for_a_stuck_store_only_so_long_and_leaves_it_uncommitted() -> None:
    rig = Rig(orders(2))
    rig.worker.revoke_wait_seconds = 0.2
    rig.consumer.assign([TopicPartition("orders", 0), TopicPartition("orders", 1)])
    stuck: NeverFuture[list[Saved[Decoded]]] = NeverFuture()  # a store blocked on a lock the revoke cannot outwait
    rig.worker._inflight.append(InFlight(Prepared(list(rig.consumer.pending)), stuck, frozenset()))
    rig.worker._on_revoke(rig.consumer, [TopicPartition("orders", 1)])
    assert len(rig.worker._inflight) == 1, "the unfinished batch is left to the main loop"
    assert rig.consumer.commits == []


def test_it_stops_when_idle_once_everything_is_committed() -> None:
    messages = orders(6)
    rig = Rig(messages, stop_when_idle=1.0)
    rig.run()
    assert rig.consumer.committed_offsets == ends(messages)
    assert 1.0 <= rig.clock() - 1000.0 <= 1.0 + 10 * MAX_WAIT


def test_idle_time_starts_over_when_partitions_are_assigned_or_lost() -> None:
    # 0d3db3c: a worker whose partitions were lost in an outage must not stop before it waited anew.
    rig = Rig(orders(2), stop_when_idle=1.0, script=Script(lose={74: [1]}, assign={82: [0, 1]}))
    rig.run()
    assigned_at = [at for kind, at in rig.consumer.rebalances if kind == "assign"][-1]
    assert assigned_at > 1000.0 + 0.5, "the scripted assignment came within the idle time it must restart"
    assert rig.clock() >= assigned_at + 1.0


@pytest.mark.parametrize("eager", [False, True])
def test_stores_complete_and_commit_in_the_order_read_however_they_finish(eager: bool) -> None:
    messages = orders(20, seed=5)
    rig = Rig(messages, batch_size=3, executor=StepExecutor(eager=eager))
    rig.run()
    assert rig.consumer.committed_offsets == ends(messages)
    assert len(rig.store.stored) == 20
