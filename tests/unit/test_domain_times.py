"""The one way a moment is written: UTC with "Z"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ordersctl.domain.times import utc_z


def test_utc_z_writes_utc_with_z_at_the_precision_asked() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert utc_z(moment) == "2026-01-02T03:04:05.678901Z"
    assert utc_z(moment, "milliseconds") == "2026-01-02T03:04:05.678Z"
    assert utc_z(moment, "seconds") == "2026-01-02T03:04:05Z"
    assert utc_z(moment.replace(microsecond=0)) == "2026-01-02T03:04:05Z", "no fraction when there is none"


def test_utc_z_converts_other_offsets_and_refuses_naive_times() -> None:
    moscow = datetime(2026, 1, 2, 6, 4, 5, tzinfo=timezone(timedelta(hours=3)))
    assert utc_z(moscow) == "2026-01-02T03:04:05Z"
    with pytest.raises(ValueError, match="aware"):
        utc_z(datetime(2026, 1, 2))
