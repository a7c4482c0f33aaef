"""Read-path benchmark: requests/s and p50/p99 latency (wrk, 32 connections) for GET /orders/{uid} served from
memory, from Redis and from PostgreSQL, next to a hello-world route on the same server in the same run.

    python bench/serve.py [--orders 2000] [--seconds 8] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_settings, env_for, fresh_database
from ordersctl.adapters.order_store import OrderStore
from ordersctl.domain.generator import OrderGenerator
from ordersctl.domain.rules import decode_order

ROOT = Path(__file__).resolve().parents[1]
# mode -> settings: where a GET /orders/{uid} is answered from
MODES: dict[str, dict[str, dict[str, object]]] = {
    "memory": {"api": {"memory_cache_size": 100_000}},
    "redis": {"api": {"memory_cache_size": 0}},
    "db": {"api": {"memory_cache_size": 0}, "redis": {"url": "redis://127.0.0.1:1/0"}},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wrk(url: str, seconds: int, connections: int, script: Path | None) -> dict[str, float]:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        cmd += ["-s", str(script)]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}

    def latency(pct: str) -> float:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        return float(m.group(1)) * unit[m.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    assert rps, out
    return {"rps": float(rps.group(1)), "p50": latency("50"), "p99": latency("99"),
            "errors": float(non2xx.group(1)) if non2xx else 0.0}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="waitress threads (default: the api setting)")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="serve --processes")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk (scripts/ensure-test-tools does it)")
    orders = [decode_order(m.value) for m in OrderGenerator(seed=99).messages(args.orders)]
    results: list[tuple[str, dict[str, float], dict[str, float]]] = []
    with fresh_database() as dsn, tempfile.TemporaryDirectory() as tmp:
        with psycopg.connect(dsn) as conn:
            OrderStore().save_batch(conn, orders)
        script = Path(tmp) / "orders.lua"
        paths = ",".join(f'"/orders/{o.order_uid}"' for o in orders)
        script.write_text(
            f"local paths = {{{paths}}}\nlocal i = 0\n"
            "request = function()\n  i = i % #paths + 1\n  return wrk.format('GET', paths[i])\nend\n"
        )
        for mode, sections in MODES.items():
            warm = {"warm_limit": args.orders if mode != "db" else 0}
            api = {**sections.get("api", {}), **warm, **({"threads": args.threads} if args.threads else {})}
            settings = bench_settings(
                dsn, f"bench{uuid.uuid4().hex[:6]}", log={"level": "WARNING"}, **{**sections, "api": api}
            )
            if mode == "redis":
                import redis

                redis.Redis.from_url(settings.redis.url).flushdb()
            port = free_port()
            server = subprocess.Popen(
                [sys.executable, str(ROOT / "bench" / "serve_app.py"), "--port", str(port),
                 "--processes", str(args.processes)],
                env=env_for(settings) | {"ORDERS_LOG__LEVEL": "WARNING"},
            )  # fmt: skip
            base = f"http://127.0.0.1:{port}"
            try:
                for _ in range(300):
                    try:
                        urllib.request.urlopen(base + "/health/ready", timeout=1)  # noqa: S310 - local server
                        break
                    except OSError:
                        time.sleep(0.1)
                # The hello-world run first: by its end every server process has finished its own warm-up.
                hello = wrk(base + "/_bench/hello", args.seconds, args.connections, None)
                for order in orders[:20]:
                    probe = urllib.request.urlopen(f"{base}/orders/{order.order_uid}", timeout=5)  # noqa: S310
                    assert probe.headers["X-Cache"] == mode, (mode, probe.headers["X-Cache"])
                served = wrk(base, args.seconds, args.connections, script)
                results.append((mode, served, hello))
            finally:
                server.terminate()
                server.wait(timeout=10)

    threads = args.threads or bench_settings("", "x").api.threads
    print(f"\nmachine: {os.cpu_count()} cores; wrk -t2 -c{args.connections} -d{args.seconds}s; {args.orders} orders;"
          f" {args.processes} server process(es) x {threads} waitress threads")  # fmt: skip
    print(f"{'GET /orders/{uid} from':<24}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
          f"{'hello req/s':>13}{'hello p99':>11}{'ratio':>7}")  # fmt: skip
    for mode, served, hello in results:
        ratio = served["rps"] / hello["rps"]
        print(f"{mode:<24}{served['rps']:>9.0f}{served['p50']:>9.2f}{served['p99']:>9.2f}"
              f"{hello['rps']:>13.0f}{hello['p99']:>11.2f}{ratio:>7.2f}")  # fmt: skip
        assert served["errors"] == 0, f"{mode}: non-2xx responses"
    print(
        "\nratio = req/s divided by the hello-world route's on the same server, same run "
        "(target: memory >= 0.8; p99 < 20 ms at 32 connections)"
    )


if __name__ == "__main__":
    main()
