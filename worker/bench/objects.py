"""Benchmark inputs: realistic gzip objects per log type, keyed as AWS delivers them, or the user's own files.

Sizes are counted in uncompressed bytes, since that is what the worker has to parse and what every MB/s
figure of `sluice bench` is divided by. Content is generated (deterministic for a seed), never repeated
blocks: a body of one block copied many times would gzip far better than real logs and inflate faster.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from worker.bench import BENCH_TYPES
from worker.samples import ACCOUNT, REGION, alb_lines, cloudtrail_records, vpc_flow_lines

DAY = "2026/11/22"
_START = datetime(2026, 11, 22, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class BenchObject:
    """One S3 object of the benchmark."""

    key: str
    log_type: str
    body: bytes
    """As uploaded (gzip for generated objects)."""
    raw_size: int
    """Uncompressed bytes: what throughput is measured in."""
    records: int
    """Log records the generator wrote (the documents expected; -1 when unknown, e.g. a user's file)."""


def object_key(log_type: str, seed: int) -> str:
    """A key that routes to `log_type` exactly as an AWS delivery of that type does."""
    prefix = f"AWSLogs/{ACCOUNT}"
    if log_type == "vpc_flow":
        return (f"{prefix}/vpcflowlogs/{REGION}/{DAY}/{ACCOUNT}_vpcflowlogs_{REGION}_fl-0a1b2c3d_"
                f"20261122T0000Z_{seed:08x}.log.gz")
    if log_type == "alb":
        return (f"{prefix}/elasticloadbalancing/{REGION}/{DAY}/{ACCOUNT}_elasticloadbalancing_{REGION}_"
                f"app.my-loadbalancer.50dc6c495c0c9188_20261122T0000Z_10.0.0.1_{seed:08x}.log.gz")
    if log_type == "cloudtrail":
        return f"{prefix}/CloudTrail/{REGION}/{DAY}/{ACCOUNT}_CloudTrail_{REGION}_20261122T0000Z_{seed:016x}.json.gz"
    if log_type == "s3_access":
        # S3 server access logs have no AWSLogs/ layout; the default key format names the file by time.
        t = _START + timedelta(seconds=seed % 86400)
        return f"s3-access-logs/{t:%Y-%m-%d-%H-%M-%S}-{seed & 0xFFFFFFFFFFFFFFFF:016X}"
    raise ValueError(f"no key layout for log type {log_type!r}; one of {', '.join(BENCH_TYPES)}")


_OPERATIONS = (
    ("REST.GET.OBJECT", "GET", 200), ("REST.GET.OBJECT", "GET", 200), ("REST.GET.OBJECT", "GET", 304),
    ("REST.PUT.OBJECT", "PUT", 200), ("REST.HEAD.OBJECT", "HEAD", 200), ("REST.GET.OBJECT", "GET", 404),
    ("REST.GET.BUCKET", "GET", 200), ("REST.DELETE.OBJECT", "DELETE", 204), ("REST.GET.OBJECT", "GET", 403),
)
_ERRORS = {404: "NoSuchKey", 403: "AccessDenied"}
_S3_AGENTS = (
    "aws-sdk-java/1.12.767 Linux/5.10.226-214.880.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.12+7-LTS",
    "Boto3/1.35.36 md/Botocore#1.35.36 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.11.2 cfg/retry-mode#legacy",
    "aws-cli/2.17.60 md/awscrt#0.21.5 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython",
    "S3Console/0.4",
)
_S3_KEYS = ("data/2026/11/22/part-00000.parquet", "images/logo.png", "exports/report.csv", "index.html",
            "backups/db-2026-11-22.sql.gz", "static/app.js")


def s3_access_lines(n: int, seed: int = 4, start: datetime | None = None) -> Iterator[str]:
    """S3 server access log lines (the current 26-column layout), as a busy bucket writes them."""
    rng = random.Random(seed)
    t0 = start or _START
    owner = f"{rng.randrange(16**64):064x}"
    bucket = "example-data-bucket"
    host_header = f"{bucket}.s3.{REGION}.amazonaws.com"
    for i in range(n):
        t = t0 + timedelta(seconds=i // 20)
        operation, method, status = rng.choice(_OPERATIONS)
        key = rng.choice(_S3_KEYS)
        sent = rng.randrange(200, 5_000_000) if method == "GET" and status == 200 else rng.randrange(0, 400)
        error = _ERRORS.get(status, "-")
        requester = (f"arn:aws:sts::{ACCOUNT}:assumed-role/app-role/i-0{rng.randrange(16**8):08x}"
                     if rng.random() < 0.7 else owner)
        total = rng.randrange(1, 400)
        host_id = "".join(rng.choices("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/", k=76))
        yield (f"{owner} {bucket} [{t:%d/%b/%Y:%H:%M:%S} +0000] {rng.choice(('10', '172'))}.{rng.randrange(256)}."
               f"{rng.randrange(256)}.{rng.randrange(1, 255)} {requester} {rng.randrange(16**16):016X} {operation} "
               f"{key if operation != 'REST.GET.BUCKET' else '-'} "
               f'"{method} /{bucket}/{key}{"?versionId=null" if rng.random() < 0.1 else ""} HTTP/1.1" {status} '
               f"{error} {sent if sent else '-'} {sent if status == 200 else '-'} {total} {max(1, total // 3)} "
               f'"-" "{rng.choice(_S3_AGENTS)}" - {host_id}= SigV4 TLS_AES_128_GCM_SHA256 AuthHeader '
               f"{host_header} TLSv1.3 - -")


def _line_generator(log_type: str) -> Callable[[int, int], Iterator[str]]:
    if log_type == "vpc_flow":
        return lambda n, seed: vpc_flow_lines(n, seed)
    if log_type == "alb":
        return lambda n, seed: alb_lines(n, seed)
    if log_type == "s3_access":
        return lambda n, seed: s3_access_lines(n, seed)
    raise ValueError(f"{log_type} is not a line format the benchmark generates")


def _gzip(data: bytes) -> bytes:
    """gzip at zlib's default level, as AWS services write their objects."""
    comp = zlib.compressobj(6, zlib.DEFLATED, 31)
    return comp.compress(data) + comp.flush()


def make_object(log_type: str, size: int, seed: int) -> BenchObject:
    """One object of about `size` uncompressed bytes (at least one record)."""
    key = object_key(log_type, seed)
    if log_type == "cloudtrail":
        probe = len(orjson.dumps(cloudtrail_records(50, seed))) / 50
        records = cloudtrail_records(max(1, int(size / probe)), seed)
        raw = orjson.dumps({"Records": records})
        return BenchObject(key, log_type, _gzip(raw), len(raw), len(records))
    parts: list[bytes] = []
    have = lines = 0
    header = log_type == "vpc_flow"  # the generator starts with the header line S3 delivery writes
    for line in _line_generator(log_type)(1 << 40, seed):
        data = line.encode() + b"\n"
        parts.append(data)
        have += len(data)
        if header:
            header = False
            continue
        lines += 1
        if have >= size:
            break
    raw = b"".join(parts)
    return BenchObject(key, log_type, _gzip(raw), len(raw), lines)


def generate(log_type: str, total: int, object_size: int, seed: int = 1,
             progress: Callable[[int, int], None] | None = None) -> list[BenchObject]:
    """Objects of `log_type` adding up to about `total` uncompressed bytes; each gets its own seed (and so its
    own content, key and ETag). `progress(bytes so far, total)` is called after each object."""
    objects: list[BenchObject] = []
    have = 0
    index = 0
    base = (BENCH_TYPES.index(log_type) + 1) * 1_000_000 if log_type in BENCH_TYPES else 9_000_000
    while have < total and (not objects or total - have > object_size // 10):  # no sliver of an object at the end
        obj = make_object(log_type, min(object_size, max(1, total - have)), base + seed * 10_000 + index)
        objects.append(obj)
        have += obj.raw_size
        index += 1
        if progress is not None:
            progress(have, total)
    return objects


def file_objects(specs: list[str], decode: Callable[[bytes], bytes],
                 sniff: Callable[[bytes], str | None]) -> list[BenchObject]:
    """`[TYPE=]PATH` arguments -> objects under a key of their type (detected from the content if not given),
    gzip'd unless they are already.

    `decode` turns a file's bytes into its uncompressed bytes (for the size), `sniff` the head of those into a
    log type; both are passed in so that this module stays free of the worker's decoding code.
    """
    out: list[BenchObject] = []
    for i, spec in enumerate(specs):
        log_type, sep, path = spec.partition("=")
        if not sep or "/" in log_type or log_type not in BENCH_TYPES:
            log_type, path = "", spec
        body = Path(path).read_bytes()
        raw = decode(body)
        if not log_type:
            found = sniff(raw[:65536])
            if found not in BENCH_TYPES:
                raise ValueError(f"{path}: content is {found or 'no known log type'}; the benchmark takes "
                                 f"{', '.join(BENCH_TYPES)} (write TYPE=PATH to say which)")
            log_type = found
        if body[:2] != b"\x1f\x8b":  # plain, zstd or bzip2: uploaded as gzip, as AWS delivers these types
            body = _gzip(raw)
        out.append(BenchObject(object_key(log_type, 5_000_000 + i), log_type, body, len(raw), -1))
    return out
