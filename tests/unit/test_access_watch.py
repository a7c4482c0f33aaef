"""A running command stops when its credentials are refused, and only then."""

from __future__ import annotations

import threading

from ordersctl.access_watch import AccessWatch
from ordersctl.errors import AccessDenied, ServiceUnavailable


def test_refused_credentials_stop_the_process_and_keep_the_error() -> None:
    answers: list[Exception | None] = [
        ServiceUnavailable("PostgreSQL", "db:5432"),
        None,
        AccessDenied("PostgreSQL", "x"),
    ]
    stopped = threading.Event()

    def check() -> None:
        answer = answers.pop(0) if answers else None
        if answer is not None:
            raise answer

    watch = AccessWatch(check, every=0.01, stop_process=stopped.set)
    watch.start()
    assert stopped.wait(5), "the process was not asked to stop"
    watch.stop()
    assert isinstance(watch.error, AccessDenied) and not answers, "an outage and a success went by first"


def test_an_outage_never_stops_the_process() -> None:
    stopped = threading.Event()
    calls: list[int] = []

    def down() -> None:
        calls.append(1)
        raise ServiceUnavailable("PostgreSQL", "db:5432")

    watch = AccessWatch(down, every=0.01, stop_process=stopped.set)
    watch.start()
    while len(calls) < 20:
        stopped.wait(0.01)
    watch.stop()
    assert not stopped.is_set() and watch.error is None
