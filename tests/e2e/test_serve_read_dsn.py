"""``postgres.read_dsn`` (#21 item 8): ``serve`` reads orders (GET /orders/{order_uid}, GET /orders, its warm-up)
through the read DSN, and only those: readiness stays on the DSN. Shown with two databases of the real PostgreSQL
that hold different orders, the read DSN's in a read-only session (as on a standby)."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from ordersctl.config import Settings
from ordersctl.domain.generator import OrderGenerator
from ordersctl.domain.order import Order
from ordersctl.domain.rules import decode_order
from tests.conftest import fresh_database, migrate
from tests.e2e.test_serve import _get, running_serve
from tests.helpers import db_rows, store_orders

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def _orders(seed: int, count: int) -> list[Order]:
    messages = OrderGenerator(seed=seed).messages(count * 3)
    return [decode_order(m.value) for m in messages if m.kind == "valid"][:count]


def test_serve_reads_orders_through_the_read_dsn_and_is_ready_on_the_dsn(settings: Settings, tmp_path: Path) -> None:
    on_primary, on_replica = _orders(seed=301, count=3), _orders(seed=302, count=4)
    store_orders(settings.postgres.dsn, on_primary)
    log = tmp_path / "serve.log"
    with fresh_database() as replica:
        store_orders(migrate(replica), on_replica)
        # A read-only session, as a standby or a read-only role gives: a write on it would fail (25006).
        read_dsn = psycopg.conninfo.make_conninfo(replica, options="-c default_transaction_read_only=on")
        replica_name = str(psycopg.conninfo.conninfo_to_dict(replica)["dbname"])
        name = f"serve-{replica_name}"  # postgres.application_name: on the read DSN's connections too
        with running_serve(
            settings, log, "--warm-limit", "10",
            ORDERS_POSTGRES__READ_DSN=read_dsn, ORDERS_POSTGRES__APPLICATION_NAME=name, ORDERS_REDIS__URL="",
        ) as base:  # fmt: skip
            assert json.loads(_get(f"{base}/health/ready")[2])["postgres"] == "up"
            for order in on_replica:
                code, headers, body = _get(f"{base}/orders/{order.order_uid}")
                assert code == 200 and json.loads(body)["order_uid"] == order.order_uid
                assert headers["X-Cache"] == "memory"  # warmed from the read DSN
            for order in on_primary:
                assert _get(f"{base}/orders/{order.order_uid}")[0] == 404  # not read from the DSN
            listed = json.loads(_get(f"{base}/orders?limit=100")[2])["items"]
            assert {o["order_uid"] for o in listed} == {o.order_uid for o in on_replica}
            sessions = db_rows(settings.postgres.dsn, "SELECT datname, application_name FROM pg_stat_activity")
            primary_name = psycopg.conninfo.conninfo_to_dict(settings.postgres.dsn)["dbname"]
            assert {(replica_name, name), (primary_name, name)} <= set(sessions)
    assert "warmed 4 orders" in log.read_text()
