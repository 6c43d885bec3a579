"""OpenSearch unreachable for two minutes while objects keep arriving, with the worker as a real process.

The proxy in front of osmem first refuses connections (nothing listens: connect fails at once), then
stalls them (connections accepted, requests never answered: every bulk request times out), then refuses
again. Meanwhile an object arrives every two seconds. Proves:
- memory stays bounded: the worker's RSS (/proc/<pid>/status VmRSS, sampled every 0.5 s) stays under its
  warmed-up baseline plus an allowance derived from the configured buffers (see `_rss_allowance_mib`); the
  worker holds at most `sources.logs.max_in_flight` messages and its sink at most
  (2 x bulk.max_in_flight + 1 + sources.logs.max_in_flight) x bulk.max_docs documents (its own gauges);
- no message is deleted: the queue holds exactly the messages sent so far at every sample and the worker's
  delete counter does not move;
- messages are handed back (nacked) when their retries run out, and none reaches the DLQ; no dead letters;
- after recovery everything is indexed exactly once (count and set of ids), and the queue is empty.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import yaml

from tests.faults.proxy import FaultProxy, Mode
from tests.faults.test_bulk_throttling import all_ids, put_objects
from tests.support import backup_records, drained, make_config, os_client, queue_depth, replay_pointers, wait_for
from worker.local_servers import free_port

SLUICE = Path(sys.executable).with_name("sluice")
OUTAGE = 120.0
"""Seconds OpenSearch is unreachable: refused, then stalled from STALL[0] to STALL[1], then refused again."""
STALL = (50.0, 95.0)
ARRIVE_EVERY = 2.0
"""Seconds between two objects arriving during the outage (60 objects in all)."""
LINES = 200
"""Lines per object: 12,000 documents arrive during the outage, which osmem indexes in ~30 s after it."""
WARMUP_OBJECTS = 6
SOURCE_IN_FLIGHT, BULK_IN_FLIGHT, MAX_DOCS = 2, 4, 100
BULK_TIMEOUT = 10.0
"""Seconds before a stalled bulk request counts as a timeout (several rounds of them in the stall phase)."""
MAX_ELAPSED = 40.0


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for pid {pid}")


def _rss_allowance_mib() -> int:
    """How far above its warmed-up baseline the worker's RSS may go: 20 MiB. Why:

    - what the configuration lets it hold with these objects (27 KB decompressed, 200 documents each):
      SOURCE_IN_FLIGHT streams of one object and its parsed documents (~2.7 KiB each as Python dicts,
      measured with tracemalloc): ~1.2 MiB; the sink's (2 x BULK_IN_FLIGHT + 1 + SOURCE_IN_FLIGHT) bodies of
      MAX_DOCS documents (~0.4 KiB serialized plus the Document objects): ~0.8 MiB. About 2 MiB, plus churn
      from refused and timed-out connections, logging and allocator fragmentation (a passing run grows by
      ~3 MiB): 20 MiB leaves room for that;
    - what it must not fit: the documents that arrive during the outage (11,800 as parsed dicts: ~30 MiB,
      before their serialized bodies), so a worker that kept receiving or kept failed batches around fails
      here, and so does a leak that grows with two minutes of failed requests.
    The worker's own `sluice_messages_in_flight` and `sluice_sink_buffer_documents` gauges are also checked
    against exact bounds.
    """
    return 20


def _metrics(port: int) -> dict[str, float]:
    """Sum of every sample by metric name (labels summed), from the worker's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        out[name] = out.get(name, 0.0) + float(value)
    return out


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
            return bool(r.status == 200)
    except OSError:
        return False


async def test_opensearch_unreachable_two_minutes(tmp_path: Path, aws_endpoint: str, boto: Any, s3_queue: Any,
                                                  backup: Any, private_opensearch: Any, unique_name: Any) -> None:
    s3, sqs = boto.client("s3"), boto.client("sqs")
    bucket, queue_url = s3_queue.bucket, s3_queue.queue_url
    # With MAX_ELAPSED shortened from 300 s to 40 s, a message held through the outage is handed back every
    # ~40 s and may be received four times in two minutes; production's 300 s would hold it throughout. So
    # the redrive count is raised: the DLQ check below is about the worker, not the test's compressed time.
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"RedrivePolicy": orjson.dumps(
        {"deadLetterTargetArn": s3_queue.dlq_arn, "maxReceiveCount": "10"}).decode()})
    prefix = unique_name("unreach")
    port = free_port()
    with FaultProxy(private_opensearch.url, seed=7) as proxy:
        cfg = make_config(aws_endpoint=aws_endpoint, opensearch_url=proxy.url, queue_url=queue_url,
                          backup_bucket=backup.bucket, replay_queue_url=backup.replay_queue_url, index_prefix=prefix,
                          sources__logs__max_in_flight=SOURCE_IN_FLIGHT, sources__logs__visibility_timeout=30,
                          opensearch__bulk={"flush_interval": 0.2, "max_docs": MAX_DOCS, "timeout": BULK_TIMEOUT,
                                            "max_in_flight": BULK_IN_FLIGHT, "min_in_flight": 1},
                          opensearch__retry={"initial_backoff": 0.2, "max_backoff": 2.0, "max_elapsed": MAX_ELAPSED},
                          telemetry={"metrics_port": port, "metrics_host": "127.0.0.1"})
        cfg_file = tmp_path / "sluice.yaml"
        cfg_file.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
        log_path = tmp_path / "worker.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen([str(SLUICE), "run", "--config", str(cfg_file)],  # noqa: ASYNC220
                                    stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
        try:
            await _run(proc, port, s3, sqs, bucket, queue_url, s3_queue.dlq_url, proxy, log_path, prefix,
                       private_opensearch.url, backup)
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    await asyncio.to_thread(proc.wait, 30)
                except subprocess.TimeoutExpired:
                    proc.kill()


@dataclass
class _Figures:
    """What the run measured; printed whether it passes or fails."""

    baseline_kib: int = 0
    peak_kib: int = 0
    bound_kib: int = 0
    uploaded: int = 0
    max_held: int = 0
    max_buffered: int = 0
    outage_s: float = 0.0
    recovery_s: float = 0.0
    switches: list[str] = field(default_factory=list)
    limits: list[tuple[float, str, int]] = field(default_factory=list)
    """(seconds since the outage began, proxy mode, concurrency limit) every 0.5 s."""

    def limit_range(self, phase: str) -> str:
        v = [x for _, p, x in self.limits if p == phase]
        return f"{min(v)}..{max(v)}" if v else "-"

    def __str__(self) -> str:
        return (f"outage {self.outage_s:.0f} s ({self.uploaded} objects, {self.uploaded * LINES} documents arrived, "
                f"modes {' '.join(self.switches)}), recovery {self.recovery_s:.0f} s; RSS baseline "
                f"{self.baseline_kib / 1024:.1f} MiB, peak {self.peak_kib / 1024:.1f} MiB, bound "
                f"{self.bound_kib / 1024:.1f} MiB; messages held <= {self.max_held}, sink buffer <= "
                f"{self.max_buffered} docs; limit refuse {self.limit_range('refuse')}, stall "
                f"{self.limit_range('stall')}, after {self.limit_range('pass')}")


async def _run(proc: subprocess.Popen[bytes], port: int, s3: Any, sqs: Any, bucket: str, queue_url: str,
               dlq_url: str, proxy: FaultProxy, log_path: Path, prefix: str, os_url: str, backup: Any) -> None:
    fig = _Figures()
    try:
        await _outage_and_recovery(fig, proc, port, s3, sqs, bucket, queue_url, dlq_url, proxy, log_path, prefix,
                                   os_url, backup)
    finally:
        print(f"\nunreachable: {fig}; proxy {proxy.stats()}")


async def _outage_and_recovery(fig: _Figures, proc: subprocess.Popen[bytes], port: int, s3: Any, sqs: Any,
                               bucket: str, queue_url: str, dlq_url: str, proxy: FaultProxy, log_path: Path,
                               prefix: str, os_url: str, backup: Any) -> None:
    def alive() -> None:
        assert proc.poll() is None, f"worker exited {proc.returncode}:\n{log_path.read_text()[-3000:]}"

    deadline = time.monotonic() + 60
    while not await asyncio.to_thread(_ready, port):
        alive()
        assert time.monotonic() < deadline, "worker did not become ready"
        await asyncio.sleep(0.2)

    # Warm up (parsers, connection pools, allocator arenas), then take the baseline RSS.
    expected = await asyncio.to_thread(put_objects, s3, bucket, 0, WARMUP_OBJECTS, LINES, "u")
    await wait_for(drained(sqs, queue_url), 90, "the warm-up objects to be ingested")
    alive()
    before = await asyncio.to_thread(_metrics, port)
    for _ in range(10):
        fig.baseline_kib = max(fig.baseline_kib, _rss_kib(proc.pid))
        await asyncio.sleep(0.2)
    fig.peak_kib = fig.baseline_kib
    fig.bound_kib = fig.baseline_kib + _rss_allowance_mib() * 1024
    # Documents the sink may hold: a batch being built, a full queue, one per sender, and one batch per
    # source stream waiting to enter the full queue.
    sink_bound = (2 * BULK_IN_FLIGHT + 1 + SOURCE_IN_FLIGHT) * MAX_DOCS

    # The outage: objects keep arriving; sample memory, the queue and the worker's own gauges.
    outage_start = time.monotonic()

    async def arrive() -> None:
        nonlocal expected
        i = WARMUP_OBJECTS
        while time.monotonic() - outage_start < OUTAGE - ARRIVE_EVERY:
            expected |= await asyncio.to_thread(put_objects, s3, bucket, i, 1, LINES, "u")
            fig.uploaded += 1
            i += 1
            await asyncio.sleep(max(0.0, outage_start + (i - WARMUP_OBJECTS) * ARRIVE_EVERY - time.monotonic()))

    proxy.set("refuse")
    phase: Mode = "refuse"
    fig.switches.append("0s:refuse")
    arrivals = asyncio.create_task(arrive())
    deleted_before = before.get("sluice_sqs_messages_deleted_total", 0)
    try:
        while (elapsed := time.monotonic() - outage_start) < OUTAGE:
            alive()
            want: Mode = "stall" if STALL[0] <= elapsed < STALL[1] else "refuse"
            if want != phase:
                proxy.set(want)
                phase = want
                fig.switches.append(f"{elapsed:.0f}s:{want}")
            rss = _rss_kib(proc.pid)
            fig.peak_kib = max(fig.peak_kib, rss)
            assert rss <= fig.bound_kib, f"RSS {rss} KiB over the bound at {elapsed:.0f} s ({phase})"
            n0 = fig.uploaded
            depth = await asyncio.to_thread(queue_depth, sqs, queue_url)
            # An upload still in flight may already be notified, so the queue may hold one more than counted;
            # fewer than were sent before sampling means a message was deleted.
            assert depth >= n0, f"{depth} messages queued, {n0} sent before sampling: one was deleted"
            assert depth <= fig.uploaded + 1, f"{depth} messages queued, only {fig.uploaded} (+1 in flight) sent"
            now = await asyncio.to_thread(_metrics, port)
            assert now.get("sluice_sqs_messages_deleted_total", 0) == deleted_before, "a message was deleted"
            held = int(now.get("sluice_messages_in_flight", 0))
            buffered = int(now.get("sluice_sink_buffer_documents", 0))
            fig.max_held, fig.max_buffered = max(fig.max_held, held), max(fig.max_buffered, buffered)
            assert held <= SOURCE_IN_FLIGHT, f"{held} messages taken while OpenSearch is unreachable"
            assert buffered <= sink_bound, f"{buffered} documents buffered in the sink (bound {sink_bound})"
            fig.limits.append((elapsed, phase, int(now.get("sluice_bulk_concurrency_limit", 0))))
            await asyncio.sleep(0.5)
    finally:
        await arrivals
    during = await asyncio.to_thread(_metrics, port)
    fig.outage_s = time.monotonic() - outage_start

    # Recovery.
    proxy.set("pass")
    fig.switches.append(f"{fig.outage_s:.0f}s:pass")
    recovered_at = time.monotonic()
    is_drained = drained(sqs, queue_url)
    while not await asyncio.to_thread(is_drained):
        alive()
        now = await asyncio.to_thread(_metrics, port)
        fig.limits.append((time.monotonic() - outage_start, "pass", int(now.get("sluice_bulk_concurrency_limit", 0))))
        assert time.monotonic() - recovered_at < 300, "the queue did not drain after recovery"
        await asyncio.sleep(0.5)
    fig.recovery_s = time.monotonic() - recovered_at
    after = await asyncio.to_thread(_metrics, port)
    stats = proxy.stats()

    ids = await asyncio.to_thread(all_ids, os_client(os_url), prefix)
    assert fig.uploaded >= 55
    assert len(expected) == (WARMUP_OBJECTS + fig.uploaded) * LINES
    assert len(ids) == len(expected), f"{len(ids)} documents for {len(expected)} lines"
    assert set(ids) == expected
    # The outage was real and went the way it should: refused and stalled, requests timed out and brought
    # the limit down to its minimum, messages were handed back (not deleted), none reached the DLQ.
    assert stats["refused_listening"] >= 2 and stats["stalled"] > 0
    assert during.get("sluice_bulk_throttled_total", 0) > before.get("sluice_bulk_throttled_total", 0)
    stall_limits = [v for _, p, v in fig.limits if p == "stall"]
    assert min(stall_limits) == 1, "timeouts did not bring the concurrency limit down"
    assert max(v for _, p, v in fig.limits if p == "pass") > 1, "the limit did not grow again after recovery"
    assert during.get("sluice_sqs_messages_nacked_total", 0) > before.get("sluice_sqs_messages_nacked_total", 0)
    assert after.get("sluice_documents_dead_lettered_total", 0) == 0
    assert await asyncio.to_thread(queue_depth, sqs, dlq_url) == 0, "a message reached the DLQ"
    assert backup_records(s3, backup.bucket) == ([], [])
    assert replay_pointers(sqs, backup.replay_queue_url) == []
