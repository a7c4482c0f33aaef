"""Realistic, internally consistent orders (and, on request, bad ones). Deterministic for a given seed.

Used by ``ordersctl produce``, the tests and the benchmarks.
"""

from __future__ import annotations

import json
import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from faker import Faker

from ordersctl.domain.times import utc_z
from ordersctl.errors import DecodeError, InvalidJson, OrderConflict, RuleViolation, SchemaViolation

LOCALES = ("en_US", "de_DE", "fr_FR", "es_ES", "it_IT", "pl_PL", "ru_RU", "he_IL")
_CALLING_CODES = {"en_US": "1", "de_DE": "49", "fr_FR": "33", "es_ES": "34", "it_IT": "39", "pl_PL": "48",
                  "ru_RU": "7", "he_IL": "972"}  # fmt: skip
_CURRENCIES = {"en_US": "USD", "ru_RU": "RUB", "he_IL": "ILS", "pl_PL": "PLN"}
_PROVIDERS = ("wbpay", "stripe", "adyen", "paypal")
_BANKS = ("alpha", "sber", "tinkoff", "chase", "ing", "bnp")
_SERVICES = ("meest", "dhl", "ups", "cdek", "boxberry")
_BRANDS = ("Vivienne Sabo", "Nivea", "L'Oreal", "Adidas", "Lego", "Bosch", "Samsung", "Xiaomi")
_PRODUCTS = ("Mascaras", "Sneakers", "T-shirt", "Headphones", "Backpack", "Kettle", "Notebook", "Lamp")
# The poison classes ``--invalid-ratio`` mixes in, each named by the DLQ reason the consumer must give it.
INVALID_KINDS = (DecodeError.reason, InvalidJson.reason, SchemaViolation.reason, RuleViolation.reason,
                 OrderConflict.reason)  # fmt: skip


@dataclass(frozen=True)
class Message:
    """One generated Kafka message and what the consumer must make of it."""

    key: bytes
    value: bytes
    kind: str  # "valid", "duplicate", or the DLQ reason code it must get
    order_uid: str


def _region(fake: Faker) -> str:
    # Not every Faker locale knows administrative units; a city stands in for them there.
    try:
        return str(fake.administrative_unit())
    except AttributeError:
        return str(fake.city())


class OrderGenerator:
    """Generates orders from a seed; people come from a pool built with Faker in several locales."""

    def __init__(self, seed: int | None = None, people: int = 400) -> None:
        self.rng = random.Random(seed)
        self._base = datetime(2026, 1, 1, tzinfo=UTC) if seed is not None else datetime.now(UTC)
        self._people = [self._person(LOCALES[i % len(LOCALES)], (seed or 0) * 1_000_003 + i) for i in range(people)]

    def _person(self, locale: str, seed: int) -> dict[str, Any]:
        fake = Faker(locale)
        fake.seed_instance(seed)
        digits = "".join(str(self.rng.randrange(10)) for _ in range(9))
        return {
            "locale": locale,
            "delivery": {
                "name": fake.name(),
                "phone": f"+{_CALLING_CODES[locale]}{digits}",
                "zip": fake.postcode(),
                "city": fake.city(),
                "address": fake.street_address(),
                "region": _region(fake),
                "email": fake.ascii_free_email(),
            },
        }

    def order(self, items: int | None = None) -> dict[str, Any]:
        """One valid order as a JSON-ready dict: totals add up."""
        rng = self.rng
        person = rng.choice(self._people)
        uid = f"{rng.getrandbits(80):020x}"
        track = "WB" + "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(10))
        lines: list[dict[str, Any]] = []
        for _ in range(items if items is not None else rng.randint(1, 10)):
            price = rng.randint(50, 50_000)
            sale = rng.choice((0, 0, 5, 10, 15, 20, 25, 30, 50))
            lines.append({
                "chrt_id": rng.randint(1, 99_999_999), "track_number": track, "price": price,
                "rid": f"{rng.getrandbits(80):020x}", "name": rng.choice(_PRODUCTS), "sale": sale,
                "size": rng.choice(("0", "S", "M", "L", "XL", "42")), "total_price": price * (100 - sale) // 100,
                "nm_id": rng.randint(1, 99_999_999), "brand": rng.choice(_BRANDS), "status": 202,
            })  # fmt: skip
        goods = sum(i["total_price"] for i in lines)
        delivery_cost = rng.choice((0, 500, 1500))
        fee = rng.choice((0, 0, 0, 100))
        created = self._base - timedelta(seconds=rng.randint(0, 30 * 86400))
        return {
            "order_uid": uid,
            "track_number": track,
            "entry": "WBIL",
            "delivery": dict(person["delivery"]),
            "payment": {
                "transaction": uid,
                "request_id": "",
                "currency": _CURRENCIES.get(person["locale"], "EUR"),
                "provider": rng.choice(_PROVIDERS),
                "amount": goods + delivery_cost + fee,
                "payment_dt": int(created.timestamp()),
                "bank": rng.choice(_BANKS),
                "delivery_cost": delivery_cost,
                "goods_total": goods,
                "custom_fee": fee,
            },
            "items": lines,
            "locale": person["locale"].split("_")[0],
            "internal_signature": "",
            "customer_id": f"c{rng.getrandbits(32):08x}",
            "delivery_service": rng.choice(_SERVICES),
            "shardkey": str(rng.randint(0, 9)),
            "sm_id": rng.randint(1, 999),
            "date_created": utc_z(created, "seconds"),
            "oof_shard": str(rng.randint(0, 9)),
        }

    def invalid(self, kind: str, earlier: dict[str, Any] | None) -> tuple[str, bytes]:
        """A bad message of the given poison class: (order_uid or "", bytes)."""
        order = self.order()
        uid = order["order_uid"]
        if kind == DecodeError.reason:
            return uid, b'{"order_uid": "' + uid.encode() + b'", "x": "\xff\xfe"}'
        if kind == InvalidJson.reason:
            return uid, json.dumps(order).encode()[:-7]
        if kind == SchemaViolation.reason:
            broken = self.rng.choice(("amount_as_string", "missing_payment", "bad_email", "bad_currency"))
            if broken == "amount_as_string":
                order["payment"]["amount"] = str(order["payment"]["amount"])
            elif broken == "missing_payment":
                del order["payment"]
            elif broken == "bad_email":
                order["delivery"]["email"] = "not-an-email"
            else:
                order["payment"]["currency"] = "usd"
            return uid, dump(order)
        if kind == RuleViolation.reason:
            order["payment"]["amount"] += 1
            return uid, dump(order)
        if kind == OrderConflict.reason and earlier is not None:
            changed = json.loads(json.dumps(earlier))
            changed["payment"]["custom_fee"] += 10
            changed["payment"]["amount"] += 10
            return changed["order_uid"], dump(changed)
        raise ValueError(f"unknown invalid kind {kind!r}")

    def messages(self, count: int, invalid_ratio: float = 0.0, duplicate_ratio: float = 0.0) -> Iterator[Message]:
        """``count`` messages: valid orders, exact re-sends and poison of every class, in a seeded mix."""
        sent: deque[tuple[dict[str, Any], bytes]] = deque(maxlen=50)  # re-sends and conflicts pick recent ones
        conflicted: set[str] = set()
        kinds = list(INVALID_KINDS)
        for n in range(count):
            roll = self.rng.random()
            if roll < invalid_ratio:
                kind = kinds[n % len(kinds)]
                candidates = [o for o, _ in sent if o["order_uid"] not in conflicted]
                if kind == OrderConflict.reason and not candidates:
                    kind = RuleViolation.reason
                earlier = self.rng.choice(candidates) if kind == OrderConflict.reason else None
                uid, value = self.invalid(kind, earlier)
                if earlier is not None:
                    conflicted.add(uid)
                yield Message(uid.encode(), value, kind, uid)
            elif roll < invalid_ratio + duplicate_ratio and sent:
                order, value = self.rng.choice(list(sent))
                yield Message(order["order_uid"].encode(), value, "duplicate", order["order_uid"])
            else:
                order = self.order()
                value = dump(order)
                sent.append((order, value))
                yield Message(order["order_uid"].encode(), value, "valid", order["order_uid"])


def dump(order: dict[str, Any]) -> bytes:
    return json.dumps(order, ensure_ascii=False, separators=(",", ":")).encode()
