"""A Citus worker node killed (-9) while consume runs, started again 20 s later: nothing lost, nothing stored
twice, every event published, and the consumer rides it out. The Citus lane only (make test-citus)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from ordersctl.config import Settings
from tests import citus_nodes
from tests.e2e.ingest import assert_exactly_once, valid_messages
from tests.helpers import ROOT, create_topics, finish, read_topic, send, start_ordersctl, stored_count, wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(not citus_nodes.on_citus(), reason="runs against the Citus stack (make test-citus)"),
]
STACK = str(ROOT / "scripts" / "stack")
DOWN_SECONDS = 20


def _citus(command: str, node: int) -> None:
    env = os.environ | {"ORDERS_STACK_PG": "citus"}
    subprocess.run([STACK, command, str(node)], check=True, timeout=180, env=env)


def test_a_worker_node_killed_during_consume_loses_and_duplicates_nothing(settings: Settings, tmp_path: Path) -> None:
    create_topics(settings)
    messages = valid_messages(3000, seed=61)

    def feed() -> None:  # orders keep arriving before, while and after the node is down
        for i in range(0, len(messages), 100):
            send(settings, messages[i : i + 100])
            time.sleep(0.8)

    feeder = threading.Thread(target=feed)
    log = tmp_path / "consume.log"
    proc = start_ordersctl(settings, "consume", "--workers", "2", "--batch-size", "100", "--stop-when-idle", "15",
                           "--json", log=log)  # fmt: skip
    feeder.start()
    try:
        wait_for(lambda: stored_count(settings.postgres.dsn) > 200, 90, "first orders stored")
        _citus("citus-kill", 1)
        time.sleep(DOWN_SECONDS)
        _citus("citus-start", 1)
        feeder.join(timeout=120)
        out = finish(proc, log, 240)
    finally:
        _citus("citus-start", 1)
        feeder.join(timeout=120)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, log.read_text()[-3000:]
    summary = json.loads(out)
    assert summary["retries"] > 0, "the node's loss was not noticed: was it really killed?"
    assert summary["restarts"] == 0, "the consumer must ride out the node's loss, not be restarted"
    assert summary["dlq"] == {}
    assert_exactly_once(settings, messages)
    events = read_topic(settings, settings.kafka.events_topic, expect=len(messages))
    assert {(m.key() or b"").decode() for m in events} == {m.order_uid for m in messages}
