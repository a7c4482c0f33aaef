"""The life of one order: its records on the orders topic, its dead letters, what PostgreSQL stored, its
"order saved" event and whether Redis caches it. Ids, offsets, times and reasons only: never its content."""

from __future__ import annotations

from datetime import UTC, datetime

from confluent_kafka import Message

from ordersctl.adapters.kafka_headers import header_dict, header_pairs
from ordersctl.adapters.pipeline_queries import PendingEvent, pending_events, stored_order
from ordersctl.cache.redis_layer import key as cache_key
from ordersctl.observe.dead_letters import dead_letters_of
from ordersctl.observe.partitioner import DEFAULT_PARTITIONER, partition_for
from ordersctl.observe.sources import Sources, attempt
from ordersctl.observe.trace_model import (
    CacheFacts,
    EventTrail,
    OrderRecord,
    OrderTrace,
    PublishedEvent,
    StoredFacts,
    TopicTrail,
)


def _stamp(msg: Message) -> datetime | None:
    _kind, millis = msg.timestamp()
    return datetime.fromtimestamp(millis / 1000, UTC) if millis > 0 else None


def event_header(msg: Message, name: str) -> str | None:
    """A header of a record on the events topic; None when it has none, or headers that cannot be read (a name
    that is not UTF-8: anyone may write to the topic)."""
    return header_dict(header_pairs(msg)).get(name)


def partitioner_of(src: Sources) -> str:
    """The partitioner our producers use: librdkafka's default unless the settings pass another one."""
    return src.settings.kafka.extra.get("partitioner", DEFAULT_PARTITIONER)


Scanned = tuple[int, tuple[int, int], list[Message]]  # partition, [from, to) offsets, the records with the key


def records_with_key(src: Sources, topic: str, key: bytes, since: datetime) -> Scanned:
    """Only the partition the producer's partitioner puts ``key`` on is read, from the first record written at
    or after ``since`` to the end."""
    parts = src.kafka.partitions(topic)
    partition = partition_for(key, len(parts), partitioner_of(src))
    start = src.kafka.offsets_at(topic, [partition], since)[partition]
    end = src.kafka.watermarks(topic, [partition])[partition][1]
    return partition, (start, end), [m for m in src.kafka.scan(topic, partition, start, end) if m.key() == key]


def orders_trail(src: Sources, order_uid: str, since: datetime) -> TopicTrail:
    k = src.settings.kafka
    partition, scanned, found = records_with_key(src, k.orders_topic, order_uid.encode(), since)
    committed = src.kafka.committed(k.group_id, k.orders_topic, [partition]).get(partition)
    records = []
    for msg in found:
        offset = msg.offset() or 0
        records.append(OrderRecord(offset, _stamp(msg), committed is not None and offset < committed))
    return TopicTrail(k.orders_topic, partition, partitioner_of(src), scanned, committed, tuple(records))


def postgres_facts(src: Sources, order_uid: str) -> tuple[StoredFacts, tuple[PendingEvent, ...]]:
    """The stored order's facts and its events still in the outbox."""
    with src.connect() as conn:
        stored = stored_order(conn, order_uid)
        pending = tuple(pending_events(conn, order_uid)) if stored is not None else ()
    if stored is None:
        return StoredFacts(False), ()
    return StoredFacts(True, stored.stored_at, stored.content_hash.hex(), stored.items), pending


def published_events(src: Sources, order_uid: str, since: datetime) -> tuple[PublishedEvent, ...]:
    partition, _scanned, found = records_with_key(src, src.settings.kafka.events_topic, order_uid.encode(), since)
    return tuple(PublishedEvent(partition, m.offset() or 0, _stamp(m), event_header(m, "event-id")) for m in found)


def cache_facts(src: Sources, order_uid: str) -> CacheFacts:
    name = cache_key(order_uid)
    assert src.redis is not None  # read only when Redis is on
    ttl = src.redis.ttl(name)
    # Redis answers -2 for no such key, -1 for a key without expiry, else the seconds left.
    seconds = ttl if isinstance(ttl, int) else -2
    return CacheFacts(seconds != -2, name, seconds if seconds >= 0 else None)


def _event(src: Sources, order_uid: str, since: datetime, pending: tuple[PendingEvent, ...],
           unread: dict[str, str]) -> EventTrail:  # fmt: skip
    published = None
    if "kafka" not in unread:
        published = attempt("events", unread, lambda: published_events(src, order_uid, since))
    return EventTrail(src.settings.kafka.events_topic, pending, published)


def trace_order(src: Sources, order_uid: str, since: datetime) -> OrderTrace:
    """Look for one order everywhere; a source that cannot be read is named in ``unread``, never raised."""
    k = src.settings.kafka
    unread: dict[str, str] = {}
    # One quick question first: with Kafka down, each Kafka read would wait out its own timeout.
    attempt("kafka", unread, lambda: src.kafka.ping(k.orders_topic))
    orders = dlq = None
    if "kafka" not in unread:
        orders = attempt("orders", unread, lambda: orders_trail(src, order_uid, since))
        reader = src.dlq_reader(k.dlq_topic)
        dlq = attempt("dlq", unread, lambda: tuple(dead_letters_of(reader, order_uid, since)))
    pg = attempt("postgres", unread, lambda: postgres_facts(src, order_uid))
    stored = pg[0] if pg is not None else None
    event = _event(src, order_uid, since, pg[1], unread) if pg is not None and pg[0].stored else None
    cache = attempt("redis", unread, lambda: cache_facts(src, order_uid)) if src.redis is not None else None
    return OrderTrace(order_uid, since, orders, dlq, stored, event, cache, unread)
