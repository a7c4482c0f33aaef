"""What the ingest tests share: consume until idle, and the check that every order was stored exactly once."""

from __future__ import annotations

import json

from ordersctl.config import Settings
from ordersctl.domain.generator import Message as Generated
from ordersctl.domain.generator import OrderGenerator
from tests.helpers import db_rows, headers, ordersctl, read_topic


def consume_until_idle(settings: Settings, *args: str, timeout: float = 240) -> dict[str, object]:
    result = ordersctl(settings, "consume", "--stop-when-idle", "3", "--json", *args, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    summary: dict[str, object] = json.loads(result.stdout)
    return summary


def valid_messages(count: int, seed: int) -> list[Generated]:
    return list(OrderGenerator(seed=seed).messages(count))


def assert_exactly_once(settings: Settings, messages: list[Generated]) -> None:
    dsn = settings.postgres.dsn
    uids = {m.order_uid for m in messages}
    assert {r[0] for r in db_rows(dsn, "SELECT order_uid FROM orders")} == uids
    expected_items = sum(len(json.loads(m.value)["items"]) for m in messages)
    assert db_rows(dsn, "SELECT count(*) FROM items") == [(expected_items,)]
    # One event per order: published (distinct event-ids on the topic) or still pending in the outbox.
    pending = {(str(uid), int(i)) for uid, i in db_rows(dsn, "SELECT order_uid, id FROM outbox")}
    events = read_topic(settings, settings.kafka.events_topic, expect=len(uids) - len(pending))
    published = {((m.key() or b"").decode(), int(headers(m)["event-id"])) for m in events}
    assert len(published | pending) == len(uids)
    assert {uid for uid, _ in published | pending} == uids
