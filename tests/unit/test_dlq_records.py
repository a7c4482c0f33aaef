"""Reading a dead letter never fails: every field the tools derive from a record is read with limits, and
what cannot be read is marked as such (issue #26)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from confluent_kafka import Message

from ordersctl.dlq import format as fmt
from ordersctl.dlq.records import UNREADABLE, DeadLetterRecord
from ordersctl.output import print_json_line
from tests.fakes import UndecodableHeaders

UID = "b563feb7b2b84b6test"
DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 50_000 + b"1" + b"}" * 50_000


INVALID_JSON = ((fmt.REASON, b"invalid_json"),)


def letter(value: bytes | None, key: bytes | None = None,
           headers: Sequence[tuple[str, bytes | None]] = INVALID_JSON) -> DeadLetterRecord:  # fmt: skip
    carried: list[tuple[str, str | bytes | None]] = [*headers]
    return DeadLetterRecord.of(Message(topic="o.dlq", partition=1, offset=7, key=key, value=value, headers=carried))


def test_deep_nesting_is_unreadable_not_a_recursion_error() -> None:
    for value in (DEEP_ARRAY, DEEP_OBJECT):
        record = letter(value)
        assert record.order_uid is None
        assert "order_uid" in record.unreadable
        doc = record.as_json(payload=True)
        assert doc["order_uid"] is None and "order_uid" in doc["unreadable"]
        json.dumps(doc)


def test_the_key_still_names_the_order_when_the_value_cannot_be_read() -> None:
    record = letter(DEEP_ARRAY, key=UID.encode())
    assert record.order_uid == UID
    assert "order_uid" not in record.unreadable


def test_the_order_uid_comes_from_a_readable_value() -> None:
    assert letter(b'{"order_uid": "%s", "x": 1}' % UID.encode()).order_uid == UID
    # Duplicate keys: the last one counts, as for the consumer's own JSON parser.
    assert letter(b'{"order_uid": "nope nope", "order_uid": "%s"}' % UID.encode()).order_uid == UID


def test_numbers_beyond_every_limit_invalid_utf8_bom_nul_and_empty_values() -> None:
    hostile = [
        b'{"order_uid": "x", "n": ' + b"9" * 100_000 + b"}",
        b'{"n": 1e999999}',
        b'{"order_uid": "\xff\xfe"}',
        b"\xef\xbb\xbf{}",
        b"\x00" * 100,
        b"",
        None,
        b"\xff" * 1000,
    ]
    for value in hostile:
        record = letter(value)
        assert record.order_uid is None
        json.dumps(record.as_json(payload=True))


def test_headers_missing_duplicated_or_not_utf8() -> None:
    bare = letter(b"{}", headers=())
    assert bare.reason == "unknown" and bare.failed_at == "" and bare.replay_count == 0
    assert bare.original() == "?[?]@?"
    twice = letter(b"{}", headers=[(fmt.REASON, b"conflict"), (fmt.REASON, b"schema_violation")])
    assert twice.reason == "schema_violation"
    binary = letter(b"{}", headers=[(fmt.REASON, b"\xff\xfe\x00"), (fmt.REPLAY_COUNT, b"\xff"),
                                    (fmt.ERRORS, b"[" * 100_000), (fmt.ORIGINAL_OFFSET, b"9" * 100_000)])  # fmt: skip
    assert binary.reason == UNREADABLE and "reason" in binary.unreadable
    assert binary.replay_count == 0
    doc = binary.as_json()
    assert doc["original"]["offset"] is None
    assert isinstance(doc["errors"], str) and len(doc["errors"]) <= 1000
    json.dumps(doc)
    none_valued = letter(b"{}", headers=[(fmt.REASON, None)])
    assert none_valued.reason == ""


def test_huge_headers_are_cut_for_display_not_dropped_for_replay() -> None:
    huge = b"e" * 500_000
    record = letter(b"{}", headers=[(fmt.REASON, b"invalid_json"), (fmt.ERROR, huge), ("x-binary", b"\x00\xff" * 1000)])
    assert len(record.error) <= 1000
    assert (fmt.ERROR, huge) in record.raw_headers
    json.dumps(record.as_json())


def _strict(constant: str) -> object:
    raise ValueError(f"not JSON: {constant}")


def test_errors_that_parse_to_nan_or_infinity_stay_valid_json(capsys: pytest.CaptureFixture[str]) -> None:
    # pydantic-core reads NaN, Infinity and 1e999999 as floats that json.dumps writes as NaN/Infinity: not JSON.
    for errors in (b"NaN", b"1e999999", b"-Infinity", b'[{"field": "n", "value": 1e999999}]', b'{"a": [NaN]}'):
        record = letter(b"{}", headers=[(fmt.REASON, b"schema_violation"), (fmt.ERRORS, errors)])
        print_json_line(record.as_json(payload=True))
        line = capsys.readouterr().out
        doc = json.loads(line, parse_constant=_strict)
        assert doc["errors"] == errors.decode(), "shown as the text it is"


def test_finite_errors_are_still_parsed() -> None:
    errors = b'[{"field": "n", "value": 1.5e300, "error": "too big"}]'
    record = letter(b"{}", headers=[(fmt.ERRORS, errors)])
    assert record.as_json()["errors"] == [{"field": "n", "value": 1.5e300, "error": "too big"}]


def test_a_header_name_that_is_not_utf8_makes_the_headers_unreadable_not_an_error() -> None:
    msg = UndecodableHeaders(topic="o.dlq", partition=1, offset=7, key=UID.encode(), value=b"{}",
                             headers=[(fmt.REASON, b"invalid_json")])  # fmt: skip
    record = DeadLetterRecord.of(msg)
    assert "headers" in record.unreadable
    assert record.reason == "unknown" and record.raw_headers == [] and record.headers == {}
    assert record.order_uid == UID
    doc = json.loads(json.dumps(record.as_json(payload=True)), parse_constant=_strict)
    assert "headers" in doc["unreadable"]
