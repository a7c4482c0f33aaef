"""A rolling restart of two consume processes under load, with incremental rebalancing: cooperative-sticky, and
the consumer group protocol of KIP-848 (``group.protocol=consumer``). Nothing lost, nothing stored twice, one
event per order (#21)."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from subprocess import Popen

import pytest

from ordersctl.config import Settings
from ordersctl.domain.generator import Message as Generated
from tests.e2e.ingest import assert_exactly_once, valid_messages
from tests.helpers import create_topics, finish, send, start_ordersctl, stored_count, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

PROTOCOLS = {
    "cooperative-sticky": {"partition.assignment.strategy": "cooperative-sticky"},
    "consumer": {"group.protocol": "consumer"},
}


def _consumer(settings: Settings, log: Path, extra: dict[str, str], idle: str) -> Popen[bytes]:
    return start_ordersctl(settings, "consume", "--workers", "1", "--batch-size", "50", "--stop-when-idle", idle,
                           "--json", log=log, ORDERS_KAFKA__EXTRA=json.dumps(extra))  # fmt: skip


def _restart(proc: Popen[bytes], log: Path) -> None:
    """SIGTERM, as a platform's rolling update sends: the process finishes its batch, commits and leaves."""
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text()


def _produce_steadily(settings: Settings, messages: list[Generated], seconds: float) -> threading.Thread:
    def run() -> None:
        chunks = 20
        size = len(messages) // chunks
        for i in range(chunks):
            send(settings, messages[i * size : (i + 1) * size])
            time.sleep(seconds / chunks)

    thread = threading.Thread(target=run, name="producer")
    thread.start()
    return thread


@pytest.mark.parametrize("protocol", sorted(PROTOCOLS))
def test_a_rolling_restart_under_load_loses_and_duplicates_nothing(
    settings: Settings, tmp_path: Path, protocol: str
) -> None:
    create_topics(settings, partitions=4)
    messages = valid_messages(4000, seed=71)
    extra = PROTOCOLS[protocol]
    logs = [tmp_path / f"consume-{name}.log" for name in ("a", "b", "a2", "b2")]
    producer = _produce_steadily(settings, messages, 16)
    a = _consumer(settings, logs[0], extra, "30")
    b = _consumer(settings, logs[1], extra, "30")
    procs = [a, b]
    try:
        wait_for(lambda: stored_count(settings.postgres.dsn) > 400, 120, "both consumers to be under way")
        _restart(a, logs[0])
        procs.append(a2 := _consumer(settings, logs[2], extra, "6"))
        wait_for(lambda: stored_count(settings.postgres.dsn) > 1600, 120, "the restarted consumer to take part")
        _restart(b, logs[1])
        procs.append(b2 := _consumer(settings, logs[3], extra, "6"))
        producer.join(timeout=120)
        summaries = [json.loads(finish(p, log, 240)) for p, log in ((a2, logs[2]), (b2, logs[3]))]
    finally:
        producer.join(timeout=120)
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, log in zip(procs[2:], logs[2:], strict=True):
        assert p.returncode == 0, log.read_text()[-3000:]
    assert all(s["dlq"] == {} and s["restarts"] == 0 for s in summaries), summaries
    assert_exactly_once(settings, messages)
