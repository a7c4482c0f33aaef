"""The chaos harness's own checker, on a real pipeline run without faults: it passes a clean run and reports a
deliberately broken one (an order deleted afterwards, an extra event id, a 404) with a non-zero exit."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
import pytest
from confluent_kafka import Producer

from chaos.__main__ import main as chaos_main
from chaos.orders import messages
from chaos.run_files import RunFiles, RunSpec
from chaos.topics import committed
from ordersctl.config import Settings
from ordersctl.domain.generator import Message as Generated
from tests.helpers import create_topics, ordersctl, send

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
SEED, COUNT, POISON_EVERY = 5, 400, 10


@pytest.fixture
def clean_run(settings: Settings, tmp_path: Path) -> RunFiles:
    create_topics(settings, partitions=2)
    produced = list(messages(SEED, COUNT, POISON_EVERY))
    send(settings, [Generated(m.uid.encode(), m.value, m.kind, m.uid) for m in produced])
    done = ordersctl(settings, "consume", "--stop-when-idle", "2", "--json", timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    k = settings.kafka
    files = RunFiles(tmp_path / "run")
    files.write_spec(RunSpec(SEED, COUNT, POISON_EVERY, settings.postgres.dsn, k.bootstrap_servers, k.orders_topic,
                             k.dlq_topic, k.events_topic, k.group_id, 2))  # fmt: skip
    files.append(
        "offsets", {"t": time.time(), "offsets": committed(k.bootstrap_servers, k.group_id, k.orders_topic, 2)}
    )
    files.append("schedule", {"planned": 0, "lanes": {}})  # a run without faults: the checker alone is tested
    valid = next(m.uid for m in produced if m.kind == "valid")
    files.append("reads", {"t": time.time(), "uid": valid, "status": 200, "cache": "db"})
    return files


def _check(files: RunFiles, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, bool]]:
    code = chaos_main(["check", str(files.folder), "--json"])
    report = json.loads(capsys.readouterr().out)
    return code, {line["name"]: line["ok"] for line in report["lines"]}


def test_a_clean_run_passes_every_line(clean_run: RunFiles, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _check(clean_run, capsys)
    assert lines and all(lines.values()), lines
    assert code == 0


def test_an_order_deleted_after_the_run_is_reported_lost(
    clean_run: RunFiles, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    with psycopg.connect(settings.postgres.dsn) as conn:
        conn.execute("DELETE FROM orders WHERE order_uid = (SELECT min(order_uid) FROM orders)")
    code, lines = _check(clean_run, capsys)
    assert code == 1
    assert not lines["stored set equals the produced valid set"]
    assert not lines["committed offsets never point past stored rows"], "the lost order's offset was committed"


def test_an_extra_event_id_and_a_404_are_reported(
    clean_run: RunFiles, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    uid = next(m.uid for m in messages(SEED, COUNT, POISON_EVERY) if m.kind == "valid")
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers})
    producer.produce(settings.kafka.events_topic, key=uid.encode(), value=b"{}", headers=[("event-id", b"999999")])
    assert producer.flush(10) == 0
    clean_run.append("reads", {"t": time.time(), "uid": uid, "status": 404, "cache": None})
    code, lines = _check(clean_run, capsys)
    assert code == 1
    assert not lines["all events of one order carry one event id"]
    assert not lines["the API answered every read of a stored order"]
    assert lines["stored set equals the produced valid set"]
