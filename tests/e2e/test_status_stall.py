"""``ordersctl status`` on a pipeline that has stopped while its group still has members: the committed offsets
of the lagging partitions do not move for --stall-seconds, and status says so with exit 1."""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from ordersctl.config import Settings
from ordersctl.domain.generator import OrderGenerator
from ordersctl.observe.sources import Sources
from ordersctl.observe.status import PipelineStatus, Thresholds, read_status
from ordersctl.runtime import Runtime
from tests.helpers import create_topics, finish, ordersctl, send, start_ordersctl, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]
STALL_SECONDS = 3


def _read(settings: Settings) -> PipelineStatus:
    rt = Runtime(settings)
    try:
        return read_status(Sources.from_runtime(rt), datetime.now(UTC) - timedelta(hours=1), Thresholds())
    finally:
        rt.close()


def test_a_group_whose_offsets_do_not_move_is_stalled_exit_1(settings: Settings, tmp_path: Path) -> None:
    create_topics(settings)
    messages = list(OrderGenerator(seed=71).messages(40))
    send(settings, messages[:20])
    log = tmp_path / "consume.log"
    proc = start_ordersctl(settings, "consume", "--workers", "1", log=log)
    try:

        def caught_up() -> bool:
            orders = _read(settings).orders
            return orders is not None and len(orders.group.members) == 1 and orders.total_lag == 0

        wait_for(caught_up, 90, "one member with every order committed")
        # The worker goes on heartbeating (a member) but cannot store: the orders table is locked.
        with psycopg.connect(settings.postgres.dsn) as blocker:
            blocker.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
            send(settings, messages[20:])
            started = time.monotonic()
            result = ordersctl(settings, "status", "--json", "--stall-seconds", str(STALL_SECONDS), timeout=120)
            took = time.monotonic() - started
            blocker.rollback()
        doc = json.loads(result.stdout)
        assert result.returncode == 1, (doc["problems"], result.stderr[-2000:])
        assert doc["orders"]["total_lag"] == 20 and len(doc["orders"]["group"]["members"]) == 1
        assert doc["stall"]["no_members"] is False and doc["stall"]["stall_seconds"] == STALL_SECONDS
        stalled = doc["stall"]["stalled"]
        assert sum(p["lag"] for p in stalled) == 20 and all(p["unmoved_seconds"] >= STALL_SECONDS for p in stalled)
        assert [p for p in doc["problems"] if p.startswith("stalled: partition(s) ")], doc["problems"]
        assert "waiting up to" in result.stderr, "the wait is said on stderr"
        assert took < STALL_SECONDS + 30, took

        # The table free again, the worker stores the 20 and the same check is healthy.
        wait_for(caught_up, 90, "the backlog to be consumed")
        healthy = ordersctl(settings, "status", "--json", "--stall-seconds", str(STALL_SECONDS), timeout=120)
        assert healthy.returncode == 0, healthy.stdout + healthy.stderr[-2000:]
        proc.send_signal(signal.SIGTERM)
        finish(proc, log, 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
