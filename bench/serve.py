"""Read-path benchmark: requests/s and p50/p99 latency (wrk, 32 connections) for GET /orders/{uid} served from
memory, from Redis and from PostgreSQL, next to a hello-world route on the same server in the same run.

Next to each rate it prints the server processes' CPU per request (µs, from /proc, over the wrk run): wrk and
the server share the machine's cores, so the rate moves with whatever else runs, the CPU per request far less.
The CPU ratio (hello's CPU per request divided by the route's) is what the rate ratio would be on cores of
their own. Redis's own CPU per request is shown for the Redis path.

    python bench/serve.py [--orders 2000] [--seconds 16] [--rounds 4] [--connections 32] [--modes memory,redis,db]
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
import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import bench_settings, env_for, fresh_database, postmaster_pid
from bench.proc import tree_cpu
from ordersctl.config import load_settings
from ordersctl.domain.generator import OrderGenerator
from ordersctl.domain.rules import decode_order
from ordersctl.runtime import Runtime

ROOT = Path(__file__).resolve().parents[1]
# mode -> settings: where a GET /orders/{uid} is answered from
MODES: dict[str, dict[str, dict[str, object]]] = {
    "memory": {"api": {"memory_cache_size": 100_000}},
    "redis": {"api": {"memory_cache_size": 0}},
    "db": {"api": {"memory_cache_size": 0}, "redis": {"url": "redis://127.0.0.1:1/0"}},
}
Result = tuple[str, dict[str, float], dict[str, float]]  # (mode, the order route's run, hello world's run)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wrk(url: str, seconds: int, connections: int, script: Path | None, watched: dict[str, int]) -> dict[str, float]:
    """One wrk run; ``watched`` names process trees whose CPU (``<name>_cpu``, seconds) is measured over it."""
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if script is not None:
        cmd += ["-s", str(script)]
    before = {name: tree_cpu(pid) for name, pid in watched.items()}
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    cpu = {f"{name}_cpu": tree_cpu(pid) - before[name] for name, pid in watched.items()}
    unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}

    def latency(pct: str) -> float:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        return float(m.group(1)) * unit[m.group(2)]

    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s),", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    assert done, out
    return {"requests": float(done.group(1)), "seconds": float(done.group(2)) * unit[done.group(3)] / 1000,
            "p50": latency("50"), "p99": latency("99"), "errors": float(non2xx.group(1)) if non2xx else 0.0,
            **cpu}  # fmt: skip


def combined(runs: list[dict[str, float]]) -> dict[str, float]:
    """Rounds added up: rates and CPU per request over all of them; p50 the median round's, p99 the worst."""
    total = {key: sum(r[key] for r in runs) for key in runs[0] if key not in ("p50", "p99")}
    total["rps"] = total["requests"] / total["seconds"]
    total["p50"] = sorted(r["p50"] for r in runs)[len(runs) // 2]
    total["p99"] = max(r["p99"] for r in runs)
    for key in [k for k in total if k.endswith("_cpu")]:
        total[key.replace("_cpu", "_us")] = total[key] * 1e6 / total["requests"]
    return total


def layer_hits(base: str, layer: str) -> float:
    """ordersctl_order_lookups_total of ``layer``, summed over the server processes by /metrics."""
    text = urllib.request.urlopen(base + "/metrics", timeout=5).read().decode()  # noqa: S310 - local server
    m = re.search(rf'^ordersctl_order_lookups_total\{{layer="{layer}"\}} ([\d.e+]+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


def wait_ready(base: str) -> None:
    for _ in range(300):
        try:
            urllib.request.urlopen(base + "/health/ready", timeout=1)  # noqa: S310 - local server
            return
        except OSError:
            time.sleep(0.1)


def run_mode(mode: str, dsn: str, args: argparse.Namespace, script: Path, uids: list[str]) -> Result:
    """Start the server for ``mode``; then, in rounds, hello world and the order route on the same server, so
    that both meet the same load from whatever else runs on the machine."""
    sections = MODES[mode]
    warm = {"warm_limit": args.orders if mode != "db" else 0}
    api = {**sections.get("api", {}), **warm, **({"threads": args.threads} if args.threads else {})}
    settings = bench_settings(dsn, f"bench{uuid.uuid4().hex[:6]}", log={"level": "WARNING"}, **{**sections, "api": api})
    redis_client = redis.Redis.from_url(bench_settings(dsn, "x").redis.url)
    if mode == "redis":
        redis_client.flushdb()
    watched = {"redis": int(redis_client.info("server")["process_id"])}
    if mode == "db":
        watched["postgres"] = postmaster_pid(dsn)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "serve_app.py"), "--port", str(port), "--processes", str(args.processes)],
        # No drain after SIGTERM: nothing routes to this server but the benchmark, which has finished.
        env=env_for(settings) | {"ORDERS_LOG__LEVEL": "WARNING", "ORDERS_API__DRAIN_SECONDS": "0"},
    )
    base = f"http://127.0.0.1:{port}"
    watched["server"] = server.pid
    seconds = max(1, args.seconds // args.rounds)
    hellos, served = [], []
    try:
        wait_ready(base)
        # A first, unmeasured hello-world run: by its end every server process has finished its own warm-up,
        # whose CPU would otherwise count as the hello route's.
        wrk(base + "/_bench/hello", 2, args.connections, None, {})
        for uid in uids[:20]:
            probe = urllib.request.urlopen(f"{base}/orders/{uid}", timeout=5)  # noqa: S310
            assert probe.headers["X-Cache"] == mode, (mode, probe.headers["X-Cache"])
        for _ in range(args.rounds):
            hellos.append(wrk(base + "/_bench/hello", seconds, args.connections, None, watched))
            hits = layer_hits(base, mode)
            served.append(wrk(base, seconds, args.connections, script, watched))
            # Redis or PostgreSQL stopped by someone else meanwhile would make this a run of another layer.
            served[-1]["from_layer"] = layer_hits(base, mode) - hits
    finally:
        server.terminate()
        server.wait(timeout=10)
    return mode, combined(served), combined(hellos)


def report(results: list[Result], args: argparse.Namespace) -> None:
    threads = args.threads or bench_settings("", "x").api.threads
    print(f"\nmachine: {os.cpu_count()} cores; wrk -t2 -c{args.connections}, {args.rounds} rounds of hello world then"
          f" the route, {max(1, args.seconds // args.rounds)} s each; {args.orders} orders;"
          f" {args.processes} server process(es) x {threads} waitress threads")  # fmt: skip
    print(f"{'GET /orders/{uid} from':<24}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'hello req/s':>12}{'ratio':>7}"
          f"{'server µs/req':>15}{'hello µs/req':>14}{'CPU ratio':>11}{'redis µs/req':>14}")  # fmt: skip
    for mode, served, hello in results:
        ratio = served["rps"] / hello["rps"]
        cpu_ratio = hello["server_us"] / served["server_us"]
        redis_us = f"{served['redis_us']:.1f}" if mode == "redis" else "-"
        print(f"{mode:<24}{served['rps']:>8.0f}{served['p50']:>8.2f}{served['p99']:>8.2f}{hello['rps']:>12.0f}"
              f"{ratio:>7.2f}{served['server_us']:>15.0f}{hello['server_us']:>14.0f}{cpu_ratio:>11.2f}"
              f"{redis_us:>14}")  # fmt: skip
        assert served["errors"] == 0, f"{mode}: non-2xx responses"
        if served["from_layer"] < served["requests"]:
            print(f"!! only {served['from_layer']:.0f} of {served['requests']:.0f} requests answered from {mode}")
    print(
        "\nratio = req/s divided by the hello-world route's on the same server, same run (target: memory >= 0.85,"
        " redis >= 0.5; p99 < 20 ms at 32 connections).\nCPU ratio = the server's CPU per hello-world request"
        " divided by its CPU per order request (from /proc, same run): the ratio on cores of their own."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--seconds", type=int, default=16)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="waitress threads (default: the api setting)")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="serve --processes")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated: memory,redis,db")
    parser.add_argument("--rounds", type=int, default=4, help="hello world / route alternations in --seconds")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: apt-get install wrk (scripts/ensure-test-tools does it)")
    orders = [decode_order(m.value) for m in OrderGenerator(seed=99).messages(args.orders)]
    results: list[Result] = []
    with fresh_database() as dsn, tempfile.TemporaryDirectory() as tmp:
        with psycopg.connect(dsn) as conn:
            Runtime(load_settings()).store.writes.save_orders(conn, orders)
        script = Path(tmp) / "orders.lua"
        paths = ",".join(f'"/orders/{o.order_uid}"' for o in orders)
        script.write_text(
            f"local paths = {{{paths}}}\nlocal i = 0\n"
            "request = function()\n  i = i % #paths + 1\n  return wrk.format('GET', paths[i])\nend\n"
        )
        for mode in args.modes.split(","):
            results.append(run_mode(mode, dsn, args, script, [o.order_uid for o in orders]))
    report(results, args)


if __name__ == "__main__":
    main()
