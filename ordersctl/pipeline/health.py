"""``consume``'s health, judged by its supervisor from the workers' progress reports, and served on one port
(``--health-port``) for a platform's probes: one port per pod, whatever the number of workers.

- ``/readyz`` answers 200 once every worker has joined the consumer group (the group gave it its partitions,
  possibly none when there are more workers than partitions) and reached PostgreSQL (its outbox relay's last
  page did). Joining the group is reaching Kafka.
- ``/livez`` answers 503 while a worker is stalled: its last report showed partitions with lag, and its counts
  (messages handled, retries) have not moved for ``pipeline.stall_seconds``. A worker that stopped reporting at
  all (hung, or stopped with SIGSTOP) is judged on its last report. A worker retrying an outage is not stalled
  (its retries move): restarting it would not help, and the lag says it.

Each answers with a JSON body saying, per worker, what was judged.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class WorkerView:
    """What the supervisor knows of one worker process, from its reports."""

    pid: int
    joined: bool = False
    postgres: bool = False
    lag: int = 0
    handled: int = -1  # messages handled + retries: moves while the worker does anything
    moved_at: float = 0.0  # when ``handled`` last moved, or the worker was last without lag

    def as_dict(self, now: float) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "joined": self.joined,
            "postgres": self.postgres,
            "lag": self.lag,
            "still_for_s": round(now - self.moved_at, 1),
        }


class HealthBoard:
    """The workers' latest reports, and the verdicts drawn from them (``ready``, ``live``)."""

    def __init__(self, workers: int, stall_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._workers = workers
        self._stall = stall_seconds
        self._clock = clock
        self._views: dict[int, WorkerView] = {}
        self._lock = threading.Lock()

    def reported(self, worker_id: int, pid: int, report: Mapping[str, Any]) -> None:
        now = self._clock()
        handled = int(report.get("consumed", 0)) + int(report.get("retries", 0))
        lag = int(report.get("lag", 0))
        with self._lock:
            view = self._views.get(worker_id)
            if view is None or view.pid != pid:
                view = self._views[worker_id] = WorkerView(pid, moved_at=now)
            if handled != view.handled or lag == 0:
                view.moved_at = now
            view.handled = handled
            view.lag = lag
            view.joined = bool(report.get("joined", False))
            view.postgres = bool(report.get("postgres", False))

    def ready(self, alive: Mapping[int, int]) -> tuple[bool, dict[str, Any]]:
        """Ready: every worker alive (``alive``: pid by worker id) has joined the group and reached PostgreSQL."""
        views = self._current(alive)
        ok = len(views) == self._workers and all(v.joined and v.postgres for v in views.values())
        return ok, self._body(ok, views)

    def live(self, alive: Mapping[int, int]) -> tuple[bool, dict[str, Any]]:
        """Live: no worker alive holds lagging partitions without progress for ``stall_seconds``."""
        views = self._current(alive)
        now = self._clock()
        stalled = sorted(w for w, v in views.items() if v.lag > 0 and now - v.moved_at >= self._stall)
        body = self._body(not stalled, views)
        if stalled:
            body["stalled"] = stalled
        return not stalled, body

    def _current(self, alive: Mapping[int, int]) -> dict[int, WorkerView]:
        """The views of the workers alive now: a dead worker's last report says nothing of its next incarnation."""
        with self._lock:
            return {w: v for w, v in self._views.items() if alive.get(w) == v.pid}

    def _body(self, ok: bool, views: dict[int, WorkerView]) -> dict[str, Any]:
        now = self._clock()
        return {
            "status": "ok" if ok else "failing",
            "workers": {str(w): views[w].as_dict(now) if w in views else None for w in range(self._workers)},
        }


Verdict = Callable[[], tuple[bool, dict[str, Any]]]


class HealthServer:
    """``/livez`` and ``/readyz`` over HTTP, in a daemon thread of the supervisor process."""

    def __init__(self, host: str, port: int, routes: dict[str, Verdict]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                verdict = routes.get(self.path.split("?", 1)[0])
                if verdict is None:
                    self._answer(404, {"status": "not found", "paths": sorted(routes)})
                    return
                ok, body = verdict()
                self._answer(200 if ok else 503, body)

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # probes come every few seconds: no line each

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="health", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()
        log.info("health endpoints listening", extra={"host": self.address[0], "port": self.address[1]})

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
