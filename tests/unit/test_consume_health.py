"""consume's /readyz and /livez verdicts, from the workers' reports (a fake clock: no workers, no sleeping)."""

from __future__ import annotations

from typing import Any

from ordersctl.pipeline.health import HealthBoard, HealthServer
from tests.fakes import FakeClock
from tests.helpers import http_get


def report(
    consumed: int = 0, retries: int = 0, lag: int = 0, joined: bool = True, postgres: bool = True
) -> dict[str, Any]:
    return {"consumed": consumed, "retries": retries, "lag": lag, "joined": joined, "postgres": postgres}


def test_ready_once_every_worker_alive_has_joined_the_group_and_reached_postgres() -> None:
    board = HealthBoard(2, stall_seconds=60, clock=FakeClock())
    alive = {0: 100, 1: 101}
    assert not board.ready(alive)[0], "no report yet"
    board.reported(0, 100, report())
    board.reported(1, 101, report(joined=False))
    ok, body = board.ready(alive)
    assert not ok and body["workers"]["1"]["joined"] is False
    board.reported(1, 101, report(postgres=False))
    assert not board.ready(alive)[0]
    board.reported(1, 101, report())
    assert board.ready(alive)[0]
    # Worker 1 died and was restarted: its last report says nothing of the new process.
    assert not board.ready({0: 100, 1: 102})[0]
    board.reported(1, 102, report())
    assert board.ready({0: 100, 1: 102})[0]


def test_live_fails_for_a_worker_with_lag_whose_counts_stand_still_for_stall_seconds() -> None:
    clock = FakeClock()
    board = HealthBoard(2, stall_seconds=60, clock=clock)
    alive = {0: 100, 1: 101}
    board.reported(0, 100, report(consumed=10, lag=500))
    board.reported(1, 101, report(consumed=5, lag=0))
    clock.advance(59)
    board.reported(1, 101, report(consumed=5, lag=0))  # idle, nothing to do: never stalled
    assert board.live(alive)[0]
    clock.advance(1)  # worker 0 sent nothing more (hung, or stopped): judged on its last report
    ok, body = board.live(alive)
    assert not ok and body["stalled"] == [0]
    assert body["workers"]["0"]["lag"] == 500


def test_a_worker_that_handles_messages_or_retries_an_outage_is_live() -> None:
    clock = FakeClock()
    board = HealthBoard(1, stall_seconds=60, clock=clock)
    for step in range(1, 10):
        clock.advance(30)
        board.reported(0, 100, report(consumed=10, retries=step, lag=500))  # PostgreSQL down: retrying
        assert board.live({0: 100})[0]
    assert board.live({})[0], "a worker not alive (being restarted) is not stalled"


def test_the_endpoints_answer_200_or_503_with_the_verdicts_body() -> None:
    verdicts = {"/livez": lambda: (True, {"status": "ok"}), "/readyz": lambda: (False, {"status": "failing"})}
    server = HealthServer("127.0.0.1", 0, verdicts)
    server.start()
    try:
        assert http_get(server.address[1], "/livez") == (200, {"status": "ok"})
        assert http_get(server.address[1], "/readyz") == (503, {"status": "failing"})
        assert http_get(server.address[1], "/nope")[0] == 404
    finally:
        server.close()
