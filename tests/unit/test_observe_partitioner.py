"""The partitioners trace relies on, against librdkafka's own unit-test vectors (rdmurmur2.c, rdfnv1a.c)."""

from __future__ import annotations

import zlib

import pytest

from ordersctl.observe.partitioner import UnsupportedPartitioner, fnv1a, murmur2, partition_for

SHORT = b"1234"
UNALIGNED = b"PreAmbleWillBeRemoved,ThePrePartThatIs"
KEYS = [b"kafka", b"giberish123456789", SHORT, SHORT[1:], SHORT[2:], SHORT[3:],
        UNALIGNED, UNALIGNED[1:], UNALIGNED[2:], UNALIGNED[3:], b""]  # fmt: skip
# librdkafka's unittest_murmur2: the Java client's murmur2 of each key.
MURMUR2 = [0xD067CF64, 0x8F552B0C, 0x9FC97B14, 0xE7C009CA, 0x873930DA, 0x5A4B5CA1,
           0x78424F1C, 0x4A62B377, 0xE0E4E09E, 0x62B8B43F, 0x106E08D9]  # fmt: skip
# librdkafka's unittest_fnv1a: Go's hash/fnv with Sarama's absolute value.
FNV1A = [0x0D33C4E1, 0x77A58295, 0x023BDD03, 0x2DEA3CD2, 0x740FA83E, 0x310CA263,
         0x65CBD69C, 0x6E49C79A, 0x69EED356, 0x6ABCC023, 0x7EE3623B]  # fmt: skip


@pytest.mark.parametrize(("key", "expected"), list(zip(KEYS, MURMUR2, strict=True)), ids=repr)
def test_murmur2_matches_librdkafka_and_java(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


@pytest.mark.parametrize(("key", "expected"), list(zip(KEYS, FNV1A, strict=True)), ids=repr)
def test_fnv1a_matches_librdkafka(key: bytes, expected: int) -> None:
    assert fnv1a(key) == expected


def test_murmur2_partition_is_the_positive_hash_modulo_the_count() -> None:
    # 0xd067cf64 has the top bit set: the Java client's toPositive() clears it before the modulo.
    assert partition_for(b"kafka", 7, "murmur2_random") == (0xD067CF64 & 0x7FFFFFFF) % 7 == 3
    assert partition_for(b"kafka", 7, "murmur2") == 3


def test_default_partitioner_is_crc32_like_librdkafka() -> None:
    for key in (b"kafka", b"0123456789abcdef0123", b"x"):
        assert partition_for(key, 12) == zlib.crc32(key) % 12
        assert partition_for(key, 12, "consistent") == partition_for(key, 12, "consistent_random")


def test_every_partition_is_in_range() -> None:
    keys = [f"{n:020x}".encode() for n in range(0, 10_000, 7)]
    for name in ("consistent_random", "murmur2_random", "fnv1a_random"):
        seen = {partition_for(k, 5, name) for k in keys}
        assert seen == set(range(5)), name


@pytest.mark.parametrize("name", ["random", "no_such_partitioner"])
def test_a_partitioner_that_ignores_the_key_cannot_be_traced(name: str) -> None:
    with pytest.raises(UnsupportedPartitioner):
        partition_for(b"kafka", 3, name)


def test_an_empty_key_has_no_partition_and_a_topic_has_at_least_one() -> None:
    with pytest.raises(UnsupportedPartitioner):
        partition_for(b"", 3)
    with pytest.raises(ValueError, match="at least one"):
        partition_for(b"kafka", 0)
