"""Hostile messages for the orders topic: what a broken or malicious producer can put there.

A seeded corpus names every kind the DLQ tools must survive (issue #26); Hypothesis strategies draw the rest.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from hypothesis import strategies as st

from ordersctl.dlq import format as fmt
from ordersctl.domain.generator import OrderGenerator

# The broker's message.max.bytes (Kafka's default, the stack's too): a record, with its key and headers, of up
# to this size is accepted. The largest hostile value leaves room for its key and a few headers.
BROKER_MAX_MESSAGE = 1_048_588
LARGEST_VALUE = BROKER_MAX_MESSAGE - 8 * 1024

HeaderList = list[tuple[str, bytes | None]]
NOT_UTF8: bytes = b"\xff\xfe"
# No record here has a header NAME that is not UTF-8: confluent-kafka cannot send one. It sends a bytes name as
# its str() (b"\xff\xfe" arrives as "b'\\xff\\xfe'") and crashes the process (SIGSEGV, 2.16.1) on a str name
# holding a lone surrogate. The reading side, headers() raising UnicodeDecodeError, is covered by
# tests/unit/test_dlq_records.py.


@dataclass(frozen=True)
class Hostile:
    """One message as produced: its kind (for failure messages) and the order_uid it may carry."""

    kind: str
    key: bytes | None
    value: bytes | None
    headers: HeaderList
    uid: str | None = None


def fresh_uid() -> str:
    return f"fz{uuid.uuid4().hex[:18]}"


def valid_order(uid: str) -> dict[str, object]:
    doc: dict[str, object] = json.loads(next(iter(OrderGenerator(seed=7).messages(1))).value)
    doc["order_uid"] = uid
    return doc


def deep_array(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_object(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def order_variant(kind: str) -> Hostile:
    """A real order, made hostile one way; carries a fresh order_uid so the run can tell whether it was stored."""
    uid = fresh_uid()
    text = json.dumps(valid_order(uid))
    raw = text.encode()
    values = {
        "bom": b"\xef\xbb\xbf" + raw,
        "nul_in_a_field": json.dumps(valid_order(uid) | {"customer_id": "a\u0000b"}).encode(),
        "nul_after": raw + b"\x00",
        "duplicate_keys": raw[:-1] + b', "order_uid": "' + uid.encode() + b'"}',
        "duplicate_conflicting_keys": raw[:-1] + b', "order_uid": "other one"}',
        "huge_number": raw[:-1] + b', "n": ' + b"9" * 5000 + b"}",
        "float_beyond_range": raw[:-1] + b', "n": 1e999999}',
        "valid": raw,
    }
    return Hostile(kind, uid.encode(), values[kind], [], uid)


ORDER_VARIANTS = ("bom", "nul_in_a_field", "nul_after", "duplicate_keys", "duplicate_conflicting_keys",
                  "huge_number", "float_beyond_range", "valid")  # fmt: skip


def corpus() -> list[Hostile]:
    """One message of every kind the issue lists: the seeded examples that stay in the tests."""
    spoofed: HeaderList = [(fmt.REASON, b"\xff\xfe"), (fmt.REPLAY_COUNT, b"9" * 5000), (fmt.ERRORS, b"[" * 50_000)]
    return [
        Hostile("arbitrary_bytes", b"k1", bytes(range(256)) * 4, []),
        Hostile("invalid_utf8", None, b'{"order_uid": "\xff\xfe\xfd"}', []),
        Hostile("nul", b"\x00", b"\x00" * 64, []),
        Hostile("empty_value", b"k2", b"", []),
        Hostile("null_value", b"k3", None, []),
        Hostile("null_key_and_value", None, None, []),
        Hostile("deep_array", None, deep_array(100_000), []),
        Hostile("deep_object", None, deep_object(100_000), []),
        Hostile("number_of_100000_digits", None, b"9" * 100_000, []),
        Hostile("largest_value", b"k4", b'"' + b"a" * (LARGEST_VALUE - 2) + b'"', []),
        Hostile("huge_binary_header", b"k5", b"{}", [("x-blob", b"\xff\x00" * 50_000), ("x-empty", None)]),
        Hostile("spoofed_dlq_headers", b"k6", b"{}", spoofed),
        Hostile("many_headers", b"k7", b"[]", [(f"h{i}", b"v") for i in range(200)]),
        *(order_variant(kind) for kind in ORDER_VARIANTS),
    ]


@dataclass(frozen=True)
class Letter:
    """A record written straight into the DLQ, past the consumer (a foreign tool, an older version, a bug), and
    what ``dlq inspect --json`` must say of it: these fields, with these values."""

    record: Hostile
    expect: dict[str, object]


def dlq_records() -> list[Letter]:
    """Dead letters the consumer would never write: headers missing, duplicated, not UTF-8, huge, not finite."""
    reason = (fmt.REASON, b"schema_violation")
    huge = b'[{"field": "x", "error": "' + b"e" * 900_000 + b'"}]'
    uid = fresh_uid()
    return [
        Letter(Hostile("dlq_no_headers", None, b'{"order_uid": 1}', []), {"reason": "unknown", "unreadable": []}),
        Letter(Hostile("dlq_reason_not_utf8", uid.encode(), b"\xff", [(fmt.REASON, NOT_UTF8)], uid),
               {"reason": "unreadable", "unreadable": ["reason"], "order_uid": uid}),
        Letter(Hostile("dlq_reason_twice", b"k", b"{}", [(fmt.REASON, b"conflict"), reason]),
               {"reason": "schema_violation"}),
        Letter(Hostile("dlq_errors_huge", b"k", b"{}", [reason, (fmt.ERRORS, huge)]), {"errors": huge[:1000].decode()}),
        Letter(Hostile("dlq_errors_nan", b"k", b"{}", [reason, (fmt.ERRORS, b"NaN")]), {"errors": "NaN"}),
        Letter(Hostile("dlq_errors_infinite", b"k", b"{}", [reason, (fmt.ERRORS, b"[1e999999]")]),
               {"errors": "[1e999999]"}),
    ]  # fmt: skip


_names = st.one_of(
    st.sampled_from([fmt.REASON, fmt.REPLAY_COUNT, fmt.ORIGINAL_OFFSET, fmt.CONNECT_TOPIC, "traceparent"]),
    st.text(st.characters(codec="utf-8"), max_size=30),
)
_small_headers = st.lists(st.tuples(_names, st.one_of(st.none(), st.binary(max_size=512))), max_size=6)
_keys = st.one_of(st.none(), st.just(b""), st.binary(max_size=300), st.builds(lambda: fresh_uid().encode()))
_values = st.one_of(
    st.none(),
    st.binary(max_size=4096),
    st.binary(max_size=64).map(lambda b: b"\xff\xfe" + b),
    st.text(st.characters(codec="utf-8"), max_size=200).map(str.encode),
    st.integers(10, 200_000).map(deep_array),
    st.integers(10, 100_000).map(deep_object),
    st.integers(4000, 200_000).map(lambda n: b'{"n": ' + b"9" * n + b"}"),
    st.sampled_from([b"1e999999", b"NaN", b"-Infinity", b"\xef\xbb\xbf{}", b"{}" * 1000, b'{"order_uid": null}']),
    st.integers(100_000, LARGEST_VALUE).map(lambda n: b"x" * n),
)


@st.composite
def hostile_messages(draw: st.DrawFn) -> Hostile:
    """Any of the above, or a real order made hostile; large values get small headers (the record must fit)."""
    if draw(st.integers(0, 4)) == 0:
        return order_variant(draw(st.sampled_from(ORDER_VARIANTS)))
    value = draw(_values)
    headers = draw(_small_headers)
    if value is None or len(value) < 100_000:
        headers += draw(st.lists(st.tuples(_names, st.binary(min_size=10_000, max_size=200_000)), max_size=1))
    return Hostile("drawn", draw(_keys), value, headers)
