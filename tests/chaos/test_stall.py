"""The stall after a partition heals, from the run's samples: until the stored count grew again."""

from __future__ import annotations

from chaos.run_files import Fault
from chaos.stall import healed_at, partition_stalls, stall_seconds

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
    crash = Fault("pg-crash", "postgres", 100.0, 120.0)
    stalls = partition_stalls([crash, PARTITION], _samples((119, 500, 10), (122, 510, 5)))
    assert stalls == [{"kind": "pg-partition", "target": PARTITION.target, "seconds": 20.0, "stall": 2.0}]


def test_a_stall_counts_from_when_every_overlapping_fault_has_ended() -> None:
    # A broker of another lane paused from 115 to 130, and a worker killed from 128 to 135: stores were not
    # expected back at 120, when the partition healed, but at 135.
    pause = Fault("broker-pause", "kafka 2", 115.0, 130.0)
    kill = Fault("worker-kill", "w1", 128.0, 135.0)
    faults = [PARTITION, pause, kill, Fault("pg-crash", "postgres", 10.0, 20.0)]
    assert healed_at(PARTITION, faults) == 135.0
    samples = _samples((119, 500, 10), (134, 500, 40), (136, 520, 30))
    (stall,) = partition_stalls(faults, samples)
    assert stall["stall"] == 1.0, "measured from 135, not from the partition's own end (16 s)"
    assert healed_at(PARTITION, [PARTITION]) == 120.0
