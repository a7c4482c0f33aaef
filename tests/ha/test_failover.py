"""The pipeline through a PostgreSQL failover (pg_auto_failover, a multi-host DSN with
target_session_attrs=read-write), under 1,000 orders/s: the primary's postmaster killed (#23), and the primary's
host lost without a reset (#25). consume rides it out without a restart; nothing lost, nothing duplicated, every
event published. The figures are printed at the end of the run."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from ordersctl.adapters.postgres import LIVENESS_SECONDS
from ordersctl.config import Settings
from tests.ha.conftest import FIGURES
from tests.ha.failover_run import Measured, Outcome, report, run_through_failover

pytestmark = [pytest.mark.ha, pytest.mark.e2e, pytest.mark.integration, pytest.mark.slow]

# ordersctl's own liveness bound (adapters/postgres.py): the tests' DSN is the plain multi-host one (hosts and
# target_session_attrs=read-write only), so ordersctl's defaults (tcp_user_timeout, keepalives) are what notices
# a host lost without a reset, not parameters the test adds.
LIVENESS_BOUND_S = float(LIVENESS_SECONDS)
LIVENESS_PARAMS = {"tcp_user_timeout", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count"}


def _nothing_lost_or_duplicated(outcome: Outcome) -> None:
    assert len(outcome.produced) == 20_000
    assert set(outcome.stored) == outcome.produced, f"lost {len(outcome.produced - set(outcome.stored))}"
    assert len(outcome.stored) == len(set(outcome.stored)), "an order stored twice"
    assert set(outcome.events) == outcome.produced, f"no event for {len(outcome.produced - set(outcome.events))}"
    assert outcome.summary["restarts"] == 0, "consume rides a failover out without a worker restart"
    assert outcome.summary["dlq"] == {}, "a failover is transient: never dead-lettered"


def test_the_primary_killed_under_load(ha_settings: Settings, tmp_path: Path) -> None:
    """kill -9 of the postmaster and of its keeper: a postmaster killed alone is often started again by its keeper
    (pg_autoctl) before the monitor gives up on it (the next test), and then there is no failover."""
    measured, outcome = run_through_failover(ha_settings, "ha-crash-primary", tmp_path, seed=231)
    FIGURES.append(report("primary killed -9", measured, outcome))
    assert measured.promoted
    _nothing_lost_or_duplicated(outcome)
    # A worker waiting for a pooled connection when the new primary opens gets one at the pool's next attempt
    # (backoff 1, 2, 4 s), not at the end of its wait (10 s): before, stores resumed 9-10 s after the failover.
    assert measured.stall_s <= 5, f"stores resumed {measured.stall_s:.1f}s after the failover"
    _serve_answered_through_it(measured)


def test_the_primarys_postmaster_killed_under_load(ha_settings: Settings, tmp_path: Path) -> None:
    """kill -9 of the postmaster alone: its keeper starts it again, or the monitor promotes the secondary first
    (it demotes the old primary then). Either way the pipeline rides it out."""
    measured, outcome = run_through_failover(ha_settings, "ha-kill-primary", tmp_path, seed=241)
    FIGURES.append(report("postmaster killed -9", measured, outcome))
    _nothing_lost_or_duplicated(outcome)


def test_the_primarys_host_lost_without_reset_under_load(ha_settings: Settings, tmp_path: Path) -> None:
    """The primary's port dropped (no RST) and its processes killed: only the clients' liveness notices. The DSN
    carries no liveness parameter (asserted), so this proves ordersctl's defaults, not a tuned DSN."""
    _plain_multi_host(ha_settings.postgres.dsn)
    measured, outcome = run_through_failover(ha_settings, "ha-lose-primary", tmp_path, seed=251)
    FIGURES.append(report("host lost without RST", measured, outcome))
    assert measured.promoted
    _nothing_lost_or_duplicated(outcome)
    assert measured.stall_s <= LIVENESS_BOUND_S + 5, f"stores resumed {measured.stall_s:.1f}s after the failover"


def _plain_multi_host(dsn: str) -> None:
    """Two hosts and target_session_attrs=read-write, and none of libpq's liveness parameters."""
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    assert "," in str(params.get("host")) and params.get("target_session_attrs") == "read-write", dsn
    assert not LIVENESS_PARAMS & set(params), f"the DSN sets liveness itself: {dsn}"


def _serve_answered_through_it(measured: Measured) -> None:
    """serve answered from the new primary: no 5xx (or silence) for longer than the failover took, and 200s
    again afterwards. One poll (100 ms) and serve's wait for a connection (2 s) are the margin."""
    assert measured.statuses[200] > 0
    assert measured.longest_5xx_s <= measured.failover_s + 2.5, (
        f"5xx for {measured.longest_5xx_s:.1f}s, the failover took {measured.failover_s:.1f}s"
    )
