"""`sluice parse`: run the parsers on local files, print NDJSON documents, report failures with positions.

The same decoding, framing and parsing code as the worker, so what this prints is what would be indexed.
"""

from __future__ import annotations

import bisect
import re
import sys
from pathlib import Path
from typing import Any

import orjson

from worker.decoding import DecodeError, FramingError, JsonRecordsFramer, LineFramer, StreamDecoder
from worker.parsers import ParseContext
from worker.parsers.stream import StreamParser
from worker.routing import route_s3_key, sniff_log_type


def _read(path: Path) -> bytes:
    decoder = StreamDecoder()
    out = bytearray()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            for data in decoder.feed(chunk):
                out += data
    for data in decoder.finish():
        out += data
    return bytes(out)


def detect_log_type(path: Path, data: bytes) -> str | None:
    route = route_s3_key(str(path.resolve()))
    if route.log_type:
        return route.log_type
    return sniff_log_type(data[:65536].decode("utf-8", "replace"))


def parse_files(files: list[str], log_type: str = "auto", *, keep_original: bool = False,
                options: dict[str, Any] | None = None) -> int:
    """Parse every file; documents to stdout, failures to stderr. Exit 1 if anything failed."""
    failures = 0
    out = sys.stdout.buffer
    for name in files:
        path = Path(name)
        try:
            data = _read(path)
        except (OSError, DecodeError) as exc:
            print(f"{name}: cannot read: {exc}", file=sys.stderr)
            failures += 1
            continue
        lt = log_type if log_type != "auto" else detect_log_type(path, data)
        if lt is None:
            print(f"{name}: cannot tell the log type; pass --type", file=sys.stderr)
            failures += 1
            continue
        try:
            stream = StreamParser(lt, ParseContext(keep_original=keep_original, options=options or {}))
        except KeyError as exc:
            print(f"{name}: {exc.args[0]}", file=sys.stderr)
            return 2
        newlines = [m.start() for m in re.finditer(b"\n", data)]

        def where(offset: int, newlines: list[int] = newlines, name: str = name, lines: bool = True) -> str:
            return f"{name}:{bisect.bisect_left(newlines, offset) + 1}" if lines else f"{name}: record {offset}"

        lines = stream.framing == "lines"
        records: list[tuple[int, Any]]
        errors: list[tuple[int, str, str]] = []
        if lines:
            framer = LineFramer()
            records = [*framer.feed(data), *framer.finish()]
            errors = [(off, head, f"line of {n} bytes is too long") for off, n, head in framer.take_oversize()]
        else:
            # JSON records are numbered by position unless they came from NDJSON lines (byte offsets).
            jframer = JsonRecordsFramer()
            try:
                jframer.feed(data)
                records, errors = jframer.finish()
            except FramingError as exc:
                print(f"{name}: {exc}", file=sys.stderr)
                failures += 1
                continue
        for offset, raw, reason in errors:
            print(f"{where(offset, lines=lines)}: {reason}: {str(raw)[:200]}", file=sys.stderr)
            failures += 1
        docs, failed, _ = stream.process(records)
        more_docs, more_failed, _ = stream.finish()
        for offset, record, failed_type, reason in [*failed, *more_failed]:
            shown = f": {record[:200]!r}" if isinstance(record, str) else ""
            print(f"{where(offset, lines=lines)}: {failed_type}: {reason}{shown}", file=sys.stderr)
            failures += 1
        for _offset, _sub, _type, doc in [*docs, *more_docs]:
            out.write(orjson.dumps(doc) + b"\n")
        out.flush()
        n_failed = len(failed) + len(more_failed) + len(errors)
        print(f"{name}: {lt}: {len(docs) + len(more_docs)} documents, {n_failed} failures", file=sys.stderr)
    out.flush()
    return 1 if failures else 0
