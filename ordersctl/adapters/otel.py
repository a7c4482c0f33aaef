"""OpenTelemetry: the one module that imports it (the ``ordersctl[otel]`` extra), loaded by ``tracing.build`` only
when ``[otel] enabled = true``.

consume: a batch span (``consume.batch``, kind consumer) links to the incoming context of each of its messages:
a batch holds orders of many traces, so, as OpenTelemetry's messaging conventions do, it is the child of none.
Each message gets an order span (``consume.order``), the child of its ``traceparent`` header when it has a valid
one (linked to the batch span), else of the batch span; it lasts from the decoding to the commit and says what
became of the order. Each attempt to store the batch is a ``consume.store`` span under the batch span. An order's
event carries its order span's ``traceparent`` on to the events topic (written to the outbox row with it).

serve: a span per request (kind server, named ``METHOD route``), the child of an incoming ``traceparent``.

W3C trace context is read and written directly, whatever OTEL_PROPAGATORS says: the header is the contract with
the producers and the readers of the events. The SDK reads its own OTEL_* variables (sampler, resource, batch
sizes, the exporter's headers, timeout and, unless ``otel.endpoint`` is set, endpoint).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from confluent_kafka import Message
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.environment_variables import OTEL_BSP_MAX_QUEUE_SIZE
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from ordersctl import __version__
from ordersctl.adapters.kafka_headers import header_pairs
from ordersctl.domain.peek import key_uid
from ordersctl.settings_otel import OtelSettings
from ordersctl.tracing import DUPLICATE, STORED

log = logging.getLogger(__name__)
W3C = TraceContextTextMapPropagator()
TRACE_HEADERS = ("traceparent", "tracestate")
MIN_QUEUE = 2048  # the SDK's default span queue
CLOSE_SECONDS = 5.0  # how long a process that stops waits for its last spans to be sent
_KAFKA = {"messaging.system": "kafka", "messaging.operation.type": "process"}
_POSTGRES = {"db.system.name": "postgresql"}


def incoming_context(headers: Iterable[tuple[str, bytes | str | None]] | None) -> Context | None:
    """The trace context in W3C headers (Kafka's or HTTP's), or None when there is none or it is malformed."""
    if not headers:
        return None
    carrier: dict[str, str] = {}
    for name, value in headers:
        if name in TRACE_HEADERS and value is not None:
            carrier[name] = value.decode("latin-1") if isinstance(value, bytes) else value
    if "traceparent" not in carrier:
        return None
    context = W3C.extract(carrier)
    return context if trace.get_current_span(context).get_span_context().is_valid else None


def traceparent_of(span: trace.Span) -> str:
    c = span.get_span_context()
    return f"00-{c.trace_id:032x}-{c.span_id:016x}-{int(c.trace_flags):02x}"


class OtelBatchSpans:
    """The spans of one batch (see the module's docstring); made on the worker's main thread, ``storing`` used on a
    store thread, ``end`` on the main thread once the batch is committed."""

    def __init__(self, tracer: trace.Tracer, messages: Sequence[Message]) -> None:
        self._tracer = tracer
        incoming = [(m, incoming_context(header_pairs(m))) for m in messages]
        links = [Link(trace.get_current_span(ctx).get_span_context()) for _, ctx in incoming if ctx is not None]
        topic = (messages[0].topic() if messages else None) or ""
        self.span = tracer.start_span(
            "consume.batch", kind=SpanKind.CONSUMER, links=links,
            attributes={**_KAFKA, "messaging.destination.name": topic, "messaging.batch.message_count": len(messages)},
        )  # fmt: skip
        self._context = trace.set_span_in_context(self.span)
        own = [Link(self.span.get_span_context())]
        self._orders: dict[tuple[int, int], trace.Span] = {}
        for message, context in incoming:
            partition, offset = message.partition() or 0, message.offset() or 0
            self._orders[(partition, offset)] = tracer.start_span(
                "consume.order", context=context or self._context, kind=SpanKind.CONSUMER,
                links=own if context is not None else None,
                # Where it came from is the batch span's (system, topic): each attribute costs every order.
                attributes={"messaging.destination.partition.id": str(partition), "messaging.kafka.offset": offset,
                            "ordersctl.order_uid": key_uid(message.key()) or ""},
            )  # fmt: skip

    def traceparent(self, message: Message) -> str | None:
        span = self._orders.get((message.partition() or 0, message.offset() or 0))
        return traceparent_of(span) if span is not None else None

    def storing(self) -> AbstractContextManager[object]:
        span = self._tracer.start_span("consume.store", context=self._context, attributes=_POSTGRES)
        return trace.use_span(span, end_on_exit=True)  # a failed attempt (retried) is a span with its error

    def end(self, outcomes: Iterable[tuple[Message, str]]) -> None:
        for message, outcome in outcomes:
            span = self._orders.pop((message.partition() or 0, message.offset() or 0), None)
            if span is None:
                continue
            span.set_attribute("ordersctl.outcome", outcome)
            if outcome not in (STORED, DUPLICATE):
                span.set_status(Status(StatusCode.ERROR, f"dead-lettered: {outcome}"))
            span.end()
        for span in self._orders.values():  # not in the outcomes: left to the partitions' next owner
            span.end()
        self._orders.clear()
        self.span.end()


class RequestSpans:
    """Falcon middleware: a span per request, continuing an incoming ``traceparent``. Route, method and status
    only: never the query string, a body or another header (personal data, tokens)."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def process_request(self, req: Any, resp: Any) -> None:
        context = incoming_context((name, req.get_header(name)) for name in TRACE_HEADERS)
        req.context.otel_span = self._tracer.start_span(
            req.method, context=context, kind=SpanKind.SERVER, attributes={"http.request.method": req.method}
        )

    def process_response(self, req: Any, resp: Any, resource: object, req_succeeded: bool) -> None:
        span = getattr(req.context, "otel_span", None)
        if span is None:
            return
        if req.uri_template:
            span.update_name(f"{req.method} {req.uri_template}")
            span.set_attribute("http.route", req.uri_template)
        code = int(str(resp.status).split(" ", 1)[0])
        span.set_attribute("http.response.status_code", code)
        if code >= 500:
            span.set_status(Status(StatusCode.ERROR))
        span.end()


class OtelTracing:
    """``Tracing`` on an OpenTelemetry SDK tracer provider of this process's own (not the global one)."""

    enabled = True

    def __init__(self, provider: TracerProvider) -> None:
        self.provider = provider
        self._tracer = provider.get_tracer("ordersctl", __version__)

    @classmethod
    def from_settings(
        cls, settings: OtelSettings, processor: SpanProcessor | None = None, *, burst: int = 0
    ) -> OtelTracing:
        """A provider sending to the exporter the settings name, in batches (``processor``: the tests' own).

        A consume batch's order spans end together, at its commit: a queue shorter than ``burst`` (the spans that
        may end at once) would drop spans, so it holds twice that, unless OTEL_BSP_MAX_QUEUE_SIZE says."""
        queue = None if OTEL_BSP_MAX_QUEUE_SIZE in os.environ else max(MIN_QUEUE, 2 * burst)
        provider = TracerProvider(resource=_resource())
        provider.add_span_processor(processor or BatchSpanProcessor(_exporter(settings), max_queue_size=queue))
        return cls(provider)

    def batch(self, messages: Sequence[Message]) -> OtelBatchSpans:
        return OtelBatchSpans(self._tracer, messages)

    def middleware(self) -> list[object]:
        return [RequestSpans(self._tracer)]

    def close(self) -> None:
        # The SDK waits up to 30 s for an exporter that cannot send: a stopping process waits this long at most.
        closing = threading.Thread(target=self.provider.shutdown, name="close-tracing", daemon=True)
        closing.start()
        closing.join(CLOSE_SECONDS)


class LoggedSpans(SpanExporter):
    """The ``console`` exporter: each span a log record (INFO, its ``span`` field), so that it goes where every
    other line of the process goes, as they go (stderr; one JSON object a line with ``log.format = json``)."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            log.info("span", extra={"span": json.loads(span.to_json(indent=None))})
        return SpanExportResult.SUCCESS


def _exporter(settings: OtelSettings) -> SpanExporter:
    if settings.exporter == "console":
        return LoggedSpans()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(endpoint=settings.endpoint or None)


def _resource() -> Resource:
    """OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES as the SDK reads them; the service is "ordersctl" when
    they do not name it."""
    resource = Resource.create({"service.version": __version__})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "ordersctl"}))
    return resource
