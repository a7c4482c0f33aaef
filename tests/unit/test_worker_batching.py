"""How a worker forms its batches (group commit), on fakes whose clock moves by hand: orders arrive at set times
and a store takes a set time (tests/fakes.py TimedExecutor), so what is asserted is when each batch starts."""

from __future__ import annotations

import itertools

from ordersctl.pipeline.worker import STORE_CHECK_SECONDS
from tests.unit.test_worker import MAX_WAIT, Rig, ends, orders

SLACK = 1e-6  # the fake clock's float sums


def test_a_lone_order_is_stored_the_moment_it_arrives_not_after_max_wait() -> None:
    lone = orders(1)
    rig = Rig([], batch_size=500, arrivals=[(0.31, lone[0])], store_seconds=0.003)
    rig.run()
    [(started, size)] = rig.timed.launched
    assert size == 1
    assert started - 1000.31 <= SLACK, f"stored {1000 * (started - 1000.31):.1f} ms after it arrived"
    # Committed once its store is done, within a look at the store.
    assert rig.committed_at[0] - (started + 0.003) <= STORE_CHECK_SECONDS + SLACK
    assert rig.consumer.committed_offsets == ends(lone) and rig.relay.wakes >= 1


def test_while_a_store_runs_the_next_batch_fills_until_it_is_done() -> None:
    # 2,000 orders/s for 60 ms, each store 10 ms: the first order goes alone, and each later batch holds what
    # came while the store before it ran, starting as soon as that store is done (not after max_wait).
    trickle = orders(120)
    rig = Rig([], batch_size=500, arrivals=[(0.1 + i * 0.0005, m) for i, m in enumerate(trickle)], store_seconds=0.010)
    rig.run()
    sizes = [size for _, size in rig.timed.launched]
    assert sizes[0] == 1 and sum(sizes) == 120
    assert all(15 <= size <= 22 for size in sizes[1:-1]), sizes
    starts = [at for at, _ in rig.timed.launched]
    for previous, start in itertools.pairwise(starts):
        assert previous + 0.010 <= start + SLACK, "a batch started while the store before it still ran"
        assert start - (previous + 0.010) <= STORE_CHECK_SECONDS + SLACK, "a batch waited after the store was done"
    assert rig.consumer.committed_offsets == ends(trickle)


def test_a_backlog_still_fills_whole_batches() -> None:
    backlog = orders(40)
    rig = Rig(backlog, batch_size=8, store_seconds=0.010)
    rig.run()
    assert [size for _, size in rig.timed.launched] == [8] * 5
    assert rig.consumer.committed_offsets == ends(backlog)


def test_max_wait_bounds_the_filling_while_a_slow_store_runs() -> None:
    # A store of 200 ms: the next batch stops filling after max_wait and goes to the second store in flight.
    trickle = orders(100)
    rig = Rig([], batch_size=500, arrivals=[(0.1 + i * 0.001, m) for i, m in enumerate(trickle)], store_seconds=0.200)
    rig.run()
    (first, one), (second, more) = rig.timed.launched[:2]
    assert one == 1 and abs(second - first - MAX_WAIT) <= STORE_CHECK_SECONDS
    assert 49 <= more <= 51
    assert rig.consumer.committed_offsets == ends(trickle)
