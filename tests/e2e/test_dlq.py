"""``ordersctl dlq inspect`` and ``dlq replay`` against the real broker and the consumer's own dead letters."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from ordersctl.config import Settings
from ordersctl.dlq import format as fmt
from ordersctl.domain.generator import Message as Generated
from ordersctl.domain.generator import OrderGenerator, dump
from ordersctl.errors import POISON_REASONS
from tests.helpers import create_topics, db_rows, headers, log_messages, ordersctl, read_topic, send, stored_count

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def _consume(settings: Settings, *args: str) -> dict[str, object]:
    result = ordersctl(settings, "consume", "--stop-when-idle", "2", "--json", *args, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


def _replay(settings: Settings, *args: str, **env: str) -> dict[str, object]:
    result = ordersctl(settings, "dlq", "replay", "--json", *args, timeout=120, **env)
    assert result.returncode == 0, result.stderr[-3000:]
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


def _assert_json_lines(settings: Settings, expected: Counter[tuple[str, str]]) -> None:
    """--json: one valid object per dead letter, with its origin and group, the payload only when asked."""
    as_json = ordersctl(settings, "dlq", "inspect", "--json", "--limit", "1000")
    assert as_json.returncode == 0, as_json.stderr
    records = [json.loads(line) for line in as_json.stdout.splitlines()]  # every line is valid JSON
    assert Counter((r["key"]["data"], r["reason"]) for r in records) == expected
    for r in records:
        assert r["original"]["topic"] == settings.kafka.orders_topic
        assert r["consumer_group"] == settings.kafka.group_id
        assert "payload" not in r, "payloads hold personal data: only with --payload"
    with_payload = ordersctl(settings, "dlq", "inspect", "--json", "--payload", "--limit", "1000")
    assert with_payload.returncode == 0, with_payload.stderr
    for r in map(json.loads, with_payload.stdout.splitlines()):
        assert r["payload"]["encoding"] == ("base64" if r["reason"] == "decode_error" else "utf-8")


def _assert_table(settings: Settings, expected: Counter[tuple[str, str]]) -> None:
    """The table: a row per dead letter, and the summary by reason on stderr."""
    table = ordersctl(settings, "dlq", "inspect", "--limit", "1000")
    assert table.returncode == 0, table.stderr
    for reason, count in Counter(kind for _, kind in expected.elements()).items():
        assert table.stdout.count(f" {reason} ") == count
        assert f"{reason}={count}" in table.stderr  # the summary
    assert f"{sum(expected.values())} dead letters" in table.stderr


def test_inspect_shows_exactly_the_consumers_dead_letters(settings: Settings) -> None:
    create_topics(settings)
    messages = list(OrderGenerator(seed=12).messages(300, invalid_ratio=0.15))
    expected = Counter((m.key.decode(), m.kind) for m in messages if m.kind in POISON_REASONS)
    send(settings, messages)
    _consume(settings, "--workers", "2")

    _assert_json_lines(settings, expected)
    _assert_table(settings, expected)
    only = ordersctl(settings, "dlq", "inspect", "--json", "--reason", "conflict")
    assert {json.loads(line)["reason"] for line in only.stdout.splitlines()} == {"conflict"}

    payload = ordersctl(settings, "dlq", "inspect", "--reason", "invalid_json", "--payload", "--limit", "1")
    assert payload.returncode == 0 and '"order_uid"' in payload.stdout


def test_inspect_missing_or_empty_dlq_says_so_in_one_line(settings: Settings) -> None:
    missing = ordersctl(settings, "dlq", "inspect")
    assert missing.returncode == 1
    assert log_messages(missing.stderr)[-1].startswith(f"dlq: topic {settings.kafka.dlq_topic} does not exist")
    create_topics(settings)
    empty = ordersctl(settings, "dlq", "inspect", "--json")
    assert empty.returncode == 0 and empty.stdout == ""
    assert log_messages(empty.stderr)[-1] == f"dlq: no dead letters in {settings.kafka.dlq_topic}"


def test_replay_after_relaxing_a_rule_stores_the_orders_exactly_once(settings: Settings) -> None:
    create_topics(settings)
    gen = OrderGenerator(seed=13)
    big = [gen.order(items=5) for _ in range(8)]
    small = [gen.order(items=2) for _ in range(12)]
    messages = [Generated(o["order_uid"].encode(), dump(o), "valid", o["order_uid"]) for o in big + small]
    send(settings, messages)
    first = _consume(settings, "--max-items", "3")
    assert first["dlq"] == {"too_many_items": 8} and first["stored"] == 12

    dry = _replay(settings, "--reason", "too_many_items", "--dry-run")
    assert dry["would_send"] == 8 and dry["replayed"] == 0
    assert _replay(settings, "--reason", "too_many_items")["replayed"] == 8
    second = _replay(settings, "--reason", "too_many_items")
    assert second["replayed"] == 0, "the same replay run twice must send nothing twice"

    after = _consume(settings)  # the rule is relaxed: default maximum of items
    assert after["stored"] == 8 and after["dlq"] == {}
    _assert_all_stored_once(settings, {o["order_uid"] for o in big + small}, items=8 * 5 + 12 * 2)
    # The replayed copies carry the replay count and where they came from.
    everything = read_topic(settings, settings.kafka.orders_topic, expect=28)
    replayed = [m for m in everything if headers(m).get(fmt.REPLAY_COUNT)]
    assert len(replayed) == 8
    assert all(headers(m)[fmt.REPLAY_FROM_TOPIC] == settings.kafka.dlq_topic for m in replayed)


def _assert_all_stored_once(settings: Settings, uids: set[str], items: int) -> None:
    assert stored_count(settings.postgres.dsn) == len(uids)
    assert {r[0] for r in db_rows(settings.postgres.dsn, "SELECT order_uid FROM orders")} == uids
    assert db_rows(settings.postgres.dsn, "SELECT count(*) FROM items") == [(items,)]


def test_a_replay_loop_stops_at_the_replay_limit(settings: Settings) -> None:
    create_topics(settings)
    order = OrderGenerator(seed=14).order()
    order["payment"]["amount"] += 1  # a poison message: replaying never fixes it
    send(settings, [Generated(order["order_uid"].encode(), dump(order), "rule_violation", order["order_uid"])])
    assert _consume(settings)["dlq"] == {"rule_violation": 1}
    for round_no in range(1, 4):
        assert _replay(settings, "--reason", "rule_violation")["replayed"] == 1, f"round {round_no}"
        assert _consume(settings)["dlq"] == {"rule_violation": 1}
    last = _replay(settings, "--reason", "rule_violation")
    assert last["replayed"] == 0 and last["skipped"] == {"replay limit": 1}
    dead = read_topic(settings, settings.kafka.dlq_topic, expect=4)
    assert sorted(int(headers(m).get(fmt.REPLAY_COUNT, "0")) for m in dead) == [0, 1, 2, 3]


def test_replay_a_range_to_another_topic_and_inspect_by_partition_and_since(settings: Settings) -> None:
    create_topics(settings, partitions=1)
    messages = list(OrderGenerator(seed=15).messages(40, invalid_ratio=0.5))
    send(settings, messages)
    _consume(settings)
    dead = [
        json.loads(line)
        for line in ordersctl(settings, "dlq", "inspect", "--json", "--limit", "100").stdout.splitlines()
    ]
    assert len(dead) >= 10
    window = ordersctl(settings, "dlq", "inspect", "--json", "--partition", "0", "--offset", "3", "--limit", "2")
    assert [json.loads(line)["dlq_offset"] for line in window.stdout.splitlines()] == [3, 4]
    recent = ordersctl(settings, "dlq", "inspect", "--json", "--since", "1h", "--limit", "100")
    assert len(recent.stdout.splitlines()) == len(dead)
    future = ordersctl(settings, "dlq", "inspect", "--since", "2099-01-01T00:00:00Z")
    assert future.returncode == 0 and "no dead letters" in future.stderr

    target = f"{settings.kafka.orders_topic}.quarantine"
    create = ordersctl(settings, "topics", "create", "--partitions", "1", ORDERS_KAFKA__ORDERS_TOPIC=target)
    assert create.returncode == 0, create.stderr
    moved = _replay(settings, "--partition", "0", "--from-offset", "2", "--to-offset", "5", "--to-topic", target)
    assert moved["replayed"] == 4
    copies = read_topic(settings, target, expect=4)
    assert [m.value() for m in copies] == [
        next(m for m in messages if m.key.decode() == d["key"]["data"] and m.kind == d["reason"]).value
        for d in dead[2:6]
    ]
    assert (
        _replay(settings, "--partition", "0", "--from-offset", "2", "--to-offset", "5", "--to-topic", target)[
            "replayed"
        ]
        == 0
    )


def test_replay_limit_counts_what_is_sent_even_when_delivery_reports_come_late(settings: Settings) -> None:
    """--limit N sends at most N, although the broker confirms them only later (linger.ms raised), and the
    progress commit stops at the last one sent: a second --limit N sends exactly the next N."""
    create_topics(settings, partitions=1)
    poison = [Generated(f"poison-{n}".encode(), b"{not json", "invalid_json", f"poison-{n}") for n in range(10)]
    send(settings, poison)
    assert _consume(settings)["dlq"] == {"invalid_json": 10}
    target = f"{settings.kafka.orders_topic}.replayed"
    create = ordersctl(settings, "topics", "create", "--partitions", "1", ORDERS_KAFKA__ORDERS_TOPIC=target)
    assert create.returncode == 0, create.stderr
    late = {"ORDERS_KAFKA__EXTRA": json.dumps({"linger.ms": "1000"})}
    first = _replay(settings, "--limit", "3", "--to-topic", target, **late)
    assert first["replayed"] == 3
    second = _replay(settings, "--limit", "3", "--to-topic", target, **late)
    assert second["replayed"] == 3
    copies = read_topic(settings, target, expect=6, timeout=10)
    assert [m.key() for m in copies] == [m.key for m in poison[:6]], "exactly the first six, in order, once each"
    dry = _replay(settings, "--limit", "2", "--to-topic", target, "--dry-run")
    assert dry["would_send"] == 2 and dry["replayed"] == 0
