"""Retrying with backoff while the partitions are paused and the consumer keeps polling (pipeline/retry_policy.py)."""

from __future__ import annotations

import functools
import random
import threading

import pytest

from ordersctl.config import PipelineSettings
from ordersctl.errors import TransientError
from ordersctl.pipeline.counters import PipelineCounters
from ordersctl.pipeline.fetch_buffer import FetchBuffer
from ordersctl.pipeline.retry_policy import Abandoned, RetryPolicy, once
from tests.fake_consumer import FakeConsumer
from tests.fakes import FakeClock, message

SETTINGS = PipelineSettings(retry_initial_seconds=0.2, retry_max_seconds=1.0)


def _policy(
    consumer: FakeConsumer, stop: threading.Event | None = None
) -> tuple[RetryPolicy, FetchBuffer, PipelineCounters, list[float]]:
    buffer = FetchBuffer(consumer, batch_size=10)
    counters = PipelineCounters()
    waits: list[float] = []  # the clock each time the policy ran its while-waiting hook
    policy = RetryPolicy(
        buffer, stop or threading.Event(), SETTINGS, counters, lambda: waits.append(consumer.clock()), consumer.clock
    )
    return policy, buffer, counters, waits


def _failing(times: int, paused: list[set[int]], consumer: FakeConsumer) -> object:
    calls = {"n": 0}

    def attempt() -> str:
        paused.append(set(consumer.paused))
        calls["n"] += 1
        if calls["n"] <= times:
            raise TransientError("deadlock detected")
        return "done"

    return attempt


def test_a_transient_failure_is_retried_paused_polling_and_resumed_after() -> None:
    clock = FakeClock()
    consumer = FakeConsumer(clock, [message(1, 0, b"{}")])
    consumer.in_transit = [message(0, 0, b"{}")]
    consumer.assign([*consumer.initial])
    policy, buffer, counters, waits = _policy(consumer)
    paused: list[set[int]] = []
    assert policy.until_done("store", _failing(2, paused, consumer)) == "done"  # type: ignore[arg-type]
    assert paused == [set(), {0, 1}, {0, 1}], "retried with every partition paused"
    assert consumer.paused == set(), "resumed once done"
    assert counters.stats.retries == 2
    assert waits, "progress was reported while waiting"
    # Backoff: at least half the initial delay per retry, at most the cap, measured on the fake clock.
    assert 2 * 0.1 <= clock() - 1000.0 <= 2 * 1.0 + 0.5
    # A message already on its way when the partitions paused is kept for the next batch, not dropped; nothing
    # else was fetched while paused.
    assert [m.partition() for m in buffer.take()] == [0]
    assert [m.partition() for m in consumer.pending] == [1]


def test_shutdown_during_a_retry_abandons_the_operation_and_resumes() -> None:
    clock = FakeClock()
    consumer = FakeConsumer(clock)
    consumer.assign([*consumer.initial])
    stop = threading.Event()
    policy, _, counters, _ = _policy(consumer, stop)
    stop.set()
    with pytest.raises(Abandoned):
        policy.until_done("commit", _failing(1, [], consumer))  # type: ignore[arg-type]
    assert counters.stats.retries == 0 and consumer.paused == set()


def test_once_is_a_single_attempt() -> None:
    clock = FakeClock()
    consumer = FakeConsumer(clock)
    with pytest.raises(TransientError):
        once("dlq", _failing(1, [], consumer))  # type: ignore[arg-type]
    assert once("dlq", lambda: 7) == 7


def test_an_attempt_that_succeeds_seeds_no_random_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    # A worker runs until_done for every store and every commit: seeding a new generator each time (the OS's
    # entropy, a 2.5 KB state) cost tens of microseconds a batch, for a jitter only a failure uses.
    seeded: list[object] = []
    original = random.Random.seed

    def counting(self: random.Random, *args: object, **kwargs: object) -> None:
        seeded.append(args)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(random.Random, "seed", counting)
    policy, _, _, _ = _policy(FakeConsumer(FakeClock()))
    assert [policy.until_done("store", functools.partial(int, n)) for n in range(3)] == [0, 1, 2]
    assert seeded == []
