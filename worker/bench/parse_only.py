"""Sluice's framing + parsing alone, in this process: what the worker's parsers cost without anything around them.

The objects are decompressed first (not timed); then, per object, the same calls the pipeline makes on a
decompressed stream: `LineFramer` over 1 MiB pieces and `StreamParser.process` on slices of `PARSE_SLICE`
records, or `JsonRecordsFramer` then `process` for JSON formats. Set next to the end-to-end and reference
figures, it shows how the worker's time splits between parsing and everything else (decompression, ids,
serialisation, batching, S3/SQS and HTTP, the event loop).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from worker.decoding import JsonRecordsFramer, LineFramer, StreamDecoder
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


def parse_object(log_type: str, key: str, data: bytes) -> tuple[int, int]:
    """(documents, failures) of one decoded object, parsed as the pipeline parses it."""
    route = route_s3_key(key, log_type)
    stream = StreamParser(log_type, ParseContext(bucket="bench", key=key, account_id=route.account_id,
                                                 region=route.region))
    docs = failures = 0
    if stream.framing == "lines":
        framer = LineFramer()
        for start in range(0, len(data), PIECE):
            frames = framer.feed(data[start : start + PIECE])
            for i in range(0, len(frames), PARSE_SLICE):
                d, f, _ = stream.process(frames[i : i + PARSE_SLICE])
                docs += len(d)
                failures += len(f)
        d, f, _ = stream.process(framer.finish())
        docs += len(d)
        failures += len(f)
    else:
        jframer = JsonRecordsFramer()
        jframer.feed(data)
        records, errors = jframer.finish()
        failures += len(errors)
        for i in range(0, len(records), PARSE_SLICE):
            d, f, _ = stream.process(records[i : i + PARSE_SLICE])
            docs += len(d)
            failures += len(f)
    d, f, _ = stream.finish()
    return docs + len(d), failures + len(f)


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
    """Up to `limit` parsed documents of one decoded object, and the input bytes they came from (for sinks
    measured alone, e.g. the Parquet sink in `sluice bench`)."""
    route = route_s3_key(key, log_type)
    stream = StreamParser(log_type, ParseContext(bucket="bench", key=key, account_id=route.account_id,
                                                 region=route.region))
    if stream.framing == "lines":
        framer = LineFramer()
        frames = framer.feed(data[: 64 << 20]) + framer.finish()
        docs, _, _ = stream.process(frames[:limit])
        used = frames[limit][0] if len(frames) > limit else len(data)
    else:
        jframer = JsonRecordsFramer()
        jframer.feed(data)
        records, _ = jframer.finish()
        docs, _, _ = stream.process(records[:limit])
        used = len(data) * min(limit, len(records)) // max(1, len(records))
    return [body for _, _, _, body in docs], used
