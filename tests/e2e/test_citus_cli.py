"""On the Citus stack: `db migrate` distributed the tables and `--status` says how; `status` shows the nodes and
a worker node that is down. The Citus lane only (make test-citus)."""

from __future__ import annotations

import os
import subprocess

import pytest

from ordersctl.config import Settings
from tests import citus_nodes
from tests.e2e.test_status_trace import _json
from tests.helpers import ROOT, create_topics

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.integration,
    pytest.mark.skipif(not citus_nodes.on_citus(), reason="runs against the Citus stack (make test-citus)"),
]
STACK = str(ROOT / "scripts" / "stack")


def _citus(command: str, node: int) -> None:
    env = os.environ | {"ORDERS_STACK_PG": "citus"}
    subprocess.run([STACK, command, str(node)], check=True, timeout=180, env=env)


def test_migrate_status_shows_every_table_distributed_by_order_uid_and_co_located(settings: Settings) -> None:
    code, doc = _json(settings, "db", "migrate")  # already migrated by the fixture: nothing to do
    assert code == 0 and doc["applied"] == [] and "distributed" not in doc
    code, doc = _json(settings, "db", "migrate", "--status")
    assert code == 0
    tables = {t["table"]: t for t in doc["tables"]}
    assert set(tables) == {"orders", "deliveries", "payments", "items", "outbox"}
    assert {(t["kind"], t["column"]) for t in tables.values()} == {("distributed", "order_uid")}
    assert len({t["colocation"] for t in tables.values()}) == 1, "the tables must share one co-location group"


def test_status_shows_the_nodes_and_a_worker_node_that_is_down(settings: Settings) -> None:
    create_topics(settings)
    code, doc = _json(settings, "status")
    assert code == 0, doc["problems"]
    nodes = doc["citus_nodes"]
    assert [n["role"] for n in nodes] == ["coordinator", "worker", "worker"]
    assert all(n["up"] for n in nodes) and all(n["shards"] > 0 for n in nodes[1:])
    down = nodes[2]["address"]
    _citus("citus-stop", 2)
    try:
        code, doc = _json(settings, "status")
    finally:
        _citus("citus-start", 2)
    assert code == 1
    assert [n["up"] for n in doc["citus_nodes"]] == [True, True, False]
    assert f"Citus worker {down} unreachable from the coordinator" in doc["problems"]
