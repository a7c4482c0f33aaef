"""The partition a keyed message lands on, computed the way librdkafka's partitioners compute it.

``trace`` scans only the partition an order_uid maps to, so this must agree with the producer. librdkafka's
default (``partitioner=consistent_random``) is CRC32 of the key, not the Java client's murmur2; a producer set
to ``murmur2_random`` (``ORDERS_KAFKA__EXTRA='{"partitioner": "murmur2_random"}'``) agrees with Java clients.
The ``*_random`` variants differ from their base only for keys ordersctl never sends (null, or empty with
``consistent_random``), which go to a random partition and cannot be traced by key.
"""

from __future__ import annotations

import zlib

DEFAULT_PARTITIONER = "consistent_random"  # librdkafka's default for the ``partitioner`` property

_MASK32 = 0xFFFFFFFF
_MURMUR2_SEED = 0x9747B28C
_MURMUR2_M = 0x5BD1E995
_FNV1A_OFFSET = 0x811C9DC5
_FNV1A_PRIME = 0x01000193


class UnsupportedPartitioner(ValueError):
    """The configured partitioner places messages without regard to their key (``random``) or is unknown."""


def murmur2(data: bytes) -> int:
    """32-bit MurmurHash2 as Kafka's Java client and librdkafka's ``rd_murmur2`` compute it (seed 0x9747b28c,
    little-endian words)."""
    length = len(data)
    h = (_MURMUR2_SEED ^ length) & _MASK32
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _MURMUR2_M) & _MASK32
        k ^= k >> 24
        k = (k * _MURMUR2_M) & _MASK32
        h = ((h * _MURMUR2_M) & _MASK32) ^ k
    tail = data[whole:]
    if tail:
        # The C switch falls through: the highest tail byte first, then the lower ones, then one multiply.
        for shift, byte in reversed(list(enumerate(tail))):
            h ^= byte << (8 * shift)
        h = (h * _MURMUR2_M) & _MASK32
    h ^= h >> 13
    h = (h * _MURMUR2_M) & _MASK32
    h ^= h >> 15
    return h


def fnv1a(data: bytes) -> int:
    """librdkafka's ``rd_fnv1a``: 32-bit FNV-1a taken as a signed int and made positive (Sarama's rule)."""
    h = _FNV1A_OFFSET
    for byte in data:
        h = ((h ^ byte) * _FNV1A_PRIME) & _MASK32
    signed = h - (1 << 32) if h & 0x80000000 else h
    # abs(INT32_MIN) overflows back to INT32_MIN in C; as unsigned that is 0x80000000.
    return abs(signed) & _MASK32


def partition_for(key: bytes, partitions: int, partitioner: str = DEFAULT_PARTITIONER) -> int:
    """The partition of a message with this non-empty ``key`` among ``partitions``."""
    if partitions < 1:
        raise ValueError("a topic has at least one partition")
    if not key:
        raise UnsupportedPartitioner("an empty key goes to a random partition")
    if partitioner in ("consistent", "consistent_random"):
        return zlib.crc32(key) % partitions
    if partitioner in ("murmur2", "murmur2_random"):
        return (murmur2(key) & 0x7FFFFFFF) % partitions
    if partitioner in ("fnv1a", "fnv1a_random"):
        return fnv1a(key) % partitions
    raise UnsupportedPartitioner(f"partitioner {partitioner!r} does not place messages by key")
