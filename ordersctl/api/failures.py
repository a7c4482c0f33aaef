"""A dependency down during a request: the client gets a 503 that names the dependency, nothing more.

Its address, the driver's message and the traceback are for operators, so they go to the log; at most once
per dependency every ``LOG_EVERY_SECONDS``, since in an outage every request fails the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import falcon

from ordersctl.errors import TransientError
from ordersctl.logs import RateLimit

log = logging.getLogger(__name__)
POSTGRES = "postgres"
LOG_EVERY_SECONDS = 10.0


class DependencyDown(TransientError):
    """A dependency a request needs is down; the exception with the details is its ``__cause__``."""

    def __init__(self, dependency: str) -> None:
        super().__init__(f"{dependency} unavailable")
        self.dependency = dependency


@contextmanager
def postgres() -> Iterator[None]:
    """Wraps a request's PostgreSQL work (on the Runtime's connections, whose errors come out as our classes):
    a transient failure becomes ``DependencyDown("postgres")``."""
    try:
        yield
    except TransientError as exc:
        raise DependencyDown(POSTGRES) from exc


class UnavailableHandler:
    """Falcon error handler for ``TransientError``: log the details (rate-limited), answer 503."""

    def __init__(self, log_every_seconds: float = LOG_EVERY_SECONDS) -> None:
        self._limit = RateLimit(log_every_seconds)

    def __call__(self, req: falcon.Request, resp: falcon.Response, exc: TransientError, params: object) -> None:
        # Only API code that knows which dependency it used raises DependencyDown; anything else is unnamed.
        dependency = exc.dependency if isinstance(exc, DependencyDown) else "dependency"
        suppressed = self._limit.allow(dependency)
        if suppressed is not None:
            log.warning(
                "dependency unavailable",
                exc_info=exc,
                extra={"route": req.uri_template, "dependency": dependency, "suppressed": suppressed},
            )
        raise falcon.HTTPServiceUnavailable(title="unavailable", description=dependency, retry_after=2)
