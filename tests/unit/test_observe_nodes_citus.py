"""`status` on Citus: the nodes are shown, and one the coordinator cannot reach makes the status unhealthy."""

from __future__ import annotations

import dataclasses

from rich.console import Console

from ordersctl.adapters.citus import CitusNode
from ordersctl.cli.observe_views import status_view
from ordersctl.observe.nodes_citus import CitusNodes
from tests.unit.test_observe_status import _status

NODES = (CitusNode("coordinator", "c", 5432, True, 0), CitusNode("worker", "w1", 5432, True, 16),
         CitusNode("worker", "w2", 5432, True, 16))  # fmt: skip


def _shown(nodes: CitusNodes) -> tuple[int, list[str], str]:
    status = dataclasses.replace(_status(), citus=nodes)
    console = Console(record=True, width=200)
    console.print(status_view(status))
    assert status.as_json()["citus_nodes"] == nodes.as_json()
    return status.exit_code(), status.problems(), console.export_text()


def test_every_node_is_shown_and_all_up_is_healthy() -> None:
    code, problems, text = _shown(CitusNodes(NODES))
    assert code == 0 and problems == []
    assert "citus coordinator c:5432" in text and "citus worker      w2:5432" in text and "up, 16 shards" in text


def test_a_node_the_coordinator_cannot_reach_is_unhealthy() -> None:
    code, problems, text = _shown(CitusNodes((*NODES[:2], dataclasses.replace(NODES[2], up=False))))
    assert code == 1
    assert problems == ["Citus worker w2:5432 unreachable from the coordinator"]
    assert "UNREACHABLE" in text


def test_plain_postgresql_shows_no_nodes() -> None:
    assert "citus_nodes" not in _status().as_json()
