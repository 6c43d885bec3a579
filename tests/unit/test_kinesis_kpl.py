"""KPL de-aggregation: round trips through the test encoder, hand-written bytes, and every way an aggregate breaks."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from tests.kpl import (
    MAGIC,
    aggregate,
    aggregated_record,
    field_bytes,
    field_varint,
    user_record,
    varint,
    wrap,
)
from worker.sources.kinesis_kpl import KplError, UserRecord, deaggregate, is_aggregated

# --- round trips ------------------------------------------------------------------------------------------------


def test_one_record() -> None:
    blob = aggregate([("pk", b'{"msg": "hello"}')])
    assert is_aggregated(blob)
    assert deaggregate(blob) == [UserRecord(0, "pk", b'{"msg": "hello"}')]


def test_many_records_keep_order_and_keys() -> None:
    records = [(f"key-{i % 7}", f"line {i}".encode()) for i in range(1000)]
    out = deaggregate(aggregate(records))
    assert [(r.partition_key, r.data) for r in out] == records
    assert [r.index for r in out] == list(range(1000))


def test_partition_key_table_is_deduplicated() -> None:
    blob = aggregate([("same", b"a"), ("other", b"b"), ("same", b"c")])
    assert blob.count(field_bytes(1, b"same")) == 1
    assert [r.partition_key for r in deaggregate(blob)] == ["same", "other", "same"]


def test_empty_data() -> None:
    assert deaggregate(aggregate([("k", b""), ("k", b"x"), ("k", b"")])) == [
        UserRecord(0, "k", b""), UserRecord(1, "k", b"x"), UserRecord(2, "k", b""),
    ]


@pytest.mark.parametrize("size", [127, 128, 300, 16_384, 1_000_000])
def test_large_data_multi_byte_lengths(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    blob = aggregate([("k", data), ("k2", b"tail")])
    assert deaggregate(blob) == [UserRecord(0, "k", data), UserRecord(1, "k2", b"tail")]


def test_many_keys_multi_byte_indices() -> None:
    records = [(f"k{i}", b"%d" % i) for i in range(300)]  # key indices above 127 take two varint bytes
    assert [(r.partition_key, r.data) for r in deaggregate(aggregate(records))] == records


def test_unicode_partition_keys() -> None:
    records = [("café", b"1"), ("日本語", b"2"), ("🦆" * 40, b"3"), ("", b"4")]
    assert [(r.partition_key, r.data) for r in deaggregate(aggregate(records))] == records


def test_tags_are_skipped() -> None:
    body = aggregated_record(["k"], [
        user_record(0, b"first", tags=[("env", "prod"), ("bare", None)]),
        user_record(0, b"second", tags=[("x" * 200, "y" * 300)]),
    ])
    assert deaggregate(wrap(body)) == [UserRecord(0, "k", b"first"), UserRecord(1, "k", b"second")]


def test_explicit_hash_keys_are_accepted() -> None:
    body = aggregated_record(["a", "b"], [
        user_record(0, b"one", hash_key_index=0),
        user_record(1, b"two"),
        user_record(1, b"three", hash_key_index=1),
    ], hash_keys=["1234", str(2**128 - 1)])
    assert deaggregate(wrap(body)) == [
        UserRecord(0, "a", b"one"), UserRecord(1, "b", b"two"), UserRecord(2, "b", b"three"),
    ]


def test_unknown_fields_of_every_skippable_wire_type() -> None:
    unknown = (
        field_varint(9, 2**63)                      # wire type 0
        + varint(10 << 3 | 1) + b"\x01" * 8         # wire type 1
        + field_bytes(11, b"\xff" * 200)            # wire type 2
        + varint(12 << 3 | 5) + b"\x02" * 4         # wire type 5
    )
    record = unknown + user_record(0, b"data") + unknown
    body = unknown + aggregated_record(["k"], [record]) + unknown
    assert deaggregate(wrap(body)) == [UserRecord(0, "k", b"data")]


def test_records_before_the_key_table() -> None:
    # Protobuf fields may come in any order; indices are resolved only once the whole message is read.
    body = field_bytes(3, user_record(1, b"x")) + field_bytes(1, b"a") + field_bytes(1, b"b")
    assert deaggregate(wrap(body)) == [UserRecord(0, "b", b"x")]


def test_repeated_singular_field_takes_last_value() -> None:
    record = field_varint(1, 5) + field_bytes(3, b"old") + field_varint(1, 0) + field_bytes(3, b"new")
    assert deaggregate(wrap(aggregated_record(["k"], [record]))) == [UserRecord(0, "k", b"new")]


def test_invalid_utf8_partition_key_is_replaced_not_rejected() -> None:
    body = field_bytes(1, b"bad\xffkey") + field_bytes(3, user_record(0, b"x"))
    assert deaggregate(wrap(body)) == [UserRecord(0, "bad\ufffdkey", b"x")]


def test_aggregate_without_user_records() -> None:
    assert deaggregate(wrap(aggregated_record(["k"], []))) == []


# --- hand-written bytes: the encoder above cannot share a mistake with the decoder -------------------------------


def test_hand_built_minimal_record() -> None:
    blob = bytes.fromhex(
        "f3899ac2"                          # magic
        "0a0161"                            # partition_key_table: "a"
        "1a06" "0800" "1a026869"            # records: {partition_key_index: 0, data: "hi"}
        "ed4ff28777966ae6df59911cb0530cc2"  # MD5 of the 11 protobuf bytes
    )
    assert deaggregate(blob) == [UserRecord(0, "a", b"hi")]


def test_hand_built_record_with_multi_byte_lengths_tags_and_hash_key() -> None:
    blob = (
        bytes.fromhex(
            "f3899ac2"
            "0a0161"              # partition_key_table: "a"
            "0a02c3a9"            # partition_key_table: "é" (2 UTF-8 bytes)
            "120135"              # explicit_hash_key_table: "5"
            "1a06" "0800" "1a026869"
            "1ad601"              # records: 214 bytes (varint d6 01)
            "0801"                # partition_key_index: 1
            "1000"                # explicit_hash_key_index: 0
            "1ac801"              # data: 200 bytes (varint c8 01)
        )
        + b"x" * 200
        + bytes.fromhex(
            "2205" "0a016b" "1200"              # tags: {key: "k", value: ""}
            "2ff0eee5b2c2bd09989aeff75b46bd6a"  # MD5 of the 235 protobuf bytes
        )
    )
    assert deaggregate(blob) == [UserRecord(0, "a", b"hi"), UserRecord(1, "é", b"x" * 200)]
    assert deaggregate(blob, hash_range=(5, 5)) == [UserRecord(1, "é", b"x" * 200)]


def test_encoder_matches_hand_built_bytes() -> None:
    assert aggregate([("a", b"hi")]) == bytes.fromhex(
        "f3899ac2" "0a0161" "1a06" "0800" "1a026869" "ed4ff28777966ae6df59911cb0530cc2"
    )
    assert varint(300) == b"\xac\x02"


# --- records that are not aggregated ----------------------------------------------------------------------------


@pytest.mark.parametrize("data", [
    b"",
    b"plain log line",
    b'{"json": true}',
    MAGIC,
    MAGIC + b"\x00" * 16,          # magic + digest of an empty protobuf: too short to be an aggregate (as the KCL)
    b"\x1f\x8b\x08\x00" + b"\x00" * 40,
    b"x" + MAGIC + b"\x00" * 40,   # magic not at the start
])
def test_not_aggregated_passes_through(data: bytes) -> None:
    assert not is_aggregated(data)
    out = deaggregate(data)
    assert out == [UserRecord(0, "", data)]
    assert out[0].data is data


# --- broken aggregates ------------------------------------------------------------------------------------------


def test_bad_md5() -> None:
    blob = bytearray(aggregate([("k", b"data")]))
    blob[-1] ^= 0x01
    with pytest.raises(KplError, match="MD5 mismatch"):
        deaggregate(bytes(blob))


def test_corrupt_body_fails_md5() -> None:
    blob = bytearray(aggregate([("k", b"data")]))
    blob[10] ^= 0x40
    with pytest.raises(KplError, match="MD5 mismatch"):
        deaggregate(bytes(blob))


def test_magic_then_garbage_fails_md5() -> None:
    with pytest.raises(KplError, match="MD5 mismatch"):
        deaggregate(MAGIC + b"not a protobuf at all, just text")


@pytest.mark.parametrize("cut", [1, 2, 3, 5, 8])
def test_truncated_protobuf(cut: int) -> None:
    body = aggregated_record(["key"], [user_record(0, b"some data " * 20)])
    with pytest.raises(KplError, match="KPL aggregated record"):
        deaggregate(wrap(body[:-cut]))  # a valid digest over the cut bytes: the parser must notice


def test_truncated_varint() -> None:
    body = aggregated_record(["k"], [user_record(0, b"x")]) + b"\x48\x80"  # unknown field 9, half a varint
    with pytest.raises(KplError, match="truncated varint"):
        deaggregate(wrap(body))


def test_length_beyond_message() -> None:
    body = field_bytes(1, b"k") + varint(3 << 3 | 2) + varint(1000) + b"short"
    with pytest.raises(KplError, match="claims 1000 bytes"):
        deaggregate(wrap(body))


def test_length_beyond_inner_message() -> None:
    # The inner data field claims more than its Record has, though the aggregate as a whole has the bytes.
    record = field_varint(1, 0) + varint(3 << 3 | 2) + varint(4) + b"ab"
    body = field_bytes(1, b"k") + field_bytes(3, record) + field_bytes(9, b"padding")
    with pytest.raises(KplError, match="user record 0"):
        deaggregate(wrap(body))


def test_partition_key_index_out_of_range() -> None:
    body = aggregated_record(["a", "b"], [user_record(0, b"ok"), user_record(2, b"bad")])
    with pytest.raises(KplError, match="user record 1 has partition key index 2, but the table has 2"):
        deaggregate(wrap(body))


def test_partition_key_index_without_table() -> None:
    with pytest.raises(KplError, match="partition key index 0"):
        deaggregate(wrap(aggregated_record([], [user_record(0, b"x")])))


def test_missing_partition_key_index() -> None:
    with pytest.raises(KplError, match="no partition_key_index"):
        deaggregate(wrap(aggregated_record(["k"], [field_bytes(3, b"data")])))


def test_missing_data() -> None:
    with pytest.raises(KplError, match="no data"):
        deaggregate(wrap(aggregated_record(["k"], [field_varint(1, 0)])))


def test_known_field_with_wrong_wire_type() -> None:
    with pytest.raises(KplError, match="wire type 0, expected 2"):
        deaggregate(wrap(field_varint(1, 7) + field_bytes(3, user_record(0, b"x"))))
    with pytest.raises(KplError, match="wire type 2, expected 0"):
        deaggregate(wrap(aggregated_record(["k"], [field_bytes(1, b"\x00") + field_bytes(3, b"x")])))


@pytest.mark.parametrize("wire_type", [3, 4, 6, 7])
def test_unsupported_wire_type(wire_type: int) -> None:
    body = aggregated_record(["k"], [user_record(0, b"x")]) + varint(15 << 3 | wire_type) + b"\x00" * 8
    with pytest.raises(KplError, match=f"unsupported wire type {wire_type}"):
        deaggregate(wrap(body))


def test_field_number_zero() -> None:
    with pytest.raises(KplError, match="field number 0"):
        deaggregate(wrap(b"\x00\x00" + aggregated_record(["k"], [user_record(0, b"x")])))


def test_varint_longer_than_ten_bytes() -> None:
    record = b"\x08" + b"\x80" * 10 + b"\x00" + field_bytes(3, b"x")
    with pytest.raises(KplError, match="longer than 10 bytes"):
        deaggregate(wrap(aggregated_record(["k"], [record])))


def test_varint_beyond_64_bits() -> None:
    record = b"\x08" + b"\xff" * 9 + b"\x7f" + field_bytes(3, b"x")
    with pytest.raises(KplError, match="exceeds 64 bits"):
        deaggregate(wrap(aggregated_record(["k"], [record])))


def test_largest_64_bit_varint_is_read() -> None:
    # 2**64 - 1 is a valid (if absurd) partition key index: it parses, then fails the table check.
    record = field_varint(1, 2**64 - 1) + field_bytes(3, b"x")
    with pytest.raises(KplError, match=f"partition key index {2**64 - 1}"):
        deaggregate(wrap(aggregated_record(["k"], [record])))


def test_kpl_error_is_a_value_error() -> None:
    assert issubclass(KplError, ValueError)


# --- hash range filter ------------------------------------------------------------------------------------------


def _md5_hash_key(key: str) -> int:
    return int.from_bytes(hashlib.md5(key.encode()).digest(), "big")


def test_hash_range_filters_by_explicit_hash_key_and_keeps_indices() -> None:
    body = aggregated_record(["a"], [
        user_record(0, b"low", hash_key_index=0),
        user_record(0, b"mid", hash_key_index=1),
        user_record(0, b"high", hash_key_index=2),
    ], hash_keys=["10", "20", "30"])
    assert deaggregate(wrap(body), hash_range=(15, 30)) == [UserRecord(1, "a", b"mid"), UserRecord(2, "a", b"high")]
    assert deaggregate(wrap(body), hash_range=(0, 2**128 - 1)) == deaggregate(wrap(body))


def test_hash_range_uses_md5_of_partition_key_without_explicit_hash_key() -> None:
    blob = aggregate([("alpha", b"1"), ("beta", b"2")])
    alpha = _md5_hash_key("alpha")
    assert deaggregate(blob, hash_range=(alpha, alpha)) == [UserRecord(0, "alpha", b"1")]


def test_hash_range_does_not_apply_to_plain_records() -> None:
    assert deaggregate(b"plain", hash_range=(0, 0)) == [UserRecord(0, "", b"plain")]


def test_hash_range_bad_explicit_hash_key() -> None:
    out_of_table = aggregated_record(["a"], [user_record(0, b"x", hash_key_index=3)], hash_keys=["1"])
    assert deaggregate(wrap(out_of_table)) == [UserRecord(0, "a", b"x")]  # unused, so unchecked
    with pytest.raises(KplError, match="explicit hash key index 3, but the table has 1"):
        deaggregate(wrap(out_of_table), hash_range=(0, 2**128 - 1))
    not_a_number = aggregated_record(["a"], [user_record(0, b"x", hash_key_index=0)], hash_keys=["12ab"])
    with pytest.raises(KplError, match="not a number"):
        deaggregate(wrap(not_a_number), hash_range=(0, 2**128 - 1))


# --- the value type ---------------------------------------------------------------------------------------------


def test_user_record_is_frozen_with_slots() -> None:
    record = UserRecord(0, "k", b"x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.index = 1  # type: ignore[misc]
    assert not hasattr(record, "__dict__")
