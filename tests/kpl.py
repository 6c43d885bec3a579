"""Writes KPL aggregated records for tests, so no test needs the KPL (a Java/C++ daemon) or `protobuf`.

`aggregate` builds what a KPL producer puts: magic, protobuf `AggregatedRecord`, MD5 of the protobuf. The
building blocks below it let a test write what no well-behaved producer writes (tags, explicit hash keys,
unknown fields, broken bytes) and wrap it with `wrap`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

MAGIC = b"\xf3\x89\x9a\xc2"


def aggregate(records: list[tuple[str, bytes]]) -> bytes:
    """One aggregated Kinesis record holding `records` (partition key, data), keys stored once in the table."""
    table: dict[str, int] = {}
    body = bytearray()
    messages = []
    for key, data in records:
        index = table.setdefault(key, len(table))
        messages.append(field_bytes(3, user_record(index, data)))
    for key in table:  # dicts keep insertion order, so entry i is the key given index i
        body += field_bytes(1, key.encode())
    for message in messages:
        body += message
    return wrap(bytes(body))


def wrap(body: bytes) -> bytes:
    """`body` (a serialized AggregatedRecord) framed as a Kinesis record: magic, body, MD5 of body."""
    return MAGIC + body + hashlib.md5(body).digest()


def user_record(key_index: int, data: bytes, *, hash_key_index: int | None = None,
                tags: Sequence[tuple[str, str | None]] = ()) -> bytes:
    """A serialized `Record` message (not yet wrapped as field 3 of the aggregate)."""
    out = field_varint(1, key_index)
    if hash_key_index is not None:
        out += field_varint(2, hash_key_index)
    out += field_bytes(3, data)
    for key, value in tags:
        tag = field_bytes(1, key.encode())
        if value is not None:
            tag += field_bytes(2, value.encode())
        out += field_bytes(4, tag)
    return out


def aggregated_record(keys: Iterable[str], records: Iterable[bytes], hash_keys: Iterable[str] = ()) -> bytes:
    """A serialized `AggregatedRecord` from its tables and already-serialized `Record` messages."""
    out = b"".join(field_bytes(1, key.encode()) for key in keys)
    out += b"".join(field_bytes(2, key.encode()) for key in hash_keys)
    return out + b"".join(field_bytes(3, record) for record in records)


def varint(value: int) -> bytes:
    """Base-128 little-endian groups, high bit set on all but the last."""
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field_varint(number: int, value: int) -> bytes:
    return varint(number << 3) + varint(value)


def field_bytes(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload
