"""How the pipeline writes a moment: RFC 3339 in UTC with "Z", the form the order messages themselves use."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_z(moment: datetime, timespec: str = "auto") -> str:
    """``moment`` in UTC as ``2026-01-01T12:00:00.250000Z``; ``timespec`` as for ``datetime.isoformat``
    ("auto": microseconds only when there are any; "seconds", "milliseconds" to cut them)."""
    if moment.tzinfo is None:
        # A naive datetime would be read as local time without a word: refuse it rather than guess.
        raise ValueError("utc_z needs an aware datetime")
    return moment.astimezone(UTC).isoformat(timespec=timespec).removesuffix("+00:00") + "Z"
