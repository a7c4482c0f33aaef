"""Tracing through real ``ordersctl consume`` processes: each worker builds its tracing from the settings it was
started with, continues an orders message's traceparent, sends its spans before it exits (the console exporter:
log records on stderr) and the events carry the order spans' traceparents on."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ordersctl.config import Settings
from tests.helpers import create_topics, headers, ordersctl, read_topic
from tests.integration.test_tracing import PARENT_ID, TRACE_ID, key, send_orders

pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]


def test_consume_workers_continue_a_traceparent_and_carry_it_on_to_the_events(settings: Settings) -> None:
    create_topics(settings, partitions=2)
    uids = send_orders(settings, 20)
    done = ordersctl(settings, "consume", "--workers", "2", "--stop-when-idle", "3", "--json",
                     ORDERS_OTEL__ENABLED="true", ORDERS_OTEL__EXPORTER="console", timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout)["stored"] == 20
    records = [json.loads(line) for line in done.stderr.splitlines() if '"msg": "span"' in line]
    spans: list[dict[str, Any]] = [record["span"] for record in records]
    orders = {span["attributes"]["ordersctl.order_uid"]: span for span in spans if span["name"] == "consume.order"}
    assert set(orders) == set(uids), "every order has its span, sent before its worker exited"
    first = orders[uids[0]]
    assert (first["context"]["trace_id"], first["parent_id"]) == (f"0x{TRACE_ID}", f"0x{PARENT_ID}")
    assert {span["name"] for span in spans} == {"consume.batch", "consume.order", "consume.store"}

    events = {key(msg): headers(msg)["traceparent"] for msg in read_topic(settings, settings.kafka.events_topic, 20)}
    for uid, span in orders.items():
        trace_id, span_id = (span["context"][name].removeprefix("0x") for name in ("trace_id", "span_id"))
        assert events[uid].split("-")[1:3] == [trace_id, span_id]
