"""The whole loop over hostile messages: produce -> consume -> DLQ, plus dead letters written straight into the
DLQ, then every tool that reads what they made.

Each tool must end with a documented exit code, within a time bound, with no traceback; each HTTP answer is 2xx
or 4xx; the consumer dead-letters each message exactly once or stores it, and never stalls a partition.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import falcon.testing
from confluent_kafka import Producer

from ordersctl.api.app import create_app
from ordersctl.config import Settings
from ordersctl.dlq import format as fmt
from ordersctl.observe.trace_model import EXIT_DEAD_LETTERED, EXIT_NOT_STORED, EXIT_STORED
from ordersctl.runtime import Runtime
from tests.fuzz.hostile import BROKER_MAX_MESSAGE, Hostile, Letter, dlq_records
from tests.helpers import create_topics, db_rows, headers, ordersctl, read_topic

TOOL_SECONDS = 60.0  # a tool that takes longer over a few dozen dead letters has a bug, not a slow day
TRACE_EXIT = {"stored": EXIT_STORED, "dead_lettered": EXIT_DEAD_LETTERED}  # any other verdict: EXIT_NOT_STORED
STATUS_EXITS = (0, 1, 4, 6)  # status --help: healthy, broken, lag, degraded
# The seeded kinds without a key whose value cannot be read: nothing names their order.
NAMELESS = {"deep_array", "deep_object", "number_of_100000_digits", "invalid_utf8"}


def produce(settings: Settings, messages: list[Hostile], topic: str | None = None) -> list[tuple[int, int]]:
    """Send as a foreign producer would (the broker's largest record allowed), to the orders topic unless told;
    the (partition, offset) of each."""
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
        producer.produce(topic or settings.kafka.orders_topic, m.value, m.key, headers=carried or None,
                         on_delivery=report(i))  # fmt: skip
        producer.poll(0)
    assert producer.flush(60) == 0 and not errors, errors
    return [placed[i] for i in range(len(messages))]


def tool(settings: Settings, *args: str, codes: tuple[int, ...] = (0,)) -> str:
    """Run one ordersctl command; its stdout. Fails on a traceback, an undocumented exit code or a slow run."""
    return ran(settings, *args, codes=codes).stdout


def ran(settings: Settings, *args: str, codes: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    """``tool``, with the exit code."""
    started = time.monotonic()
    result = ordersctl(settings, *args, timeout=TOOL_SECONDS + 60)
    took = time.monotonic() - started
    where = f"ordersctl {' '.join(args)}"
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, f"{where}:\n{result.stderr[-4000:]}"
    assert result.returncode in codes, f"{where} exited {result.returncode}:\n{result.stderr[-3000:]}"
    assert took < TOOL_SECONDS, f"{where} took {took:.1f} s"
    return result


def run_loop(settings: Settings, messages: list[Hostile], scratch: Path) -> None:
    create_topics(settings, partitions=2)
    placed = produce(settings, messages)
    tool(settings, "consume", "--stop-when-idle", "2", "--json")

    dead = read_topic(settings, settings.kafka.dlq_topic)
    origins = Counter((headers(m)[fmt.ORIGINAL_PARTITION], headers(m)[fmt.ORIGINAL_OFFSET]) for m in dead)
    assert max(origins.values(), default=1) == 1, f"dead-lettered more than once: {origins.most_common(3)}"
    uids = [m.uid for m in messages if m.uid]
    stored = {row[0] for row in db_rows(settings.postgres.dsn, "SELECT order_uid FROM orders")} & set(uids)
    lettered: dict[tuple[int, int], Hostile] = {}
    for m, (partition, offset) in zip(messages, placed, strict=True):
        is_lettered = (str(partition), str(offset)) in origins
        assert is_lettered != (m.uid in stored), f"{m.kind}: dead-lettered {is_lettered}, stored {m.uid in stored}"
        if is_lettered:
            lettered[partition, offset] = m

    # Then what the consumer would never write, straight into the DLQ: the tools must read that too.
    letters = dlq_records()
    written = produce(settings, [letter.record for letter in letters], topic=settings.kafka.dlq_topic)
    count = len(dead) + len(letters)
    _inspect(settings, count, lettered, dict(zip(written, letters, strict=True)))
    _replay(settings, count)
    named = [m.uid for m in [*messages, *(x.record for x in letters)] if m.uid]
    for uid in [*named[:3], named[-1]]:  # the last: only in the DLQ, its reason not UTF-8
        _trace(settings, uid, "stored" if uid in stored else "dead_lettered")
    _trace(settings, "no-such-order-anywhere", "not_found")
    _status(settings, count)
    _api(settings, count)
    _produce_file(settings, messages, scratch)


def _inspect(settings: Settings, count: int, lettered: dict[tuple[int, int], Hostile],
             written: dict[tuple[int, int], Letter]) -> None:  # fmt: skip
    """``--json``: one strict JSON object per dead letter, the unreadable fields marked; the table shows them."""
    lines = tool(settings, "dlq", "inspect", "--json", "--payload", "--limit", "1000").splitlines()
    records = [json.loads(line, parse_constant=_not_json) for line in lines]
    assert len(records) == count
    for r in records:
        _check_record(r, lettered, written)
    seen = {(r["dlq_partition"], r["dlq_offset"]) for r in records}
    assert set(written) <= seen, "each record written straight into the DLQ is read back"

    table = tool(settings, "dlq", "inspect", "--limit", "1000")
    nameless = sum("order_uid" in r["unreadable"] for r in records)
    assert _column(table, "order_uid").count("unreadable") == nameless, table[-3000:]
    tool(settings, "dlq", "inspect", "--payload", "--limit", "1000")


def _check_record(r: dict[str, Any], lettered: dict[tuple[int, int], Hostile],
                  written: dict[tuple[int, int], Letter]) -> None:  # fmt: skip
    """One record of ``dlq inspect --json``: its unreadable fields marked, as its hostile original or the letter
    written straight into the DLQ says they must be."""
    assert isinstance(r["unreadable"], list)
    assert r["order_uid"] is None or "order_uid" not in r["unreadable"]
    original = lettered.get((r["original"]["partition"], r["original"]["offset"]))
    if original is not None and original.kind in NAMELESS:
        assert "order_uid" in r["unreadable"], f"{original.kind}: {r['unreadable']}"
    letter = written.get((r["dlq_partition"], r["dlq_offset"]))
    if letter is not None:
        shown = {k: r[k] for k in letter.expect}
        assert shown == letter.expect, f"{letter.record.kind}: {shown}"


def _not_json(constant: str) -> Any:
    raise AssertionError(f"{constant} is not JSON")


def _column(table: str, name: str) -> list[str]:
    """The cells of one column of a Rich table as printed: the header row's cells are split by ┃, the others' by
    │; a row that wraps continues on the next lines, with empty cells where a column (an id: one word) does not.
    Counted from the right: the cells on the left (reason, error) may hold a │ of the message's own."""
    lines = table.splitlines()
    names = [cell.strip() for cell in lines[1].split("┃")]
    back = len(names) - names.index(name)
    return [line.split("│")[-back].strip() for line in lines if "│" in line]


def _trace(settings: Settings, uid: str, verdict: str) -> None:
    """Every source read (no ``unread``), the verdict expected, and the exit code that goes with it."""
    code = TRACE_EXIT.get(verdict, EXIT_NOT_STORED)
    as_json = ran(settings, "trace", uid, "--json", codes=(code,))
    doc = json.loads(as_json.stdout, parse_constant=_not_json)
    assert (doc["order_uid"], doc["verdict"], doc["exit_code"]) == (uid, verdict, code), doc
    assert doc["unread"] == {}, doc["unread"]
    table = tool(settings, "trace", uid, codes=(code,))
    assert f"trace {uid}: {verdict} (exit {code})" in table, table[-2000:]


def _status(settings: Settings, count: int) -> None:
    as_json = ran(settings, "status", "--json", codes=STATUS_EXITS)
    status = json.loads(as_json.stdout, parse_constant=_not_json)
    assert status["dlq"]["retained"] == count
    assert status["exit_code"] == as_json.returncode
    table = ran(settings, "status", codes=STATUS_EXITS)
    assert f"(exit {table.returncode})" in table.stdout, table.stdout[-2000:]
    assert f": {count} held," in table.stdout, table.stdout[-2000:]


def _replay(settings: Settings, count: int) -> None:
    dry = json.loads(tool(settings, "dlq", "replay", "--dry-run", "--json"))
    skipped = sum(dry["skipped"].values())
    assert dry["would_send"] + skipped == count, dry
    target = f"{settings.kafka.orders_topic}.replayed"
    missing = tool(settings, "dlq", "replay", "--to-topic", target, "--json", codes=(1,))
    assert missing == "", "nothing is sent to a topic that does not exist"
    create_topics(settings.model_copy(update={"kafka": settings.kafka.model_copy(update={"orders_topic": target})}),
                  partitions=2, dlq=False, events=False)  # fmt: skip
    # Records written straight into the DLQ name no original topic: only a replay to a topic sends them.
    dry_to = json.loads(tool(settings, "dlq", "replay", "--dry-run", "--to-topic", target, "--json"))
    assert dry_to["would_send"] + sum(dry_to["skipped"].values()) == count, dry_to
    done = json.loads(tool(settings, "dlq", "replay", "--to-topic", target, "--json"))
    assert done["replayed"] == dry_to["would_send"] and done["failed"] == 0, done
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
