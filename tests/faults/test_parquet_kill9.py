"""SIGKILL a Parquet-only worker while it writes, then rerun: still exactly one row per input line.

A real `sluice run` process ingests objects whose documents go only to the Parquet sink, and is killed with
SIGKILL (no handler, no flush) several times; what a killed worker held comes back when its visibility timeout
lapses. A few objects are big enough to be cut into several parts (1 MiB files): the first kill waits for the
first part of such a unit to be in S3 and lands while the rest of that unit is still being written; the other
kills come at random moments. After a clean run drains the queue, the dataset read back with pyarrow holds
exactly the expected `sluice_id`s (object identity hash + line offset), each once: a redelivered unit rewrote
the same keys with the same rows, and a half-written file never became visible.

The RNG seed is printed; `SLUICE_KILL9_SEED=<n>` reruns the same schedule and workload.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import random
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import yaml

from tests.faults.test_kill9 import SLUICE, _events, _spawn, _tail, _wait_started, clean_run
from tests.integration.test_parquet_sink import lake_keys, read_dataset
from tests.support import make_config, queue_depth
from worker.model import Origin
from worker.samples import ACCOUNT, REGION, alb_lines, vpc_flow_lines

OBJECTS = 50
BIG = (7, 23, 38)
"""Objects with 40k lines: cut into three parts of about 1 MiB."""
KILLS = 8
VISIBILITY = 10
KILL_DELAY = (0.3, 3.0)
SOURCE = "logs"


def _object(i: int, rng: random.Random) -> tuple[str, bytes, list[int]]:
    """(key, gzip body, byte offsets of the lines that are documents)."""
    n = 40_000 if i in BIG else rng.randint(1, 60)
    if i % 2 or i in BIG:
        key = (f"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/2026/11/22/"
               f"{ACCOUNT}_vpcflowlogs_{REGION}_fl-pq_20261122T0000Z_{i:04d}.log.gz")
        lines, first_data = list(vpc_flow_lines(n, seed=7000 + i)), 1
    else:
        key = (f"AWSLogs/{ACCOUNT}/elasticloadbalancing/{REGION}/2026/11/22/"
               f"{ACCOUNT}_elasticloadbalancing_{REGION}_app.pq.1_20261122T0000Z_10.0.0.1_{i:04d}.log.gz")
        lines, first_data = list(alb_lines(n, seed=7000 + i)), 0
    at, docs = 0, []
    for j, line in enumerate(lines):
        if j >= first_data:
            docs.append(at)
        at += len(line.encode()) + 1
    return key, gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=1), docs


def _big_part_written(log_path: Path) -> bool:
    """A part of a big unit is in S3 (small units have at most 60 rows): the rest of that unit is not yet."""
    for raw in log_path.read_bytes().splitlines():
        if b"parquet_file_written" in raw and raw.startswith(b"{"):
            try:
                event = orjson.loads(raw)
            except orjson.JSONDecodeError:
                continue
            if event.get("rows", 0) >= 1000 and str(event.get("key", "")).endswith("-0.parquet"):
                return True
    return False


async def _first_part_written(proc: Any, log_path: Path, timeout: float = 60.0) -> float:
    """Wait until the first part of a big unit is written; seconds waited."""
    start = time.monotonic()
    while not _big_part_written(log_path):
        assert proc.poll() is None, f"worker exited:\n{_tail(log_path)}"
        assert time.monotonic() - start < timeout, f"no first part was written:\n{_tail(log_path)}"
        await asyncio.sleep(0.01)
    return time.monotonic() - start


async def test_kill9_while_writing_parquet_leaves_one_row_per_line(tmp_path: Path, aws_endpoint: str,
                                                                   opensearch_url: str, boto: Any, s3_queue: Any,
                                                                   backup: Any, unique_name: Any) -> None:
    assert SLUICE.exists(), SLUICE
    seed = int(os.environ.get("SLUICE_KILL9_SEED", random.SystemRandom().randrange(1 << 32)))
    print(f"\nparquet kill9 seed={seed} (rerun with SLUICE_KILL9_SEED={seed})", file=sys.stderr)
    rng = random.Random(seed)
    s3, sqs = boto.client("s3"), boto.client("sqs")
    lake = unique_name("lake")
    s3.create_bucket(Bucket=lake)
    sqs.set_queue_attributes(QueueUrl=s3_queue.queue_url, Attributes={"RedrivePolicy": (
        f'{{"deadLetterTargetArn": "{s3_queue.dlq_arn}", "maxReceiveCount": "{KILLS * 5}"}}')})

    expected: set[str] = set()
    for i in range(OBJECTS):
        key, body, offsets = _object(i, rng)
        etag = s3.put_object(Bucket=s3_queue.bucket, Key=key, Body=body)["ETag"].strip('"')
        prefix = Origin(SOURCE, "s3", s3_queue.bucket, key, f"etag:{etag}").id_prefix()
        expected |= {f"{prefix}.{off}" for off in offsets}

    cfg = make_config(aws_endpoint=aws_endpoint, opensearch_url=opensearch_url, queue_url=s3_queue.queue_url,
                      backup_bucket=backup.bucket, replay_queue_url=backup.replay_queue_url,
                      index_prefix=unique_name("pqk9"), sources__logs__sinks=["parquet"],
                      sources__logs__visibility_timeout=VISIBILITY, sources__logs__max_in_flight=4,
                      parquet={"bucket": lake, "prefix": "parquet/", "row_group_rows": 1000,
                               "max_file_bytes": 1 << 20},
                      telemetry={"metrics_port": 0, "log_level": "debug"})
    cfg_file = tmp_path / "sluice.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))

    started = time.monotonic()
    totals: Counter[str] = Counter()
    busy = 0
    for k in range(KILLS):
        log_path = tmp_path / f"worker-{k:02d}.log"
        proc = _spawn(cfg_file, log_path)
        try:
            await _wait_started(proc, log_path)
            if k == 0:
                delay = await _first_part_written(proc, log_path)
            else:
                delay = rng.uniform(*KILL_DELAY)
                await asyncio.sleep(delay)
            assert proc.poll() is None, f"worker died by itself:\n{_tail(log_path)}"
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        ev = _events(log_path)
        totals.update(ev)
        written = ev["parquet_file_written"]
        busy += bool(ev["s3_object_read"] or written)
        print(f"kill {k + 1}/{KILLS} after {delay:4.2f}s: objects read {ev['s3_object_read']:3d}, files written "
              f"{written:3d}, messages deleted {ev['sqs_message_deleted']:3d}", file=sys.stderr)
        if k % 3 == 2:  # let some held messages come back, so later kills hit redeliveries too
            await asyncio.sleep(VISIBILITY / 2)

    totals.update(await clean_run(cfg_file, tmp_path / "worker-final.log", sqs, s3_queue.queue_url, timeout=180))

    table = await asyncio.to_thread(read_dataset, aws_endpoint, lake)
    ids = table.column("sluice_id").to_pylist()
    keys = lake_keys(s3, lake)
    parts = sum(1 for k in keys if not k.endswith("-0.parquet"))
    print(f"parquet kill9 seed={seed}: {KILLS} kills ({busy} on a busy worker), {len(expected)} lines, "
          f"{len(ids)} rows in {len(keys)} files ({parts} second-or-later parts), objects read "
          f"{totals['s3_object_read']} times, files written {totals['parquet_file_written']} times, "
          f"{time.monotonic() - started:.0f} s", file=sys.stderr)
    missing = Counter(i.split(".")[0] for i in expected - set(ids))
    doubled = Counter(i.split(".")[0] for i, n in Counter(ids).items() if n > 1)
    where = {k.rsplit("/", 1)[1][2:].rsplit("-", 1)[0]: k for k in keys}
    assert len(ids) == len(expected), (f"{len(ids)} rows for {len(expected)} lines; missing per unit "
                                       f"{dict(missing)}, doubled per unit {dict(doubled)}; "
                                       f"files {[where.get(u) for u in missing]}")
    assert set(ids) == expected, f"missing {len(expected - set(ids))}, unexpected {len(set(ids) - expected)}"
    assert parts >= len(BIG), "the big objects were not cut into parts"
    assert queue_depth(sqs, s3_queue.queue_url) == 0
    assert queue_depth(sqs, s3_queue.dlq_url) == 0
    assert busy >= KILLS // 2, f"only {busy} kills hit a busy worker"
    assert totals["s3_object_read"] > OBJECTS, "no object was read twice: no kill interrupted a unit"
