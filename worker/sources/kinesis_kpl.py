"""De-aggregation of Kinesis Producer Library (KPL) records.

A KPL producer packs many user records into one Kinesis record: the 4 magic bytes `F3 89 9A C2`, a protobuf
`AggregatedRecord` (a partition key table, an explicit hash key table, and the user records, each pointing into
the tables by index), then the MD5 digest of the protobuf bytes. Each user record is a log line (or payload) of
its own, so Sluice unpacks them before parsing; a user record's position in the aggregate (KCL calls it the
sub-sequence number) is fixed by the producer, so (sequence number, index) gives ids that are stable across
redeliveries.

The protobuf is read by a small wire-format reader of our own rather than the `protobuf` package: the schema is
three tiny messages and fixed for good, and the reader skips what it does not need (tags; explicit hash keys
unless asked to filter by them) without building objects for it.

Pure code, no I/O.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

MAGIC = b"\xf3\x89\x9a\xc2"
_DIGEST_SIZE = 16
_HEAD = len(MAGIC)

# Wire types of the protobuf encoding.
_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5


class KplError(ValueError):
    """A record carries the KPL magic but is not a well-formed aggregate; the whole record is dead-lettered."""


@dataclass(frozen=True, slots=True)
class UserRecord:
    index: int
    """Position in the aggregate (KCL's sub-sequence number); 0 for a record that is not aggregated."""
    partition_key: str
    """The user record's own partition key; "" for a record that is not aggregated (the caller has the Kinesis
    record's key)."""
    data: bytes


def is_aggregated(data: bytes) -> bool:
    """True if `data` starts with the KPL magic and has room for more than the digest after it.

    Same test as the KCL: a record of exactly magic + digest (an empty protobuf) counts as not aggregated, since
    no KPL writes an aggregate without user records and such a short payload is likelier to be something else.
    """
    return len(data) > _HEAD + _DIGEST_SIZE and data.startswith(MAGIC)


def deaggregate(data: bytes, *, hash_range: tuple[int, int] | None = None) -> list[UserRecord]:
    """The user records packed in one Kinesis record, in producer order; a plain record comes back as itself.

    A record with the magic whose MD5 does not match, or whose protobuf is malformed (truncated, a required field
    missing, a key index beyond its table), raises `KplError`. The KCL instead hands such a record on as if it
    were not aggregated (and logs and drops the rest of an aggregate whose key index is out of range); we prefer
    to dead-letter the record with the reason, because magic plus a bad digest means corruption or a producer
    bug, and indexing the binary blob as a log line helps nobody.

    `hash_range` (the shard's inclusive StartingHashKey, EndingHashKey) drops the user records whose hash key
    (explicit hash key, else MD5 of the partition key) lies outside it. During a reshard the KPL may aggregate
    for a shard that no longer takes those keys; it then puts the misplaced user records again, so the copies
    left in the wrong shard are duplicates. The KCL drops the whole aggregate at the first such record; we drop
    only those records, because recent KPLs re-put only the records outside the shard's range, so the others
    exist nowhere else. Producers that aggregate without the KPL's shard map (the kinesis-aggregation library)
    put records in the wrong shard once and for all, and filtering would lose them: hence off by default.
    Dropped records leave gaps in `index`, so the ids of the others do not move.

    Deliberate leniencies, as protobuf readers have: unknown fields (wire types 0, 1, 2, 5) are skipped; a
    non-repeated field that appears twice takes its last value; partition keys that are not valid UTF-8 are
    decoded with U+FFFD replacements rather than rejected (the digest matched, so these are the producer's
    bytes). Tags are skipped unread; explicit hash keys are only checked when `hash_range` needs them.
    """
    if not is_aggregated(data):
        return [UserRecord(0, "", data)]
    end = len(data) - _DIGEST_SIZE
    digest = hashlib.md5(memoryview(data)[_HEAD:end], usedforsecurity=False).digest()
    if digest != data[end:]:
        raise KplError(
            f"KPL aggregated record: MD5 mismatch (trailer {data[end:].hex()}, computed {digest.hex()}); "
            "the record is corrupt or not a KPL aggregate"
        )
    return _aggregated_record(data, _HEAD, end, hash_range)


def _aggregated_record(buf: bytes, pos: int, end: int, hash_range: tuple[int, int] | None) -> list[UserRecord]:
    keys: list[tuple[int, int]] = []  # spans of the partition key table
    hash_keys: list[tuple[int, int]] = []  # spans of the explicit hash key table
    records: list[tuple[int, int, int, int]] = []  # (partition key index, hash key index or -1, data start, end)
    while pos < end:
        tag, pos = _varint(buf, pos, end)
        number = tag >> 3
        if number in (1, 2, 3):
            _expect(tag, _LEN, "AggregatedRecord")
            size, pos = _varint(buf, pos, end)
            stop = _span(pos, size, end, "AggregatedRecord", number)
            if number == 1:
                keys.append((pos, stop))
            elif number == 2:
                hash_keys.append((pos, stop))
            else:
                records.append(_record(buf, pos, stop, len(records)))
            pos = stop
        else:
            pos = _skip(buf, pos, end, tag, "AggregatedRecord")
    texts = [buf[start:stop].decode("utf-8", "replace") for start, stop in keys]
    out: list[UserRecord] = []
    for index, (key, hash_key, start, stop) in enumerate(records):
        if key >= len(keys):
            raise KplError(
                f"KPL aggregated record: user record {index} has partition key index {key}, "
                f"but the table has {len(keys)} key(s)"
            )
        if hash_range is not None:
            value = _hash_key(buf, keys[key], hash_keys, hash_key, index)
            if not hash_range[0] <= value <= hash_range[1]:
                continue
        out.append(UserRecord(index, texts[key], buf[start:stop]))
    return out


def _hash_key(buf: bytes, key: tuple[int, int], hash_keys: list[tuple[int, int]], hash_key: int, index: int) -> int:
    """The 128-bit hash key Kinesis places a user record by: its explicit hash key, else MD5 of its partition key."""
    if hash_key < 0:
        return int.from_bytes(hashlib.md5(buf[key[0]:key[1]], usedforsecurity=False).digest(), "big")
    if hash_key >= len(hash_keys):
        raise KplError(
            f"KPL aggregated record: user record {index} has explicit hash key index {hash_key}, "
            f"but the table has {len(hash_keys)} key(s)"
        )
    text = buf[hash_keys[hash_key][0]:hash_keys[hash_key][1]]
    if not text.isdigit():
        raise KplError(f"KPL aggregated record: user record {index} has explicit hash key {text!r}, not a number")
    return int(text)


def _record(buf: bytes, pos: int, end: int, index: int) -> tuple[int, int, int, int]:
    key = hash_key = start = stop = -1
    where = f"user record {index}"
    while pos < end:
        tag, pos = _varint(buf, pos, end)
        number = tag >> 3
        if number == 1:
            _expect(tag, _VARINT, where)
            key, pos = _varint(buf, pos, end)
        elif number == 2:
            _expect(tag, _VARINT, where)
            hash_key, pos = _varint(buf, pos, end)
        elif number == 3:
            _expect(tag, _LEN, where)
            size, pos = _varint(buf, pos, end)
            start, stop = pos, _span(pos, size, end, where, number)
            pos = stop
        else:  # 4 (tags) and unknown fields
            pos = _skip(buf, pos, end, tag, where)
    if key < 0:
        raise KplError(f"KPL aggregated record: {where} has no partition_key_index (a required field)")
    if start < 0:
        raise KplError(f"KPL aggregated record: {where} has no data (a required field)")
    return key, hash_key, start, stop


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """The unsigned varint at `pos` and the position after it."""
    if pos < end:
        byte = buf[pos]
        if byte < 0x80:  # the common case: tags, small lengths and indices
            return byte, pos + 1
    value = shift = 0
    while pos < end:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            if value >> 64:
                raise KplError(f"KPL aggregated record: varint ending at byte {pos} exceeds 64 bits")
            return value, pos
        shift += 7
        if shift >= 70:
            raise KplError(f"KPL aggregated record: varint at byte {pos} is longer than 10 bytes")
    raise KplError(f"KPL aggregated record: truncated varint at byte {pos} (protobuf ends at {end})")


def _span(pos: int, size: int, end: int, where: str, number: int) -> int:
    stop = pos + size
    if stop > end:
        raise KplError(
            f"KPL aggregated record: field {number} of {where} claims {size} bytes at byte {pos}, "
            f"but only {end - pos} remain"
        )
    return stop


def _expect(tag: int, wire_type: int, where: str) -> None:
    if tag & 7 != wire_type:
        raise KplError(
            f"KPL aggregated record: field {tag >> 3} of {where} has wire type {tag & 7}, expected {wire_type}"
        )


def _skip(buf: bytes, pos: int, end: int, tag: int, where: str) -> int:
    """The position after the value of a field we do not read."""
    if tag >> 3 == 0:
        raise KplError(f"KPL aggregated record: field number 0 in {where} at byte {pos}")
    wire_type = tag & 7
    if wire_type == _VARINT:
        return _varint(buf, pos, end)[1]
    if wire_type == _LEN:
        size, pos = _varint(buf, pos, end)
        return _span(pos, size, end, where, tag >> 3)
    if wire_type in (_FIXED64, _FIXED32):
        size = 8 if wire_type == _FIXED64 else 4
        return _span(pos, size, end, where, tag >> 3)
    raise KplError(f"KPL aggregated record: field {tag >> 3} of {where} has unsupported wire type {wire_type}")
