"""Every kind of bad input in one batch, against one worker process: it keeps running, keeps the bad part in
the backup bucket with a reason, indexes the good parts of the same object, and counts it in its metrics.

Injected (one S3 object each, all notified to one queue, processed by one `sluice run` process):

- truncated.log.gz: gzip cut at 60 %. The lines before the cut are indexed; the object is copied (`decode_error`).
- corrupt.log.gz: gzip magic, then random bytes. Nothing indexed; the object is copied (`decode_error`).
- empty.log.gz: 0 bytes. Read, nothing indexed, nothing kept (there is no data to keep).
- notes.bin: no routing rule matches, the content is no known format, no `fallback_log_type`. The object is
  copied (`unknown_log_type`).
- utf8.log.gz: lines with invalid UTF-8 (see the rule below). Indexed with U+FFFD; the original bytes are kept
  (`invalid_utf8` records with `raw_base64`); a line that also fails to parse is a `parse_error` with them.
- nul.log.gz: a NUL inside a field (indexed as it is: NUL is valid UTF-8 and JSON escapes it) and a line of NUL
  padding (`parse_error`).
- long.log.gz: a 1.5 MB line over `pipeline.max_line_bytes` (64 KiB here). The other lines are indexed; the line
  is a `parse_error` record with its offset, its length and its first 64 KiB, and the whole object is copied
  (`oversize_line`), so the rest of the line is kept too.
- conflict.log.gz: a document whose field clashes with the index mapping. The others are indexed; it is a
  `rejected` record with OpenSearch's reason and the document.
- huge.log.gz, once the rest is done: ~48 MB of lines. Every line indexed, and the worker's peak memory grows
  by far less than the object (it streams).
- after.log.gz, last: a good object, indexed, to show the worker still works.

Invalid UTF-8 rule: a line with bytes that are not UTF-8 is decoded with U+FFFD replacement characters and
indexed (the event stays searchable, as every shipper does), and because the document is then not the input,
the original line is also kept in the backup bucket: an `invalid_utf8` record with the line's offset, the
document id and the exact bytes base64-encoded (`raw_base64`). A line that has invalid bytes and also fails
to parse is one `parse_error` record that carries `raw_base64` too.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3.s3.transfer
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support import all_ids, backup_records, make_config, os_client, queue_depth, replay_pointers
from worker.local_servers import free_port
from worker.model import Origin
from worker.samples import ACCOUNT, REGION, alb_lines, vpc_flow_lines

SOURCE = "logs"
MAX_LINE = 64 << 10
HUGE_LINES, HUGE_UA = 3000, 16000
"""The huge object: 3000 ALB lines with a 16 kB user agent each, ~48 MB decompressed (osmem pays per document,
so few long lines keep it quick)."""
SLUICE = Path(sys.executable).with_name("sluice")
DAY = "2026/11/22"
VPC = f"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/{DAY}/{ACCOUNT}_vpcflowlogs_{REGION}_fl-bad_20261122T0000Z_"
ALB = (f"AWSLogs/{ACCOUNT}/elasticloadbalancing/{REGION}/{DAY}/"
       f"{ACCOUNT}_elasticloadbalancing_{REGION}_app.bad.1_20261122T0000Z_10.0.0.1_")


@dataclass
class Case:
    """One object: its key and body, and what the worker must make of it."""

    key: str
    body: bytes | Path
    docs: list[int] = field(default_factory=list)
    """Byte offsets (in the decompressed stream) of the lines that must be indexed."""
    parse_errors: dict[int, bytes] = field(default_factory=dict)
    """Offset -> original line bytes of the lines that must be `parse_error` records."""
    invalid_utf8: dict[int, bytes] = field(default_factory=dict)
    """Offset -> original bytes of indexed lines that must also be kept as `invalid_utf8` records."""
    rejected: list[int] = field(default_factory=list)
    copied: str | None = None
    """Reason under which the whole object must be copied to the backup bucket."""
    size: int = 0
    """Decompressed bytes (set for the huge object)."""


def _lines_case(key: str, lines: list[bytes], *, first_doc: int = 0, bad: tuple[int, ...] = (),
                utf8: tuple[int, ...] = (), rejected: tuple[int, ...] = ()) -> Case:
    """A gzip object of `lines`; the indices in `bad` must fail to parse, `rejected` be refused by OpenSearch,
    `utf8` be indexed and kept; every other line from `first_doc` on (VPC files start with a header) indexed."""
    case = Case(key, gzip.compress(b"\n".join(lines) + b"\n"))
    at = 0
    for i, line in enumerate(lines):
        if i in bad:
            case.parse_errors[at] = line
        elif i in rejected:
            case.rejected.append(at)
        elif i >= first_doc:
            case.docs.append(at)
            if i in utf8:
                case.invalid_utf8[at] = line
        at += len(line) + 1
    return case


def _vpc(n: int, seed: int) -> list[bytes]:
    return [line.encode() for line in vpc_flow_lines(n, seed=seed)]


def _alb(n: int, seed: int) -> list[bytes]:
    return [line.encode() for line in alb_lines(n, seed=seed)]


def _truncated() -> Case:
    lines = _vpc(400, 41)
    whole = gzip.compress(b"\n".join(lines) + b"\n")
    cut = whole[: len(whole) * 6 // 10]
    # What any inflater can recover from the cut bytes; complete lines of it are the good part.
    prefix = zlib.decompressobj(31).decompress(cut)
    complete = prefix.count(b"\n")
    case = Case(VPC + "truncated.log.gz", cut, copied="decode_error")
    at = 0
    for i, line in enumerate(lines[:complete]):
        if i >= 1:
            case.docs.append(at)
        at += len(line) + 1
    assert 50 < len(case.docs) < 399
    return case


def _corrupt() -> Case:
    body = b"\x1f\x8b" + random.Random(43).randbytes(64 << 10)
    try:
        out = zlib.decompressobj(31).decompress(body)
    except zlib.error:
        out = b""
    assert b"\n" not in out, "pick another seed: the random bytes inflate to a line"
    return Case(VPC + "corrupt.log.gz", body, copied="decode_error")


def _huge(tmp: Path) -> Case:
    """Written to disk line by line: the test itself never holds the object."""
    path = tmp / "huge.log.gz"
    rng = random.Random(44)
    words = [f"{w}/{v}.{rng.randrange(100)}" for w in ("Mozilla", "AppleWebKit", "Chrome", "Safari", "Gecko",
                                                       "Edge", "Mobile", "Build", "KHTML", "like") for v in range(9)]
    case = Case(ALB + "huge.log.gz", path)
    at = 0
    with gzip.open(path, "wb", compresslevel=1) as f:
        for line in alb_lines(HUGE_LINES, seed=44):
            ua = " ".join(rng.choice(words) for _ in range(HUGE_UA // 12))[:HUGE_UA]
            parts = line.split('"')
            parts[3] = ua  # the user agent: the second quoted column
            raw = '"'.join(parts)
            data = raw.encode() + b"\n"
            f.write(data)
            case.docs.append(at)
            at += len(data)
    case.size = at
    return case


def _utf8() -> Case:
    lines = _alb(40, 45)
    bad_bytes = (b"\xff\xfe", b"\x80", b"caf\xe9", b"\xe2\x82")  # not UTF-8, lone continuation, Latin-1, cut
    utf8 = (3, 11, 19, 27)
    for i, junk in zip(utf8, bad_bytes, strict=True):
        lines[i] = lines[i].replace(b'"www.example.com"', b'"www.ex' + junk + b'ample.com"', 1)
    lines[33] = b"\xff\xfe not a log line at all \x80"
    return _lines_case(ALB + "utf8.log.gz", lines, bad=(33,), utf8=utf8)


def _nul() -> Case:
    lines = _alb(30, 46)
    lines[5] = lines[5].replace(b"TID_", b"TID_\x00", 1)
    lines[12] = b"\x00" * 300
    return _lines_case(ALB + "nul.log.gz", lines, bad=(12,))


def _long() -> Case:
    lines = _vpc(60, 47)
    lines.insert(30, b"x" * 1_500_000)
    case = _lines_case(VPC + "long.log.gz", lines, first_doc=1, bad=(30,))
    case.copied = "oversize_line"  # the record keeps the head only: the whole object is kept as well
    return case


def _conflict() -> Case:
    lines = _vpc(50, 48)
    moved = lines[20].split()
    moved[10], moved[11] = b"1795392000", b"1795392060"  # 2026-11-23: lands in the conflicting index
    lines[20] = b" ".join(moved)
    return _lines_case(VPC + "conflict.log.gz", lines, first_doc=1, rejected=(20,))


def _unknown() -> Case:
    text = b"".join(b"%d some application wrote this, in no format anybody knows\n" % i for i in range(200))
    return Case("misc/app/notes.bin", text, copied="unknown_log_type")


def _put(s3: Any, bucket: str, case: Case) -> str:
    """Upload in one PUT (a multipart upload makes moto notify twice) and return the ETag the ids derive from."""
    if isinstance(case.body, Path):
        s3.upload_file(str(case.body), bucket, case.key,
                       Config=boto3.s3.transfer.TransferConfig(multipart_threshold=1 << 30))
    else:
        s3.put_object(Bucket=bucket, Key=case.key, Body=case.body)
    etag: str = s3.head_object(Bucket=bucket, Key=case.key)["ETag"].strip('"')
    return etag


def _reset_peak(pid: int) -> None:
    """Start VmHWM (peak RSS) afresh from the current RSS (Linux: `5` to /proc/<pid>/clear_refs)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def _rss(pid: int, what: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(what + ":"):
                return int(line.split()[1]) << 10
    raise AssertionError(f"no {what} for pid {pid}")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _metrics(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    status, text = _get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def _sum(metrics: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in metrics.items() if n == name and set(labels.items()) <= ls)


def _spawn(cfg_file: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([str(SLUICE), "run", "--config", str(cfg_file)], stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


def _started(log: Path) -> bool:
    return b'"worker_started"' in log.read_bytes()


async def _drained(sqs: Any, url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    empty = 0
    while empty < 2:
        assert proc.poll() is None, f"the worker died:\n{_tail(log)}"
        assert time.monotonic() < deadline, f"queue not drained within {timeout} s:\n{_tail(log)}"
        await asyncio.sleep(0.5)
        empty = empty + 1 if await asyncio.to_thread(queue_depth, sqs, url) == 0 else 0


async def test_bad_inputs_are_kept_and_good_parts_indexed(tmp_path: Path, aws_endpoint: str, opensearch_url: str,
                                                          boto: Any, s3_queue: Any, backup: Any,
                                                          unique_name: Any) -> None:
    s3, sqs = boto.client("s3"), boto.client("sqs")
    client = os_client(opensearch_url)
    prefix = unique_name("bad")
    # The mapping conflict: the index of 2026-11-23 exists with destination.port mapped as an ip.
    client.indices.create(index=f"{prefix}-vpc_flow-2026.11.23", body={
        "mappings": {"properties": {"destination": {"properties": {"port": {"type": "ip"}}}}}})
    port = free_port()
    cfg = make_config(aws_endpoint=aws_endpoint, opensearch_url=opensearch_url, queue_url=s3_queue.queue_url,
                      backup_bucket=backup.bucket, replay_queue_url=backup.replay_queue_url, index_prefix=prefix,
                      pipeline={"max_line_bytes": MAX_LINE},
                      # Small bulk bodies and few of them: the sink's share of memory is a few MB, so the
                      # huge object's 48 MB would show if anything held it.
                      opensearch__bulk={"flush_interval": 0.2, "max_bytes": 1 << 20, "max_in_flight": 2},
                      telemetry={"metrics_port": port, "metrics_host": "127.0.0.1"})
    cfg_file = tmp_path / "sluice.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    log = tmp_path / "worker.log"
    proc = _spawn(cfg_file, log)
    try:
        deadline = time.monotonic() + 60
        while not _started(log):
            assert proc.poll() is None and time.monotonic() < deadline, _tail(log)
            await asyncio.sleep(0.05)

        # 1. Every bad input at once.
        cases = [_truncated(), _corrupt(), Case(VPC + "empty.log.gz", b""), _unknown(), _utf8(), _nul(), _long(),
                 _conflict()]
        etags: dict[str, str] = {}
        for case in cases:
            etags[case.key] = _put(s3, s3_queue.bucket, case)
        started = time.monotonic()
        await _drained(sqs, s3_queue.queue_url, proc, log, timeout=120)
        took = time.monotonic() - started
        assert (await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/healthz"))[0] == 200

        # 2. The huge object, once the worker is warm (clients and parsers loaded): its peak memory is the
        # working set of the stream, not the size of the object.
        huge = _huge(tmp_path)
        cases.append(huge)
        _reset_peak(proc.pid)
        warm = _rss(proc.pid, "VmHWM")
        etags[huge.key] = _put(s3, s3_queue.bucket, huge)
        started = time.monotonic()
        await _drained(sqs, s3_queue.queue_url, proc, log, timeout=300)
        took_huge = time.monotonic() - started
        peak = _rss(proc.pid, "VmHWM")

        # 3. Still working: healthy, and a good object sent after all this is indexed.
        assert (await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/healthz"))[0] == 200
        after = _lines_case(VPC + "after.log.gz", _vpc(25, 49), first_doc=1)
        cases.append(after)
        etags[after.key] = _put(s3, s3_queue.bucket, after)
        await _drained(sqs, s3_queue.queue_url, proc, log, timeout=60)
        metrics = await asyncio.to_thread(_metrics, port)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(proc.wait, 30) == 0, _tail(log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    # --- the index: exactly the good lines of every object --------------------------------------------------
    ids = Counter(await asyncio.to_thread(all_ids, client, prefix))
    assert max(ids.values()) == 1, "a document is in two indices"
    by_object: dict[str, set[str]] = {}
    for doc_id in ids:
        by_object.setdefault(doc_id.split(".", 1)[0], set()).add(doc_id)
    prefixes = {c.key: Origin(SOURCE, "s3", s3_queue.bucket, c.key, f"etag:{etags[c.key]}").id_prefix() for c in cases}
    for case in cases:
        expected = {f"{prefixes[case.key]}.{off}" for off in case.docs}
        got = by_object.pop(prefixes[case.key], set())
        assert got == expected, f"{case.key}: {len(got)} indexed, {len(expected)} expected"
    assert not by_object, "documents from no known object"

    # --- the backup bucket: every bad part with its reason ----------------------------------------------------
    records, objects = backup_records(s3, backup.bucket)
    by_reason: dict[str, dict[tuple[str, int], dict[str, Any]]] = {}
    for rec in records:
        by_reason.setdefault(rec["reason"], {})[(rec["origin"]["key"], rec.get("offset", -1))] = rec
    assert len(records) == sum(len(r) for r in by_reason.values()), "a record was written twice"
    assert set(by_reason) == {"parse_error", "invalid_utf8", "rejected"}, sorted(by_reason)

    parse_errors = {(c.key, off): raw for c in cases for off, raw in c.parse_errors.items()}
    assert set(by_reason["parse_error"]) == set(parse_errors)
    for where, raw in parse_errors.items():
        rec = by_reason["parse_error"][where]
        if len(raw) > MAX_LINE:
            assert rec["raw"].encode() == raw[:MAX_LINE] and str(len(raw)) in rec["detail"]
        elif "raw_base64" in rec:
            assert base64.b64decode(rec["raw_base64"]) == raw, where
        else:
            assert rec["raw"].encode() == raw, where
    # A parse error whose line had invalid UTF-8 keeps its exact bytes.
    utf8 = next(c for c in cases if c.key.endswith("utf8.log.gz"))
    assert "raw_base64" in by_reason["parse_error"][(utf8.key, min(utf8.parse_errors))]

    invalid = {(c.key, off): raw for c in cases for off, raw in c.invalid_utf8.items()}
    assert set(by_reason["invalid_utf8"]) == set(invalid)
    for (key, off), raw in invalid.items():
        rec = by_reason["invalid_utf8"][(key, off)]
        assert base64.b64decode(rec["raw_base64"]) == raw
        assert rec["id"] == f"{prefixes[key]}.{off}" and "\ufffd" in rec["raw"]

    rejected = {(c.key, off) for c in cases for off in c.rejected}
    assert set(by_reason["rejected"]) == rejected
    for rec in by_reason["rejected"].values():
        assert "400" in rec["detail"] and "mapper_parsing_exception" in rec["detail"]
        assert rec["document"]["destination"]["port"] and rec["id"].startswith(prefixes[rec["origin"]["key"]])

    copies = {c.key: c.copied for c in cases if c.copied}
    kept = {}
    for key in objects:
        head = s3.head_object(Bucket=backup.bucket, Key=key)
        source = next(k for k in copies if key.endswith("/" + k))
        kept[source] = head["Metadata"]["sluice-reason"]
        original = next(c for c in cases if c.key == source)
        assert isinstance(original.body, bytes)
        assert s3.get_object(Bucket=backup.bucket, Key=key)["Body"].read() == original.body
    assert kept == copies
    pointers = replay_pointers(sqs, backup.replay_queue_url)
    assert sum(p.get("records", 0) for p in pointers if p["kind"] == "records") == len(records)
    assert sorted(p["reason"] for p in pointers if p["kind"] == "object") == sorted(copies.values())

    # --- the metrics --------------------------------------------------------------------------------------
    dead = Counter(r["reason"] for r in records) + Counter(copies.values())
    for reason, n in dead.items():
        assert _sum(metrics, "sluice_documents_dead_lettered_total", reason=reason) == n, reason
    assert _sum(metrics, "sluice_parse_failures_total") == len(parse_errors)
    assert _sum(metrics, "sluice_dead_letter_objects_written_total", kind="object_copy") == len(copies)
    assert _sum(metrics, "sluice_documents_indexed_total", result="created") == sum(len(c.docs) for c in cases)
    assert _sum(metrics, "sluice_sqs_messages_deleted_total") == len(cases)
    assert _sum(metrics, "sluice_sqs_messages_nacked_total") == 0
    assert queue_depth(sqs, s3_queue.queue_url) == 0 and queue_depth(sqs, s3_queue.dlq_url) == 0

    # --- memory: the huge object streamed through ----------------------------------------------------------
    growth = peak - warm
    print(f"\nbad inputs: {len(cases) - 2} bad objects in {took:.1f} s, the huge one ({huge.size >> 20} MB, "
          f"{len(huge.docs)} lines) in {took_huge:.1f} s; {len(ids)} documents; dead letters {dict(dead)}; worker "
          f"RSS {warm >> 20} MB before the huge object, peak {peak >> 20} MB", file=sys.stderr)
    assert growth < huge.size // 2, f"worker grew by {growth >> 20} MB for a {huge.size >> 20} MB object"
