"""Parser throughput per log type on one core: framing + parsing, the CPU the worker spends per record.

A benchmark script, not a test. For each log type it takes the real corpus records of that type (headers
included, as S3 delivers them), repeats them to about `--mb` MB, and runs the same code the worker runs on a
decompressed stream: `LineFramer` over 1 MiB chunks, then `StreamParser.process` (continuation joins,
reroutes, expansion), or for JSON types `JsonRecordsFramer` (orjson) then `process`. Decompression, bulk
serialisation and the network are not in these figures (`bench/stream_memory.py` and, later, `sluice bench`
measure those); each type is timed best of `--repeat` runs, since these machines are noisy.

    .venv/bin/python bench/parsers.py             # every type, ~16 MB each, table on stdout
    .venv/bin/python bench/parsers.py --types alb vpc_flow --mb 64

Line formats must reach 20 MB/s (the bar of issue 3); the script exits 1 when one does not.
"""

from __future__ import annotations

import argparse
import platform
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.corpus import CORPUS, raw_inputs
from worker.app import GC_THRESHOLDS, tune_gc
from worker.decoding import JsonRecordsFramer, LineFramer, StreamDecoder
from worker.parsers import ParseContext, get_parser, log_types
from worker.parsers.stream import StreamParser
from worker.pipeline import PARSE_SLICE

LINE_BAR_MB_S = 20.0
CHUNK = 1 << 20

# Which corpus folders hold each type's records as AWS delivers them (files are filtered record by record).
FOLDERS: dict[str, tuple[str, ...]] = {
    "alb": ("elb",), "elb": ("elb",), "nlb": ("elb",), "vpc_flow": ("vpcflow",), "s3_access": ("s3access",),
    "cloudfront": ("cloudfront_standard",), "route53_public": ("route53_public",), "lambda": ("lambda",),
    "rds_postgresql": ("rds_postgresql",), "cloudtrail": ("cloudtrail",), "aws_config": ("aws_config",),
    "waf": ("waf",), "network_firewall": ("network_firewall",), "route53_resolver": ("route53_resolver",),
    "cloudwatch_logs": ("cloudwatch_subscription", "rds_mysql"),
    "generic": ("lambda", "rds_postgresql", "route53_public", "s3access"),
}


def _decoded(path: Path) -> bytes:
    decoder = StreamDecoder()
    out = bytearray()
    for data in decoder.feed(path.read_bytes()):
        out += data
    for data in decoder.finish():
        out += data
    return bytes(out)


def _files(log_type: str) -> list[Path]:
    folders = FOLDERS.get(log_type, ())
    return [CORPUS / rel for rel in raw_inputs() if rel.split("/", 1)[0] in folders]


def _own_lines(log_type: str, data: bytes) -> tuple[bytes, bytes]:
    """(leading header lines, then the lines the type's parser turns into its own documents or skips)."""
    stream = StreamParser(log_type, ParseContext())
    head: list[bytes] = []
    body: list[bytes] = []
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        docs, _failures, skipped = stream.process([(0, line.decode("utf-8", "replace"))])
        if skipped and not body:
            head.append(line)
        elif skipped or (docs and docs[0][2] == log_type):
            body.append(line)
    stream.finish()
    return b"".join(h + b"\n" for h in head), b"".join(b + b"\n" for b in body)


def _mysql_messages() -> bytes:
    """RDS MySQL records as CloudWatch Logs delivers them: one (multi-line) event message per record."""
    framer = JsonRecordsFramer()
    framer.feed(_decoded(CORPUS / "rds_mysql" / "clo_rds.log"))
    records, _ = framer.finish()
    return b"".join(
        orjson.dumps(e["message"]) + b"\n" for _, env in records for e in env.get("logEvents", [])
    )


def streams(log_type: str, size: float) -> tuple[list[bytes], str]:
    """About `size` bytes of the type's real records, as one stream per corpus file (an S3 object each): the
    file's header lines once, then its records repeated. Returns (streams, framing)."""
    cls = get_parser(log_type)
    pieces: list[tuple[bytes, bytes]] = []
    framing = "lines"
    if log_type == "rds_mysql":
        pieces, framing = [(b"", _mysql_messages())], "json-strings"
    elif cls.framing == "json_records":
        framing = "ndjson"
        for path in _files(log_type):
            framer = JsonRecordsFramer()
            framer.feed(_decoded(path))
            records, _ = framer.finish()
            pieces.append((b"", b"".join(orjson.dumps(r) + b"\n" for _, r in records)))
        if not pieces and cls.example:
            pieces = [(b"", orjson.dumps(orjson.loads(cls.example)) + b"\n")]
    else:
        pieces = [_own_lines(log_type, _decoded(path)) for path in _files(log_type)]
        if not any(body for _, body in pieces) and cls.example:
            pieces = [(b"", cls.example.encode() + b"\n")]
    pieces = [(head, body) for head, body in pieces if body]
    share = size / max(1, len(pieces))
    return [head + body * max(1, int(share / len(body))) for head, body in pieces], framing


def run_once(log_type: str, data: bytes, framing: str, options: dict[str, Any]) -> tuple[int, int, float]:
    """(documents, failures, seconds) for one pass over `data`, sliced as the pipeline slices it."""
    stream = StreamParser(log_type, ParseContext(options=options), join_lines=framing == "lines")
    docs = failures = 0
    start = time.perf_counter()
    if framing == "lines":
        framer = LineFramer()
        for i in range(0, len(data), CHUNK):
            frames = framer.feed(data[i : i + CHUNK])
            for j in range(0, len(frames), PARSE_SLICE):
                d, f, _ = stream.process(frames[j : j + PARSE_SLICE])
                docs += len(d)
                failures += len(f)
        d, f, _ = stream.process(framer.finish())
        d2, f2, _ = stream.finish()
        docs += len(d) + len(d2)
        failures += len(f) + len(f2)
    elif framing == "json-strings":
        for i, line in enumerate(data.splitlines()):
            d, f, _ = stream.process([(i, orjson.loads(line))])
            docs += len(d)
            failures += len(f)
    else:
        framer_j = JsonRecordsFramer()
        framer_j.feed(data)
        records, errors = framer_j.finish()
        failures = len(errors)
        for j in range(0, len(records), PARSE_SLICE):
            d, f, _ = stream.process(records[j : j + PARSE_SLICE])
            docs += len(d)
            failures += len(f)
    return docs, failures, time.perf_counter() - start


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--types", nargs="*", default=log_types())
    ap.add_argument("--mb", type=float, default=16.0, help="input size per type (MB)")
    ap.add_argument("--repeat", type=int, default=3, help="passes per type; the best is reported")
    args = ap.parse_args()

    tune_gc()  # the worker's collector settings: part of what a record costs
    cflags = sysconfig.get_config_var("CFLAGS") or ""
    print(f"interpreter: {sys.executable} {platform.python_version()} ({platform.python_implementation()}), "
          f"optimised build: {'-O3' in cflags or '-O2' in cflags}, lto: {'-flto' in cflags}, "
          f"gc thresholds {GC_THRESHOLDS}, {PARSE_SLICE} records per slice")
    print(f"{'log type':<20} {'framing':<8} {'records':>9} {'fail':>5} {'MB':>7} {'rec/s':>10} {'MB/s':>7}  bar")
    below = []
    for log_type in args.types:
        blobs, framing = streams(log_type, args.mb * 1e6)
        if not blobs:
            print(f"{log_type:<20} no sample records")
            continue
        size = sum(map(len, blobs))
        best = float("inf")
        docs = failures = 0
        for i in range(args.repeat):
            print(f"  {log_type}: pass {i + 1}/{args.repeat} over {size / 1e6:.1f} MB", end="\r",
                  file=sys.stderr, flush=True)
            docs = failures = 0
            seconds = 0.0
            for blob in blobs:
                d, f, t = run_once(log_type, blob, framing, {})
                docs, failures, seconds = docs + d, failures + f, seconds + t
            best = min(best, seconds)
        mb_s = size / 1e6 / best
        line_format = get_parser(log_type).framing == "lines"
        verdict = ("ok" if mb_s >= LINE_BAR_MB_S else "BELOW 20 MB/s") if line_format else "-"
        if line_format and mb_s < LINE_BAR_MB_S:
            below.append(log_type)
        print(f"{log_type:<20} {framing[:8]:<8} {docs:>9} {failures:>5} {size / 1e6:>7.1f} "
              f"{docs / best:>10,.0f} {mb_s:>7.1f}  {verdict}")
    if below:
        print(f"below the line-format bar: {', '.join(below)}")
    return 1 if below else 0


if __name__ == "__main__":
    sys.exit(main())
