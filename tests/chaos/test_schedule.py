"""Which faults a run schedules against which PostgreSQL (--pg), and what the Citus and HA kinds do to the stack.
No stack needed: the stack's commands are recorded, not run."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from chaos.__main__ import main as chaos_main
from chaos.checker import _pg_down
from chaos.controls import Controls
from chaos.faults import KINDS, LANES, Injector, Timing, lanes, postgres_ports, schedule
from chaos.processes import Fleet
from chaos.report import human, run_kinds
from chaos.run_files import Fault, RunFiles

PG_KINDS = {"pg-crash", "pg-partition"}


class RecordedControls(Controls):
    """The stack's commands noted instead of run."""

    calls: list[tuple[str, int | None]]

    def __init__(self) -> None:
        super().__init__()
        object.__setattr__(self, "calls", [])

    def run(self, action: str, node: int | None = None, timeout: float = 180) -> None:
        self.calls.append((action, node))


def _kinds(plan: dict[str, list[str]]) -> Counter[str]:
    return Counter(kind for kinds in plan.values() for kind in kinds)


def test_the_plain_stack_keeps_every_kind_it_had() -> None:
    assert lanes() == LANES
    assert _kinds(schedule(3, 2)) == Counter(dict.fromkeys(KINDS, 2))
    assert schedule(3, 2) == schedule(3, 2, "plain"), "the same seed, the same plan"


@pytest.mark.parametrize(("pg", "own"), [("citus", "citus-worker-kill"), ("ha", "ha-primary-kill")])
def test_another_postgres_swaps_the_plain_servers_faults_for_its_own(pg: str, own: str) -> None:
    plan = schedule(3, 2, pg)
    kinds = _kinds(plan)
    assert not PG_KINDS & set(kinds), "no fault aimed at the plain PostgreSQL, which the run does not use"
    assert kinds[own] == 2
    assert set(plan["infrastructure"]) == {"redis-restart", "redis-partition", own}
    assert {lane: set(k) for lane, k in plan.items() if lane != "infrastructure"} == {
        lane: set(k) for lane, k in LANES.items() if lane != "infrastructure"
    }


def test_an_unknown_postgres_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        chaos_main(["run", "--out", str(tmp_path), "--pg", "oracle"])
    assert "invalid choice: 'oracle'" in capsys.readouterr().err


def _injector(controls: Controls, tmp_path: Path, seed: int) -> Injector:
    timing = Timing(citus_down=0.0, ha_down=0.0)
    return Injector(controls, Fleet({}, tmp_path), "127.0.0.1:1", ("o", "e"), timing, random.Random(seed))


def test_a_citus_worker_kill_kills_a_worker_node_and_starts_the_same_one_again(tmp_path: Path) -> None:
    killed = set()
    for seed in range(8):
        controls = RecordedControls()
        fault = _injector(controls, tmp_path, seed).run("citus-worker-kill")
        calls = controls.calls
        assert [action for action, _ in calls] == ["citus_kill", "citus_start"]
        assert calls[0][1] == calls[1][1] in (1, 2), "a worker node, never the coordinator (0)"
        assert fault.target == f"citus worker {calls[0][1]}" and fault.end >= fault.start
        killed.add(calls[0][1])
    assert killed == {1, 2}


def test_an_ha_primary_kill_crashes_the_primary_then_heals_the_cluster(tmp_path: Path) -> None:
    controls = RecordedControls()
    fault = _injector(controls, tmp_path, 1).run("ha-primary-kill")
    assert controls.calls == [("ha_kill_primary", None), ("ha_heal", None)]
    assert fault.kind == "ha-primary-kill"


def test_the_default_controls_act_on_the_citus_and_ha_stacks() -> None:
    controls = Controls()
    assert controls.citus_kill.startswith("env ORDERS_STACK_PG=citus ") and controls.citus_kill.endswith(
        "scripts/stack citus-kill {node}"
    )
    assert controls.citus_start.endswith("scripts/stack citus-start {node}")
    assert controls.ha_kill_primary.startswith("env ORDERS_STACK_PG=ha ")
    assert controls.ha_kill_primary.endswith("scripts/stack ha-crash-primary")


def test_serve_may_answer_503_while_a_citus_worker_node_is_down() -> None:
    faults = [Fault("citus-worker-kill", "citus worker 1", 100.0, 120.0)]
    assert _pg_down(110.0, faults) and _pg_down(130.0, faults)  # and within the grace after it
    assert not _pg_down(90.0, faults) and not _pg_down(140.0, faults)
    assert not _pg_down(110.0, [Fault("redis-restart", "redis", 100.0, 120.0)])


def test_the_report_lists_the_kinds_of_the_runs_schedule(tmp_path: Path) -> None:
    files = RunFiles(tmp_path)
    files.start_afresh()
    files.append("schedule", {"planned": 9, "lanes": schedule(3, 1, "citus")})
    kinds = run_kinds(files)
    assert "citus-worker-kill" in kinds and not PG_KINDS & set(kinds)
    assert len(kinds) == 11


def test_the_postgres_ports_of_one_server_and_of_a_multi_host_dsn() -> None:
    assert postgres_ports("postgresql://u@127.0.0.1:55431/orders_chaos") == (55431,)
    ha = "postgresql://u@127.0.0.1:56431,127.0.0.1:56432/orders_chaos?target_session_attrs=read-write"
    assert postgres_ports(ha) == (56431, 56432)
    assert postgres_ports("postgresql://u@db/orders") == (5432,)


def test_the_report_shows_each_citus_or_ha_fault_with_its_target() -> None:
    target = "postgres primary (a node took writes 21.0 s after the kill)"
    summary = {"ok": True, "seed": 3, "figures": {}, "faults": {"ha-primary-kill": 1},
               "kinds": ["ha-primary-kill"], "recovery_seconds": {"median": None}, "lines": [],
               "pg_faults": [("ha-primary-kill", target)]}  # fmt: skip
    assert f"  ha-primary-kill on {target}" in human(summary).splitlines()
