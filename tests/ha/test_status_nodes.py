"""``ordersctl status`` against the HA stack: the nodes, which one is primary, its synchronous standby."""

from __future__ import annotations

import json

import pytest

from ordersctl.config import Settings
from tests.helpers import create_topics, ordersctl

pytestmark = [pytest.mark.ha, pytest.mark.e2e, pytest.mark.integration]


def test_status_shows_the_nodes_and_which_is_primary(ha_settings: Settings) -> None:
    create_topics(ha_settings)
    done = ordersctl(ha_settings, "status", "--json", timeout=60)
    nodes = json.loads(done.stdout)["postgres_nodes"]
    assert [n["address"] for n in nodes] == ["127.0.0.1:56431", "127.0.0.1:56432"]
    assert sorted(n["role"] for n in nodes) == ["primary", "standby"], nodes
    primary = next(n for n in nodes if n["role"] == "primary")
    assert primary["sync_standbys"] == 1, "pg_auto_failover replicates synchronously to the secondary"
    text = ordersctl(ha_settings, "status", timeout=60).stdout
    assert "PostgreSQL nodes" in text and "primary" in text and "standby" in text
