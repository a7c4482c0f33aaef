"""The per-order design, the reference row of bench/ingest.py: what most consumers of this kind do.

For each message, one at a time: decode and validate it (the same ``decode_rows`` as ordersctl), insert the
order into the four tables and its "order saved" row into the outbox with plain INSERT statements in one
transaction (psycopg prepares each statement after its first few uses; the items go in one executemany),
commit, then commit the message's offset synchronously. It does less than ``ordersctl consume``: no
duplicate or conflict check, no dead-letter queue (the bench sends no poison), no relay publishing the outbox.

    python bench/per_order.py [--stop-when-idle 3]   (settings from ORDERS_* as for ordersctl consume)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ordersctl.adapters.kafka import make_consumer
from ordersctl.adapters.order_store.outbox import event_json
from ordersctl.config import load_settings
from ordersctl.domain.rows import DELIVERY_COLUMNS, ITEM_COLUMNS, ORDER_COLUMNS, PAYMENT_COLUMNS
from ordersctl.domain.rules import decode_rows
from ordersctl.errors import PoisonError


def insert(table: str, columns: tuple[str, ...]) -> str:
    """The statement, rendered once (composing it on every execute would cost more than running it)."""
    return (
        sql.SQL("INSERT INTO {} ({}) VALUES ({})")
        .format(
            sql.Identifier(table),
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        )
        .as_string(None)
    )


INSERT_ORDER = insert("orders", ORDER_COLUMNS)
INSERT_DELIVERY = insert("deliveries", DELIVERY_COLUMNS)
INSERT_PAYMENT = insert("payments", PAYMENT_COLUMNS)
INSERT_ITEM = insert("items", ITEM_COLUMNS)
INSERT_OUTBOX = insert("outbox", ("order_uid", "payload"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stop-when-idle", type=float, default=3.0, help="exit after this many idle seconds")
    args = parser.parse_args()
    settings = load_settings()
    consumer = make_consumer(settings.kafka)
    consumer.subscribe([settings.kafka.orders_topic])
    stored = 0
    try:
        with psycopg.connect(settings.postgres.dsn) as conn, conn.cursor() as cur:
            last_message = time.monotonic()
            while time.monotonic() - last_message < args.stop_when_idle:
                msg = consumer.poll(0.5)
                if msg is None or msg.error() is not None:
                    continue
                last_message = time.monotonic()
                value = msg.value() or b""
                try:
                    rows = decode_rows(value)
                except PoisonError:
                    consumer.commit(message=msg, asynchronous=False)  # a real consumer dead-letters it first
                    continue
                with conn.transaction():
                    cur.execute(INSERT_ORDER, rows.order)
                    cur.execute(INSERT_DELIVERY, rows.delivery)
                    cur.execute(INSERT_PAYMENT, rows.payment)
                    cur.executemany(INSERT_ITEM, rows.items)
                    cur.execute(INSERT_OUTBOX, (rows.order_uid, Jsonb(event_json(rows), dumps=str)))
                consumer.commit(message=msg, asynchronous=False)
                stored += 1
    finally:
        consumer.close()
    print(f"per-order: stored {stored} orders", file=sys.stderr)


if __name__ == "__main__":
    main()
