"""Sluice's framing + parsing alone, in this process: what the worker's parsers cost without anything around them.

The objects are decompressed first (not timed); then, per object, the same calls the pipeline makes on a
decompressed stream: `LineFramer` over 1 MiB pieces and `StreamParser.each` on slices of `PARSE_SLICE`
records, or `JsonRecordsFramer` then `each` for JSON formats. Set next to the end-to-end and reference
figures, it shows how the worker's time splits between parsing and everything else (decompression, ids,
serialisation, batching, S3/SQS and HTTP, the event loop).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from worker.decoding import JsonRecordsFramer, LineFramer, StreamDecoder
from worker.model import Serialized
from worker.parsers import ParseContext
from worker.parsers.stream import StreamParser
from worker.pipeline import PARSE_SLICE
from worker.routing import route_s3_key

PIECE = 1 << 20


@dataclass(slots=True)
class ParseResult:
    documents: int = 0
    failures: int = 0
    raw_bytes: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0


def decompress(body: bytes) -> bytes:
    """A whole object's decoded bytes (gzip, zstd, bzip2 or none, as the worker sniffs them)."""
    decoder = StreamDecoder()
    parts = list(decoder.feed(body))
    parts.extend(decoder.finish())
    return b"".join(parts)


def _stream(log_type: str, key: str) -> StreamParser:
    route = route_s3_key(key, log_type)
    return StreamParser(log_type, ParseContext(bucket="bench", key=key, account_id=route.account_id,
                                               region=route.region))


def _slices(stream: StreamParser, data: bytes,
            errors: list[Any]) -> Iterator[tuple[list[tuple[int, Any]], bool]]:
    """The records of one decoded object in the pipeline's slices, each with whether it may be serialised by
    the parser (`LineFramer.plain`): lines framed per 1 MiB piece, or the records of a whole JSON document (its
    framing errors appended to `errors`)."""
    if stream.framing == "lines":
        framer = LineFramer(check_plain=stream.parser.serializes)
        for start in range(0, len(data), PIECE):
            frames = framer.feed(data[start : start + PIECE])
            for i in range(0, len(frames), PARSE_SLICE):
                yield frames[i : i + PARSE_SLICE], framer.plain
        yield framer.finish(), framer.plain
    else:
        jframer = JsonRecordsFramer()
        jframer.feed(data)
        records, more = jframer.finish()
        errors.extend(more)
        for i in range(0, len(records), PARSE_SLICE):
            yield records[i : i + PARSE_SLICE], False


def parse_object(log_type: str, key: str, data: bytes) -> tuple[int, int]:
    """(documents, failures) of one decoded object, parsed as the pipeline parses it: `StreamParser.each`
    hands every document on as soon as it is built (here it is only counted and dropped, where the worker
    serialises it). Collecting a slice's documents first (`process`) measured 1.3-1.9x slower than the
    worker's own parsing: 256 live documents no longer fit in the CPU cache."""
    stream = _stream(log_type, key)
    errors: list[Any] = []
    docs = 0
    failures = 0

    def count(offset: int, sub: str, log_type: str, body: dict[str, Any] | Serialized) -> None:
        nonlocal docs
        docs += 1

    for frames, plain in _slices(stream, data, errors):
        failed, _ = stream.each(frames, count, serialized=plain)  # as the worker with its OpenSearch sink
        failures += len(failed)
    failed, _ = stream.finish_each(count)
    return docs, failures + len(failed) + len(errors)


def run(log_type: str, objects: list[tuple[str, bytes]]) -> ParseResult:
    """Parse every (key, decoded bytes) object; timed as a whole (wall and this process's CPU)."""
    result = ParseResult(raw_bytes=sum(len(data) for _, data in objects))
    wall, cpu = time.perf_counter(), time.process_time()
    for key, data in objects:
        docs, failures = parse_object(log_type, key, data)
        result.documents += docs
        result.failures += failures
    result.seconds = time.perf_counter() - wall
    result.cpu_seconds = time.process_time() - cpu
    return result


def documents(log_type: str, key: str, data: bytes, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Up to `limit` parsed documents of one decoded object, and about how many of its bytes they came from
    (for sinks measured alone, e.g. the Parquet sink in `sluice bench`)."""
    stream = _stream(log_type, key)
    out: list[dict[str, Any]] = []
    taken = total = 0
    for frames, _ in _slices(stream, data, []):
        total += len(frames)
        if len(out) < limit:
            d, _, _ = stream.process(frames)
            out += [body for _, _, _, body in d]
            taken = total
    return out[:limit], len(data) * taken // max(1, total)
