"""Tracing (ordersctl/tracing.py, ordersctl/adapters/otel.py) with the SDK's in-memory exporter: the worker's spans
on fakes, serve's span per request, the settings, and nothing of OpenTelemetry loaded while it is off.

The consume -> outbox -> events path against the real stack: tests/integration/test_tracing.py."""

from __future__ import annotations

import dataclasses
import logging
import subprocess
import sys
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import falcon.testing
import pytest
from confluent_kafka import Message
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from ordersctl.adapters import otel
from ordersctl.adapters.otel import OtelTracing
from ordersctl.api.app import create_app
from ordersctl.config import ApiSettings, Settings, load_settings
from ordersctl.errors import ConfigError
from ordersctl.logs import JsonFormatter
from ordersctl.runtime import Runtime
from ordersctl.settings_otel import OtelSettings
from ordersctl.tracing import NO_TRACING, Tracing
from tests.conftest import ROOT
from tests.fakes import UndecodableHeaders, message
from tests.helpers import log_messages
from tests.unit.test_worker import Rig, orders

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"


def in_memory() -> tuple[OtelTracing, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    return OtelTracing.from_settings(OtelSettings(enabled=True), SimpleSpanProcessor(exporter)), exporter


def named(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def attrs(span: ReadableSpan) -> Mapping[str, Any]:
    return span.attributes or {}


def traced_rig(messages: list[Message], tracing: Tracing) -> Rig:
    rig = Rig(messages, batch_size=10)
    rig.worker.ports = dataclasses.replace(rig.worker.ports, tracing=tracing)
    return rig


def test_a_traceparent_on_an_orders_message_continues_into_the_order_span_and_on_to_its_event() -> None:
    tracing, exporter = in_memory()
    plain, traced = orders(2, partitions=1)
    traced = message(0, 1, traced.value() or b"", traced.key(), headers=[("traceparent", TRACEPARENT.encode())])
    poison = message(0, 2, b"{not json", b"poison-1")
    rig = traced_rig([plain, traced, poison], tracing)
    rig.run()
    spans = exporter.get_finished_spans()
    [batch] = named(spans, "consume.batch")
    order_spans = {attrs(span)["messaging.kafka.offset"]: span for span in named(spans, "consume.order")}
    [store] = named(spans, "consume.store")

    continued = order_spans[1]
    _assert_continues_the_producers_trace(continued, batch)
    # An order without one, and the store, are children of the batch; poison says its reason, as an error.
    _assert_child_of(order_spans[0], batch)
    _assert_child_of(store, batch)
    assert attrs(order_spans[2])["ordersctl.outcome"] == "invalid_json"
    assert order_spans[2].status.status_code is StatusCode.ERROR
    assert attrs(batch)["messaging.batch.message_count"] == 3

    # The store is given each order's traceparent (its order span's) for its event.
    [given] = rig.store.traceparents
    assert given is not None
    uid = (traced.key() or b"").decode()
    assert given[uid] == f"00-{TRACE_ID}-{continued.context.span_id:016x}-01"
    assert given[(plain.key() or b"").decode()].split("-")[1] == format(batch.context.trace_id, "032x")


def _assert_continues_the_producers_trace(span: ReadableSpan, batch: ReadableSpan) -> None:
    """The traced order continues the producer's trace (TRACEPARENT), and links to the batch; the batch to it."""
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_ID
    assert span.kind is SpanKind.CONSUMER
    assert attrs(span)["ordersctl.outcome"] == "stored"
    assert [link.context.span_id for link in span.links] == [batch.context.span_id]
    assert [format(link.context.trace_id, "032x") for link in batch.links] == [TRACE_ID]


def _assert_child_of(span: ReadableSpan, parent: ReadableSpan) -> None:
    assert span.parent is not None
    assert span.parent.span_id == parent.context.span_id


def test_a_failed_store_attempt_is_a_span_with_its_error_and_the_retry_another() -> None:
    tracing, exporter = in_memory()
    rig = traced_rig(orders(2), tracing)
    rig.store.failures = 1
    rig.run()
    stores = named(exporter.get_finished_spans(), "consume.store")
    assert [s.status.status_code for s in stores] == [StatusCode.ERROR, StatusCode.UNSET]
    order_spans = named(exporter.get_finished_spans(), "consume.order")
    assert [attrs(s)["ordersctl.outcome"] for s in order_spans] == ["stored", "stored"]


def test_a_malformed_traceparent_starts_no_trace_of_its_own() -> None:
    tracing, exporter = in_memory()
    [order] = orders(1)
    bad = message(0, 0, order.value() or b"", order.key(), headers=[("traceparent", b"\xff00-zz-yy-01")])
    traced_rig([bad], tracing).run()
    [batch] = named(exporter.get_finished_spans(), "consume.batch")
    [span] = named(exporter.get_finished_spans(), "consume.order")
    assert not batch.links and span.parent is not None and span.parent.span_id == batch.context.span_id


def test_a_header_name_that_is_not_utf8_starts_no_trace_and_stops_nothing() -> None:
    # confluent-kafka raises UnicodeDecodeError from headers() for such a record: read as no trace context, not a
    # worker crash (which would repeat on the same record for ever).
    tracing, exporter = in_memory()
    [order] = orders(1)
    hostile = UndecodableHeaders(topic="orders", partition=0, offset=0, key=order.key(), value=order.value())
    rig = traced_rig([hostile], tracing)
    rig.run()
    [batch] = named(exporter.get_finished_spans(), "consume.batch")
    [span] = named(exporter.get_finished_spans(), "consume.order")
    assert not batch.links and span.parent is not None and span.parent.span_id == batch.context.span_id
    assert attrs(span)["ordersctl.outcome"] == "stored"


def test_tracing_off_hands_the_store_no_traceparents() -> None:
    rig = Rig(orders(3))
    assert rig.worker.ports.tracing is NO_TRACING
    rig.run()
    assert rig.store.traceparents and all(given is None for given in rig.store.traceparents)


def test_serve_makes_a_span_per_request_continuing_an_incoming_traceparent() -> None:
    tracing, exporter = in_memory()
    runtime = Runtime(Settings(api=ApiSettings(token="a-token-of-the-test")))
    runtime.tracing = tracing
    client = falcon.testing.TestClient(create_app(runtime).app)
    assert client.simulate_get("/health/live", headers={"traceparent": TRACEPARENT}).status_code == 200
    assert client.simulate_get("/orders/abc").status_code == 401  # refused by the auth middleware: still a span
    live, refused = exporter.get_finished_spans()
    assert live.name == "GET /health/live" and live.kind is SpanKind.SERVER
    assert format(live.context.trace_id, "032x") == TRACE_ID
    assert live.parent is not None and format(live.parent.span_id, "016x") == PARENT_ID
    assert live.attributes == {"http.request.method": "GET", "http.route": "/health/live",
                               "http.response.status_code": 200}  # fmt: skip
    assert refused.parent is None and attrs(refused)["http.response.status_code"] == 401


class HeldExporter(InMemorySpanExporter):
    """Holds its first export until ``release`` is set: a collector slower than a batch's commit."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(10)
        return super().export(spans)


def test_a_batch_of_order_spans_ending_at_once_is_not_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    # 3,000 orders in flight: more than the SDK's default queue (2,048) while the exporter is busy.
    monkeypatch.delenv("OTEL_BSP_MAX_QUEUE_SIZE", raising=False)
    exporter = HeldExporter()
    monkeypatch.setattr(otel, "_exporter", lambda settings: exporter)
    tracing = OtelTracing.from_settings(OtelSettings(enabled=True), burst=3000)
    batch = orders(3000)
    spans = tracing.batch(batch)
    spans.end((m, "stored") for m in batch)
    exporter.release.set()
    tracing.close()
    assert len(named(exporter.get_finished_spans(), "consume.order")) == 3000


def test_the_console_exporter_logs_each_span_as_a_record(caplog: pytest.LogCaptureFixture) -> None:
    tracing = OtelTracing.from_settings(OtelSettings(enabled=True, exporter="console"))
    with caplog.at_level(logging.INFO, logger="ordersctl.adapters.otel"):
        traced_rig(orders(2), tracing).run()
        tracing.close()
    names = [str(getattr(r, "span", {}).get("name")) for r in caplog.records if r.name == "ordersctl.adapters.otel"]
    assert sorted(names) == ["consume.batch", "consume.order", "consume.order", "consume.store"]
    assert JsonFormatter().format(caplog.records[-1]).count("\n") == 0  # one line each with log.format = json


def test_otel_settings_are_strict(tmp_path) -> None:
    config = tmp_path / "ordersctl.toml"
    config.write_text('[otel]\nenabled = true\nendpont = "http://collector:4318/v1/traces"\n')
    with pytest.raises(ConfigError, match=r"otel\.endpont.*did you mean otel\.endpoint"):
        load_settings(config)
    config.write_text('[otel]\nenabled = true\nendpoint = "http://user:secret@collector:4318/v1/traces"\n')
    with pytest.raises(ConfigError, match="OTEL_EXPORTER_OTLP_HEADERS") as refused:
        load_settings(config)
    assert "secret" not in str(refused.value)
    config.write_text('[otel]\nenabled = true\nexporter = "CONSOLE"\n')
    assert load_settings(config).otel.exporter == "console"


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False,
                          env={"PATH": "/usr/bin:/bin", **env}, timeout=60)  # fmt: skip


TRACING_OFF = """
import sys
from ordersctl.api.app import create_app
from ordersctl.cli.main import app
from ordersctl.config import load_settings
from ordersctl.pipeline import wiring, worker
from ordersctl.runtime import Runtime
from tests.unit.test_worker import Rig, orders
runtime = Runtime(load_settings())
create_app(runtime)
Rig(orders(3), batch_size=2).run()
assert runtime.tracing.enabled is False
print(sorted(name for name in sys.modules if name.startswith(("ordersctl.adapters.otel", "opentelemetry.sdk.trace"))))
"""


def test_tracing_off_imports_nothing_of_opentelemetry() -> None:
    # Where the extra is installed, redis-py imports OpenTelemetry's metrics API by itself (redis.observability):
    # ordersctl's own tracing, the adapter and the SDK's tracing, stays unloaded.
    done = _python(TRACING_OFF)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    # Without the extra: the same runs through, nothing of ordersctl reaching for OpenTelemetry.
    done = _python('import sys; sys.modules["opentelemetry"] = None\n' + TRACING_OFF)
    assert done.returncode == 0, done.stderr


def test_tracing_on_without_the_extra_installed_is_a_config_error_saying_how_to_install_it() -> None:
    code = """
import sys
sys.modules["opentelemetry"] = None  # as when the otel extra is not installed
sys.argv = ["ordersctl", "config", "show"]
from ordersctl.cli.main import run
run()
"""
    done = _python(code, ORDERS_OTEL__ENABLED="true")
    assert done.returncode == 2
    assert log_messages(done.stderr) == [  # off a terminal: a JSON record
        "ordersctl: config error: invalid setting otel.enabled (environment ORDERS_OTEL__ENABLED): tracing needs "
        "OpenTelemetry, which is not installed: pip install 'ordersctl[otel]'"
    ]
