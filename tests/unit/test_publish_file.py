"""``produce --file`` over hostile lines (issue #26): every line that is not blank is read without raising and
sent as it is, keyed by its order_uid only when it is a readable order; each is counted as sent or failed."""

from __future__ import annotations

import json
from pathlib import Path

from ordersctl.domain.generator import OrderGenerator
from ordersctl.pipeline.publish import messages_from_file, publish
from tests.fake_producer import TIMED_OUT, FakeProducer

ORDER = next(iter(OrderGenerator(seed=3).messages(1)))
UID = json.loads(ORDER.value)["order_uid"]

HOSTILE = {
    "deep_array": b"[" * 100_000 + b"]" * 100_000,
    "deep_object": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "number_of_100000_digits": b"9" * 100_000,
    "order_with_such_a_number": b'{"order_uid": "' + UID.encode() + b'", "n": ' + b"9" * 100_000 + b"}",
    "invalid_utf8": b'{"order_uid": "\xff\xfe\xfd"}',
    "bom": b"\xef\xbb\xbf" + ORDER.value,
    "nul": b"\x00" * 16,
    "order_then_nul": ORDER.value + b"\x00",
    "order": ORDER.value,
}
# Blank lines are not messages: skipped, neither sent nor failed.
BLANK = (b"", b"   \t", b"\r")


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "hostile.jsonl"
    lines = [*HOSTILE.values()]
    for i, blank in enumerate(BLANK):
        lines.insert(2 * i + 1, blank)
    path.write_bytes(b"\n".join(lines) + b"\r\n")
    return path


def test_every_hostile_line_is_read_as_it_is_and_keyed_only_when_it_is_a_readable_order(tmp_path: Path) -> None:
    messages = list(messages_from_file(_file(tmp_path)))
    assert [m.value for m in messages] == list(HOSTILE.values())
    keyed = {kind for kind, m in zip(HOSTILE, messages, strict=True) if m.key}
    # A number past the parser's range makes the whole line unreadable: sent unkeyed, the consumer dead-letters it.
    assert keyed == {"order"}
    assert all(m.key == UID.encode() and m.order_uid == UID for m in messages if m.key)
    assert {m.kind for m in messages} == {"file"}


def test_each_line_is_counted_as_sent_or_failed(tmp_path: Path) -> None:
    path = _file(tmp_path)
    producer = FakeProducer()
    sent = publish(producer, "orders", messages_from_file(path), timeout=5)
    assert (sent.sent, sent.failed) == (len(HOSTILE), 0)
    assert [p["value"] for p in producer.produced] == list(HOSTILE.values())
    assert [p["key"] for p in producer.produced].count(None) == len(HOSTILE) - 1, "an unkeyed line goes without a key"

    failing = publish(FakeProducer(deliver=TIMED_OUT), "orders", messages_from_file(path), timeout=5)
    assert (failing.sent, failing.failed) == (0, len(HOSTILE))
