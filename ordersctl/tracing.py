"""Tracing, behind a port: the consume worker and the API call a ``Tracing``, which is ``NO_TRACING`` unless
``[otel] enabled = true``. Then ``build`` loads ``ordersctl/adapters/otel.py``, the one module that imports
OpenTelemetry (the ``ordersctl[otel]`` extra). Off, nothing of OpenTelemetry is imported and the pipeline pays
one attribute check per batch, none per order."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from confluent_kafka import Message

from ordersctl.settings_otel import OtelSettings

# What a consumed order's span says became of it, besides a dead letter's reason.
STORED, DUPLICATE = "stored", "duplicate"


class BatchSpans(Protocol):
    """The spans of one consumed batch, from its decoding to its commit: the batch's, one per order (continuing
    the ``traceparent`` header of its message, when it has one) and one per attempt to store it."""

    def traceparent(self, message: Message) -> str | None:
        """The W3C ``traceparent`` of the order span of ``message``: its event carries it on (via the outbox)."""
        ...

    def storing(self) -> AbstractContextManager[object]:
        """The span of one attempt to store the batch (a transaction), around it."""
        ...

    def end(self, outcomes: Iterable[tuple[Message, str]]) -> None:
        """Each message's outcome (``STORED``, ``DUPLICATE`` or a dead letter's reason); ends every span."""
        ...


class Tracing(Protocol):
    """Where spans go: ``enabled`` is the cheap check the hot paths make before asking anything else."""

    enabled: bool

    def batch(self, messages: Sequence[Message]) -> BatchSpans:
        """Start the spans of a batch just decoded (only called when ``enabled``)."""
        ...

    def middleware(self) -> list[object]:
        """Falcon middleware making a span per request (none when off)."""
        ...

    def close(self) -> None:
        """Send the spans still buffered (bounded) and stop."""
        ...


class _NoSpans:
    def traceparent(self, message: Message) -> str | None:
        return None

    def storing(self) -> AbstractContextManager[object]:
        return contextlib.nullcontext()

    def end(self, outcomes: Iterable[tuple[Message, str]]) -> None:
        return None


class NoTracing:
    """Tracing off: nothing is made, nothing imported."""

    enabled = False

    def batch(self, messages: Sequence[Message]) -> BatchSpans:
        return _NoSpans()

    def middleware(self) -> list[object]:
        return []

    def close(self) -> None:
        return None


NO_TRACING = NoTracing()


def build(settings: OtelSettings, burst: int = 0) -> Tracing:
    """``NO_TRACING`` unless the settings turn tracing on (they were refused if the extra is not installed);
    ``burst``: how many spans may end at once (a consume worker's batches in flight, an order span each)."""
    if not settings.enabled:
        return NO_TRACING
    from ordersctl.adapters import otel

    return otel.OtelTracing.from_settings(settings, burst=burst)
