"""What tracing costs: CPU per stored order of ``ordersctl consume --workers 1`` with tracing off and on, over the
same orders, each carrying a ``traceparent`` header (as an instrumented producer sends them), in fresh topics and a
fresh database per run.

With tracing on, spans are exported as in production, OTLP over HTTP in batches, to a collector stand-in in this
process (its CPU is not counted: it decodes each request to count the spans that arrived). The runs alternate,
off then on, ``--runs`` times each; the figures are the medians. CPU, from /proc, is of the consume processes
(supervisor and worker) over their whole lives, so each figure holds the same start-up and idle wait; the
difference between off and on is tracing's, start-up included (importing and building the SDK).

    python bench/tracing.py [--orders 30000] [--runs 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from bench.common import bench_settings, env_for, fresh_database
from bench.ingest import consume_command, create_topics, delete_topics, measured, pg_profile, progress
from bench.measure import Figures, run_measured
from ordersctl.adapters.kafka import ConfirmedSender, Outgoing
from ordersctl.config import Settings
from ordersctl.domain.generator import OrderGenerator
from ordersctl.runtime import Runtime


class Collector(ThreadingHTTPServer):
    """Answers OTLP/HTTP trace exports with success, counting the spans received."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Export)
        self.spans = 0
        self.lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/traces"


class _Export(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        request = ExportTraceServiceRequest.FromString(self.rfile.read(int(self.headers["Content-Length"])))
        count = sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)
        with self.server.lock:
            self.server.spans += count
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")  # an empty ExportTraceServiceResponse: all accepted
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return None


def traced(values: list[bytes]) -> Iterator[tuple[bytes, bytes, str]]:
    """(key, value, traceparent) of each order: a trace of its own, as a producer's span would start it."""
    for value in values:
        uid = json.loads(value)["order_uid"]
        yield uid.encode(), value, f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def produce(settings: Settings, orders: list[tuple[bytes, bytes, str]], partitions: int) -> int:
    create_topics(settings, partitions)
    rt = Runtime(settings)
    try:
        topic = settings.kafka.orders_topic
        report = ConfirmedSender(rt.producer(), timeout=60).send_all(
            Outgoing(topic, value, key, [("traceparent", traceparent.encode())]) for key, value, traceparent in orders
        )
        assert report.confirmed == len(orders), report
        return report.confirmed
    finally:
        rt.close()


def run(orders: list[tuple[bytes, bytes, str]], args: argparse.Namespace, collector: Collector | None) -> Figures:
    """One ``consume --workers 1`` over ``orders``; traced (to ``collector``) when there is one."""
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    otel: dict[str, object] = {"enabled": True, "endpoint": collector.endpoint} if collector else {"enabled": False}
    with fresh_database() as dsn:
        settings = bench_settings(dsn, prefix, pipeline={"batch_size": args.batch_size}, otel=otel)
        count = produce(settings, orders, args.partitions)
        name = f"tracing {'on' if collector else 'off'}"
        try:
            return measured(run_measured(name, consume_command(1), env_for(settings), dsn, count, "supervisor"))
        finally:
            delete_topics(settings)


def _us(runs: list[Figures], cpu: str) -> float:
    return float(statistics.median(getattr(f, cpu) * 1e6 / f.orders for f in runs))


def result(profile: str, off: list[Figures], on: list[Figures], spans: int) -> dict[str, Any]:
    orders = off[0].orders
    figures = {
        name: {
            "client_cpu_us_per_order": round(_us(runs, "client_cpu"), 1),
            "workers_cpu_us_per_order": round(_us(runs, "workers_cpu"), 1),
            "orders_per_s": round(statistics.median(f.orders / f.seconds for f in runs)),
            "runs": len(runs),
        }
        for name, runs in (("off", off), ("on", on))
    }
    cost_off, cost_on = (figures[name]["client_cpu_us_per_order"] for name in ("off", "on"))
    return {
        "postgres_profile": profile,
        "orders": orders,
        "tracing": figures,
        "tracing_cpu_us_per_order": round(cost_on - cost_off, 1),
        "tracing_cpu_ratio": round(cost_on / cost_off, 2),
        "spans_exported_per_order": round(spans / (orders * len(on)), 2),
    }


def table(res: dict[str, Any]) -> str:
    lines = [
        f"tracing: {res['orders']} orders with a traceparent each, consume --workers 1, medians of "
        f"{res['tracing']['off']['runs']} runs (PostgreSQL profile {res['postgres_profile']})",
        f"{'':12} {'CPU µs/order (consume)':>24} {'of which workers':>18} {'orders/s':>10}",
    ]
    for name in ("off", "on"):
        f = res["tracing"][name]
        lines.append(f"{'tracing ' + name:12} {f['client_cpu_us_per_order']:>24.1f} "
                     f"{f['workers_cpu_us_per_order']:>18.1f} {f['orders_per_s']:>10}")  # fmt: skip
    lines.append(f"tracing costs {res['tracing_cpu_us_per_order']:.1f} µs CPU per order (x{res['tracing_cpu_ratio']}); "
                 f"{res['spans_exported_per_order']} spans exported per order (batch, order, store)")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=30_000)
    parser.add_argument("--runs", type=int, default=3, help="runs with tracing off, and as many on (alternating)")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout instead of the table")
    args = parser.parse_args()
    profile = pg_profile()
    progress(f"PostgreSQL profile: {profile}; generating {args.orders} orders ...")
    orders = list(traced([m.value for m in OrderGenerator(seed=2025).messages(args.orders)]))
    collector = Collector()
    threading.Thread(target=collector.serve_forever, name="collector", daemon=True).start()
    off: list[Figures] = []
    on: list[Figures] = []
    try:
        for _ in range(args.runs):
            off.append(run(orders, args, None))
            on.append(run(orders, args, collector))
    finally:
        collector.shutdown()
    res = result(profile, off, on, collector.spans)
    print(json.dumps(res, indent=2) if args.json else table(res))


if __name__ == "__main__":
    main()
