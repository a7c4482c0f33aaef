"""The harness's own seeded orders: valid ones and a known poison mix.

Deliberately not ordersctl's generator (``ordersctl produce``): a bug there must not hide one in the pipeline.
The same seed and count always give the same messages, so the checker regenerates what was produced instead
of trusting a record of it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

POISON_KINDS = ("invalid_json", "decode_error", "schema_violation", "rule_violation")


@dataclass(frozen=True)
class Produced:
    """One message as sent: key (= order_uid), value, and what it is (``valid`` or a poison kind)."""

    uid: str
    value: bytes
    kind: str
    items: int  # item rows a valid order must have


def _order(uid: str, rng: random.Random, n: int) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    for i in range(rng.randint(1, 4)):
        price = rng.randint(100, 100_000)
        sale = rng.randint(0, 60)
        items.append(
            {"chrt_id": rng.randint(1, 10**8), "track_number": "CHAOSTRACK", "price": price, "rid": f"{uid}r{i}",
             "name": "Item", "sale": sale, "size": "0", "total_price": price * (100 - sale) // 100,
             "nm_id": rng.randint(1, 10**7), "brand": "Brand", "status": 202}
        )  # fmt: skip
    goods = sum(int(item["total_price"]) for item in items)
    delivery_cost = rng.randint(0, 2000)
    return {
        "order_uid": uid, "track_number": "CHAOSTRACK", "entry": "CHAOS",
        "delivery": {"name": "Chaos Test", "phone": "+10000000000", "zip": "000000", "city": "Nowhere",
                     "address": "Street 1", "region": "Region", "email": "chaos@example.invalid"},
        "payment": {"transaction": uid, "request_id": "", "currency": "USD", "provider": "chaospay",
                    "amount": goods + delivery_cost, "payment_dt": 1_700_000_000 + n, "bank": "bank",
                    "delivery_cost": delivery_cost, "goods_total": goods, "custom_fee": 0},
        "items": items, "locale": "en", "internal_signature": "", "customer_id": "chaos",
        "delivery_service": "chaos", "shardkey": str(n % 10), "sm_id": 1,
        "date_created": f"2026-01-01T00:00:{n % 60:02d}Z", "oof_shard": "1",
    }  # fmt: skip


def _poison(kind: str, order: dict[str, Any]) -> bytes:
    if kind == "invalid_json":
        return json.dumps(order).encode()[:-3]
    if kind == "decode_error":
        return b"\xff\xfe" + json.dumps(order).encode()
    if kind == "schema_violation":
        return json.dumps({**order, "sm_id": "not a number"}).encode()
    payment = dict(order["payment"])
    payment["amount"] += 1  # rule_violation: amount must be goods_total + delivery_cost + custom_fee
    return json.dumps({**order, "payment": payment}).encode()


def messages(seed: int, count: int, poison_every: int = 97) -> Iterator[Produced]:
    """``count`` messages; every ``poison_every``-th is poison, cycling through the kinds."""
    rng = random.Random(seed)
    for n in range(count):
        uid = f"chaos{seed:x}n{n:09d}"
        order = _order(uid, rng, n)
        if poison_every and n % poison_every == poison_every - 1:
            kind = POISON_KINDS[(n // poison_every) % len(POISON_KINDS)]
            yield Produced(uid, _poison(kind, order), kind, 0)
        else:
            value = json.dumps(order, separators=(",", ":")).encode()
            yield Produced(uid, value, "valid", len(order["items"]))
