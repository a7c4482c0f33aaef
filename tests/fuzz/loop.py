"""The whole loop over hostile messages: produce -> consume -> DLQ, then every tool that reads what it made.

Each tool must end with a documented exit code, within a time bound, with no traceback; each HTTP answer is 2xx
or 4xx; the consumer dead-letters each message exactly once or stores it, and never stalls a partition.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import falcon.testing
from confluent_kafka import Producer

from ordersctl.api.app import create_app
from ordersctl.config import Settings
from ordersctl.dlq import format as fmt
from ordersctl.runtime import Runtime
from tests.fuzz.hostile import BROKER_MAX_MESSAGE, Hostile
from tests.helpers import create_topics, db_rows, headers, ordersctl, read_topic

TOOL_SECONDS = 60.0  # a tool that takes longer over a few dozen dead letters has a bug, not a slow day


def produce(settings: Settings, messages: list[Hostile]) -> list[tuple[int, int]]:
    """Send as a foreign producer would (the broker's largest record allowed); the (partition, offset) of each."""
    producer = Producer({"bootstrap.servers": settings.kafka.bootstrap_servers,
                         "message.max.bytes": BROKER_MAX_MESSAGE, "enable.idempotence": True})  # fmt: skip
    placed: dict[int, tuple[int, int]] = {}
    errors: list[str] = []

    def report(index: int) -> Any:
        def done(err: Any, msg: Any) -> None:
            if err is not None:
                errors.append(f"{messages[index].kind}: {err}")
            else:
                placed[index] = (msg.partition(), msg.offset())

        return done

    for i, m in enumerate(messages):
        carried: list[tuple[str, str | bytes | None]] = [*m.headers]
        producer.produce(settings.kafka.orders_topic, m.value, m.key, headers=carried or None, on_delivery=report(i))
        producer.poll(0)
    assert producer.flush(60) == 0 and not errors, errors
    return [placed[i] for i in range(len(messages))]


def tool(settings: Settings, *args: str, codes: tuple[int, ...] = (0,)) -> str:
    """Run one ordersctl command; its stdout. Fails on a traceback, an undocumented exit code or a slow run."""
    started = time.monotonic()
    result = ordersctl(settings, *args, timeout=TOOL_SECONDS + 60)
    took = time.monotonic() - started
    where = f"ordersctl {' '.join(args)}"
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, f"{where}:\n{result.stderr[-4000:]}"
    assert result.returncode in codes, f"{where} exited {result.returncode}:\n{result.stderr[-3000:]}"
    assert took < TOOL_SECONDS, f"{where} took {took:.1f} s"
    return result.stdout


def run_loop(settings: Settings, messages: list[Hostile], scratch: Path) -> None:
    create_topics(settings, partitions=2)
    placed = produce(settings, messages)
    tool(settings, "consume", "--stop-when-idle", "2", "--json")

    dead = read_topic(settings, settings.kafka.dlq_topic)
    origins = Counter((headers(m)[fmt.ORIGINAL_PARTITION], headers(m)[fmt.ORIGINAL_OFFSET]) for m in dead)
    assert max(origins.values(), default=1) == 1, f"dead-lettered more than once: {origins.most_common(3)}"
    uids = [m.uid for m in messages if m.uid]
    stored = {row[0] for row in db_rows(settings.postgres.dsn, "SELECT order_uid FROM orders")} & set(uids)
    for m, (partition, offset) in zip(messages, placed, strict=True):
        lettered = (str(partition), str(offset)) in origins
        assert lettered != (m.uid in stored), f"{m.kind}: dead-lettered {lettered}, stored {m.uid in stored}"

    _inspect(settings, len(dead))
    _replay(settings, len(dead))
    for uid in [*uids[:3], "no-such-order-anywhere"]:
        trace = json.loads(tool(settings, "trace", uid, "--json", codes=(0, 1, 5)))
        assert trace["order_uid"] == uid
    status = json.loads(tool(settings, "status", "--json", codes=(0, 1, 4)))
    assert status["dlq"]["retained"] == len(dead)
    _api(settings, len(dead))
    _produce_file(settings, messages, scratch)


def _inspect(settings: Settings, count: int) -> None:
    table_err = tool(settings, "dlq", "inspect", "--limit", "1000")
    assert table_err is not None
    lines = tool(settings, "dlq", "inspect", "--json", "--payload", "--limit", "1000").splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == count
    for r in records:
        assert isinstance(r["unreadable"], list)
        assert r["order_uid"] is None or "order_uid" not in r["unreadable"]
    tool(settings, "dlq", "inspect", "--payload", "--limit", "1000")


def _replay(settings: Settings, count: int) -> None:
    dry = json.loads(tool(settings, "dlq", "replay", "--dry-run", "--json"))
    skipped = sum(dry["skipped"].values())
    assert dry["would_send"] + skipped == count, dry
    target = f"{settings.kafka.orders_topic}.replayed"
    missing = tool(settings, "dlq", "replay", "--to-topic", target, "--json", codes=(1,))
    assert missing == "", "nothing is sent to a topic that does not exist"
    create_topics(settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"orders_topic": target})}),
                  partitions=2, dlq=False, events=False)  # fmt: skip
    done = json.loads(tool(settings, "dlq", "replay", "--to-topic", target, "--json"))
    assert done["replayed"] == dry["would_send"] and done["failed"] == 0, done
    again = json.loads(tool(settings, "dlq", "replay", "--to-topic", target, "--json"))
    assert again["replayed"] == 0, "a replay run twice sends nothing twice"


def _api(settings: Settings, count: int) -> None:
    rt = Runtime(settings)
    try:
        client = falcon.testing.TestClient(create_app(rt).app)
        for path in ("/pipeline/dead-letters", "/pipeline/status"):
            answer = client.simulate_get(path)
            assert 200 <= answer.status_code < 500, f"{path}: {answer.status_code} {answer.text[:500]}"
        items = client.simulate_get("/pipeline/dead-letters").json["items"]
        assert len(items) == min(count, 20)
    finally:
        rt.close()


def _produce_file(settings: Settings, messages: list[Hostile], scratch: Path) -> None:
    """``produce --file`` reads each line as a message; hostile lines are sent or counted as failed, never raised."""
    lines = [m.value for m in messages if m.value and b"\n" not in m.value and m.value.strip()]
    path = scratch / "hostile.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    target = f"{settings.kafka.orders_topic}.file"
    create_topics(settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"orders_topic": target})}),
                  partitions=1, dlq=False, events=False)  # fmt: skip
    out = tool(settings, "produce", "--file", str(path), "--topic", target, "--json", codes=(0, 1))
    summary = json.loads(out)
    assert summary["sent"] + summary["failed"] == len(lines), summary


def the_other_commands(settings: Settings) -> None:
    """The commands that do not read the DLQ, run against the same hostile stack: none prints a traceback."""
    for args in (("config", "show"), ("topics", "list"), ("db", "migrate", "--status"), ("cache", "warm", "--json")):
        tool(settings, *args)
