"""Fakes shared by the unit tests: a clock moved by hand, and the consume worker's ports (pipeline/ports.py)
behaving as the real clients do in the ways the worker relies on, with no service, thread pool or sleep (its
consumer is in tests/fake_consumer.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from confluent_kafka import Message

from ordersctl.adapters.order_store.writes import Saved, Status, T
from ordersctl.dlq.letters import DeadLetter
from ordersctl.errors import FatalError, OrderConflict, TransientError

R = TypeVar("R")
Partition = tuple[str, int]


class FakeClock:
    """A monotonic clock called like ``time.monotonic``; a test moves it with ``advance`` (or sets ``now``)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def message(
    partition: int,
    offset: int,
    value: bytes,
    key: bytes | None = None,
    topic: str = "orders",
    headers: list[tuple[str, str | bytes | None]] | None = None,
) -> Message:
    return Message(topic=topic, partition=partition, offset=offset, key=key, value=value, headers=headers)


class UndecodableHeaders(Message):
    """A record with a header name that is not UTF-8, as confluent-kafka hands it over: headers() raises."""

    def headers(self) -> Any:
        raise UnicodeDecodeError("utf-8", b"\xff\xfe", 0, 1, "invalid start byte")


class FakeStore:
    """The order sink: "stores" each valid order once (``stored``, by order_uid); a second copy is a duplicate,
    an order_uid in ``conflicting`` a conflict. ``failures`` transient errors come first; ``during_save`` runs
    inside each save, before anything of it is stored (the transaction is not committed yet)."""

    def __init__(self, failures: int = 0, conflicting: frozenset[str] = frozenset()) -> None:
        self.failures = failures
        self.conflicting = conflicting
        self.stored: set[str] = set()
        self.handled: list[Any] = []  # the items stored or found duplicate, in order (the worker's: Decoded)
        self.saves = 0
        self.during_save: Callable[[], None] = lambda: None
        self.traceparents: list[Mapping[str, str] | None] = []  # what each save was given (tracing)

    def save(self, batch: Sequence[T], traceparents: Mapping[str, str] | None = None) -> list[Saved[T]]:
        self.saves += 1
        self.traceparents.append(traceparents)
        self.during_save()
        if self.failures:
            self.failures -= 1
            raise TransientError("PostgreSQL transient error 40P01: deadlock detected")
        out: list[Saved[T]] = []
        for item in batch:
            uid = item.rows.order_uid
            if uid in self.conflicting:
                out.append(Saved(item, Status.CONFLICT, OrderConflict(f"order {uid} is stored with other content")))
            elif uid in self.stored:
                out.append(Saved(item, Status.DUPLICATE))
            else:
                self.stored.add(uid)
                out.append(Saved(item, Status.STORED))
        self.handled.extend(s.item for s in out if s.status in (Status.STORED, Status.DUPLICATE))
        return out


class FakeDeadLetters:
    """Confirms every dead letter at once; ``sent`` lists them in order."""

    def __init__(self) -> None:
        self.sent: list[DeadLetter] = []

    def send(self, letters: Sequence[DeadLetter]) -> None:
        self.sent.extend(letters)


class FakeRelay:
    """An outbox relay with nothing to publish: idle at once, its thread waits for the stop."""

    def __init__(self) -> None:
        self.idle = threading.Event()
        self.idle.set()
        self.reached_postgres = threading.Event()
        self.reached_postgres.set()
        self.wakes = 0
        self.failure: FatalError | None = None

    def run_forever(self, stop: threading.Event) -> None:
        stop.wait()

    def wake(self) -> None:
        self.wakes += 1


class StepExecutor:
    """Runs a submitted store only when its result is asked for (``Future.result``): until then it is "running"
    (not done), so a test decides exactly when a store completes relative to fetching, revokes and commits.
    With ``eager``, a store runs at once, on submit."""

    def __init__(self, eager: bool = False) -> None:
        self.eager = eager

    def submit(self, fn: Callable[..., R], /, *args: Any) -> Future[R]:
        future: LazyFuture[R] = LazyFuture(lambda: fn(*args))
        if self.eager:
            future.run()
        return future

    def shutdown(self, wait: bool = True) -> None:
        pass


class TimedExecutor:
    """A store takes ``seconds`` of ``clock``: it is running until the clock gets there, and waiting for its
    result moves the clock on to that moment, as a thread pool's store would be waited for. ``launched`` holds
    (clock, batch size) of each store started, ``stored`` (clock, batch size) of each finished."""

    def __init__(self, clock: FakeClock, seconds: float) -> None:
        self.clock = clock
        self.seconds = seconds
        self.launched: list[tuple[float, int]] = []
        self.stored: list[tuple[float, int]] = []

    def submit(self, fn: Callable[..., R], /, *args: Any) -> Future[R]:
        size = len(args[0].valid) if args else 0  # the worker's store takes a Prepared batch
        self.launched.append((self.clock(), size))

        def work() -> R:
            self.stored.append((self.clock(), size))
            return fn(*args)

        return TimedFuture(self.clock, self.clock() + self.seconds, work)

    def shutdown(self, wait: bool = True) -> None:
        pass


class LazyFuture(Future[R]):
    """A future whose work runs in the first ``result`` call (on the caller's thread)."""

    def __init__(self, work: Callable[[], R]) -> None:
        super().__init__()
        self._work: Callable[[], R] | None = work

    def run(self) -> None:
        work, self._work = self._work, None
        if work is None:
            return
        try:
            self.set_result(work())
        except BaseException as exc:  # handed to the caller of result(), as a thread pool would
            self.set_exception(exc)

    def result(self, timeout: float | None = None) -> R:
        self.run()
        return super().result(timeout)


class NeverFuture(Future[R]):
    """A store stuck (say on a lock): never done, and ``result`` with a timeout fails at once, no waiting."""

    def result(self, timeout: float | None = None) -> R:
        assert timeout is not None, "waited for a stuck store without bound"
        from concurrent.futures import TimeoutError as FutureTimeout

        raise FutureTimeout()


class TimedFuture(LazyFuture[R]):
    """Done once ``clock`` reaches ``at`` (its work runs then); ``result`` waits for that by moving the clock."""

    def __init__(self, clock: FakeClock, at: float, work: Callable[[], R]) -> None:
        super().__init__(work)
        self._clock = clock
        self._at = at

    def done(self) -> bool:
        if self._clock() >= self._at:
            self.run()
        return super().done()

    def result(self, timeout: float | None = None) -> R:
        self._clock.now = max(self._clock.now, self._at)
        return super().result(timeout)
