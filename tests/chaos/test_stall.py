"""The stall after a partition heals, from the run's samples: until the stored count grew again."""

from __future__ import annotations

from typing import Any

from chaos.run_files import Fault
from chaos.stall import STALL_BOUND_SECONDS, healed_at, partition_stalls, stall_bound, stall_seconds

PARTITION = Fault("pg-partition", "postgres :57329", 100.0, 120.0)


def _samples(*rows: tuple[float, int, int]) -> list[dict[str, float | int]]:
    return [{"t": t, "stored": stored, "lag": lag} for t, stored, lag in rows]


def test_the_stall_ends_when_stores_grow_again_whatever_the_lag_does() -> None:
    # the lag may go on growing meanwhile: another lane's fault (a broker paused) holds some partitions up
    samples = _samples((119, 500, 900), (121, 500, 950), (126, 500, 1000), (127, 600, 1100), (128, 900, 700))
    assert stall_seconds(PARTITION, samples) == 7.0


def test_nothing_waiting_at_the_heal_is_no_stall_and_no_resume_is_none() -> None:
    assert stall_seconds(PARTITION, _samples((119, 500, 0), (121, 500, 0))) == 0.0
    assert stall_seconds(PARTITION, _samples((119, 500, 10), (121, 500, 20), (140, 500, 30))) is None


def test_only_partitions_are_measured() -> None:
    crash = Fault("pg-crash", "postgres", 10.0, 20.0)
    stalls = partition_stalls([crash, PARTITION], _samples((119, 500, 10), (122, 510, 5)))
    assert stalls == [{"kind": "pg-partition", "target": PARTITION.target, "seconds": 20.0, "stall": 2.0}]


def test_a_stall_counts_from_when_every_overlapping_fault_has_ended() -> None:
    # A broker of another lane paused from 115 to 130, and a worker killed from 128 to 135: stores were not
    # expected back at 120, when the partition healed, but at 135.
    pause = Fault("broker-pause", "kafka 2", 115.0, 130.0)
    kill = Fault("worker-kill", "w1", 128.0, 135.0)
    faults = [PARTITION, pause, kill, Fault("pg-crash", "postgres", 10.0, 20.0)]
    assert healed_at(PARTITION, faults) == 130.0, "the pause was in progress at the heal"
    samples = _samples((119, 500, 10), (134, 500, 40), (175, 520, 30))
    (stall,) = partition_stalls(faults, samples)
    assert stall["stall"] == 20.0, "from 130 (45 s), less the pause's recovery (to 155) and the kill's (to 150)"
    assert healed_at(PARTITION, [PARTITION]) == 120.0


def test_faults_that_begin_after_the_heal_are_taken_out_of_the_stall() -> None:
    # The short run's case: the Redis partition healed at 120 with nothing else in progress, then a worker was
    # cut off (121-134) and a broker lost (125-170): the group rebalanced without its coordinator and no store
    # ran until 150. Only 120-121 is the partition's.
    cut = Fault("worker-partition", "w1", 121.0, 134.0)
    lost = Fault("relay-broker-loss", "kafka 3", 125.0, 170.0)
    samples = _samples((119, 500, 10), (149, 500, 4000), (150, 700, 3800))
    stall = partition_stalls([PARTITION, cut, lost], samples)[0]
    assert stall["target"] == PARTITION.target and stall["stall"] == 1.0
    (alone,) = partition_stalls([PARTITION], samples)
    assert alone["stall"] == 30.0, "without other faults the whole wait is the partition's"


def test_a_lag_unknown_at_the_heal_is_judged_by_the_first_lag_read_after_it() -> None:
    # A broker partitioned at the end of the run: every order already stored, the sampler could not read the
    # group's offsets until it healed, then read lag 0 with the same count.
    samples: list[dict[str, Any]] = [{"t": 110.0, "stored": 500, "lag": None}, {"t": 125.0, "stored": 500, "lag": 0}]
    assert stall_seconds(PARTITION, samples) == 0.0
    waiting: list[dict[str, Any]] = [{"t": 110.0, "stored": 500, "lag": None}, {"t": 125.0, "stored": 500, "lag": 30}]
    assert stall_seconds(PARTITION, waiting) is None


def test_a_dense_schedule_judges_each_partition_by_its_own_heal_not_the_runs_last_fault() -> None:
    # Three lanes busy all run long: a chain through the overlapping faults reached the end of the last one
    # (300), and every partition of a real run was given the same stall (the run's final one, 1.67 s each).
    chain = [Fault("broker-pause", "kafka 2", 110.0, 130.0), Fault("worker-kill", "w1", 125.0, 200.0),
             Fault("pg-crash", "postgres", 190.0, 300.0)]  # fmt: skip
    assert healed_at(PARTITION, [PARTITION, *chain]) == 130.0
    samples = _samples((129, 500, 10), (159, 500, 40), (160, 520, 30), (299, 900, 10), (302, 950, 0))
    (stall,) = partition_stalls([PARTITION, *chain], samples)
    assert stall["stall"] == 0.0, "130-160 is the worker kill's (in progress from 125)"
    (alone,) = partition_stalls([PARTITION, chain[0]], samples)
    assert alone["stall"] == 5.0, "130-160 less the pause's recovery (to 155), not the run's last stall"


def test_a_brokers_fault_may_also_wait_out_the_groups_session() -> None:
    assert stall_bound("pg-partition") == stall_bound("redis-partition") == STALL_BOUND_SECONDS == 15.0
    assert stall_bound("worker-partition") == stall_bound("worker-kill") == stall_bound("pg-crash") == 15.0
    for kind in ("broker-partition", "leader-kill", "broker-pause", "relay-broker-loss"):
        assert stall_bound(kind) == 25.0, kind


def test_a_fault_that_ended_just_before_the_heal_is_allowed_its_recovery() -> None:
    # A CI run of the short form: a Redis partition (which stops no store: the worker does not use Redis) healed
    # with nothing else in progress; a broker killed in the other lane had come back 2 s before, and stores
    # resumed 15.4 s after the heal, over the 15 s bound: the broker's recovery, not the partition's.
    redis = Fault("redis-partition", "redis :63799", 100.0, 120.0)
    kill = Fault("leader-kill", "broker 1", 95.0, 118.0)
    samples = _samples((117, 500, 10), (119, 500, 10), (135, 500, 40), (135.4, 700, 30))
    (stall,) = partition_stalls([redis, kill], samples)
    assert stall["stall"] == 0.0, "within the kill's recovery (stores had not resumed since it ended)"
    (alone,) = partition_stalls([redis], samples)
    assert alone["stall"] > stall_bound("redis-partition"), "without the kill the whole wait is the partition's"
    # an older fault's recovery ends: what stalls past it is the partition's again
    early = Fault("leader-kill", "broker 1", 70.0, 90.0)
    late = _samples((119, 500, 10), (139, 500, 40), (140, 700, 30))
    (after,) = partition_stalls([redis, early], late)
    assert after["stall"] == 20.0, "the kill's recovery ended at 115, before the heal"


def test_a_faults_recovery_ends_when_stores_resume_after_it() -> None:
    # A broker killed 95-110, stores back at 112: a stall after the partition's heal at 120 is not the kill's,
    # although its bound (25 s) would reach 135.
    kill = Fault("leader-kill", "broker 1", 95.0, 110.0)
    samples = _samples((109, 500, 10), (112, 600, 10), (119, 600, 10), (139, 600, 40), (140, 700, 30))
    (stall,) = partition_stalls([PARTITION, kill], samples)
    assert stall["stall"] == 20.0
