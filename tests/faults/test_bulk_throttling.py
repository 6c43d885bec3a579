"""OpenSearch pushes back (429 for 30% of bulk items, or 503 for whole requests) for a while, then recovers.

Proves, through a real proxy in front of a real osmem (tests/faults/proxy.py):
- every document is indexed exactly once: the count and the set of `_id`s across all indices equal the ids
  derived from the input (no loss, no duplicate in another index), no 409 (nothing was sent twice after
  being accepted), no dead letter;
- the adaptive concurrency limit (gauge `sluice_bulk_concurrency_limit`, sampled every 0.1 s) grew while
  OpenSearch was healthy, shrank during the storm, and grew back after it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from tests.faults.proxy import FaultProxy
from tests.support import (
    RunningWorker,
    all_ids,
    backup_records,
    drained,
    make_config,
    metric,
    os_client,
    replay_pointers,
    wait_for,
)
from worker.model import Origin
from worker.samples import ACCOUNT, REGION, gzip_lines, vpc_flow_lines

LINES = 100
"""Documents per object. osmem indexes these at only ~500/s on 2 cores, so volumes stay small; `max_docs` 25
makes four bulk requests of each object, so AIMD still sees many windows."""
MAX_IN_FLIGHT, MAX_DOCS = 8, 25
HEALTHY, STORM, RECOVERED = 16, 16, 24
"""Objects uploaded in each phase."""
LIMIT = "sluice_bulk_concurrency_limit"


# --- helpers shared with test_opensearch_unreachable.py --------------------------------------------------


def vpc_object(bucket: str, i: int, lines: int, tag: str) -> tuple[str, bytes, list[int]]:
    """(key, gzip body, byte offsets of the document lines): VPC flow logs, a header line first."""
    key = f"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/2026/11/22/{ACCOUNT}_vpcflowlogs_{REGION}_fl-{tag}_{i:04d}.log.gz"
    text = list(vpc_flow_lines(lines, seed=hash((tag, i)) & 0xFFFF))
    offsets, pos = [], 0
    for j, line in enumerate(text):
        if j:
            offsets.append(pos)
        pos += len(line.encode()) + 1
    return key, gzip_lines(text), offsets


def put_objects(s3: Any, bucket: str, first: int, count: int, lines: int, tag: str) -> set[str]:
    """Upload objects `first`..`first+count-1`; returns the ids their documents must get (as the worker
    derives them: a hash of bucket, key and `etag:` version tag, then the line's byte offset)."""
    ids: set[str] = set()
    for i in range(first, first + count):
        key, body, offsets = vpc_object(bucket, i, lines, tag)
        etag = s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
        prefix = Origin("logs", "s3", bucket, key, f"etag:{etag}").id_prefix()
        ids |= {f"{prefix}.{off}" for off in offsets}
    return ids


@dataclass
class LimitTrace:
    """The concurrency limit gauge sampled every `every` seconds, each sample tagged with the test's phase."""

    every: float = 0.1
    phase: str = "start"
    samples: list[tuple[float, str, int]] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)

    async def run(self) -> None:
        while True:
            self.samples.append((time.monotonic() - self.t0, self.phase, int(metric(LIMIT))))
            await asyncio.sleep(self.every)

    def enter(self, phase: str) -> None:
        """Close the current phase with a fresh sample (so a change just before the switch is not missed)."""
        self.samples.append((time.monotonic() - self.t0, self.phase, int(metric(LIMIT))))
        self.phase = phase

    def changes(self) -> str:
        """The trace as `t:phase:limit` at each change, for the figures."""
        out, last = [], None
        for t, phase, v in self.samples:
            if v != last:
                out.append(f"{t:.1f}s:{phase[0]}:{v}")
                last = v
        return " ".join(out)

    def values(self, phase: str) -> list[int]:
        return [v for _, p, v in self.samples if p == phase]

    def summary(self) -> str:
        parts = []
        for phase in dict.fromkeys(p for _, p, _ in self.samples):
            v = self.values(phase)
            parts.append(f"{phase}: n={len(v)} min={min(v)} max={max(v)} last={v[-1]}")
        return "; ".join(parts)


# --- the storm tests --------------------------------------------------------------------------------------


async def _storm(fault: dict[str, Any], storm_seconds: float, aws_endpoint: str, boto: Any, s3_queue: Any,
                 backup: Any, private_opensearch: Any, unique_name: Any) -> tuple[LimitTrace, dict[str, int]]:
    """Healthy -> storm (objects keep arriving) -> healthy; asserts exactly-once; returns the limit trace."""
    s3, sqs = boto.client("s3"), boto.client("sqs")
    prefix = unique_name("storm")
    bucket = s3_queue.bucket
    exists_before = metric("sluice_documents_indexed_total", result="exists")
    with FaultProxy(private_opensearch.url, seed=5) as proxy:
        cfg = make_config(aws_endpoint=aws_endpoint, opensearch_url=proxy.url, queue_url=s3_queue.queue_url,
                          backup_bucket=backup.bucket, replay_queue_url=backup.replay_queue_url, index_prefix=prefix,
                          sources__logs__max_in_flight=6,
                          opensearch__bulk={"flush_interval": 0.2, "max_docs": MAX_DOCS, "timeout": 30,
                                            "max_in_flight": MAX_IN_FLIGHT, "min_in_flight": 1},
                          # Long enough that no item gives up during the storm: the test is about the sink
                          # riding it out, not about redelivery.
                          opensearch__retry={"initial_backoff": 0.2, "max_backoff": 1.0, "max_elapsed": 90})
        trace = LimitTrace()
        expected: set[str] = set()
        async with RunningWorker(cfg):
            sampler = asyncio.create_task(trace.run())
            try:
                trace.enter("healthy")
                expected |= await asyncio.to_thread(put_objects, s3, bucket, 0, HEALTHY, LINES, "a")
                await wait_for(lambda: metric(LIMIT) >= 5, 60, "the limit to grow while OpenSearch is healthy")

                trace.enter("storm")
                proxy.set(fault["mode"], **{k: v for k, v in fault.items() if k != "mode"})
                storm_start = time.monotonic()
                expected |= await asyncio.to_thread(put_objects, s3, bucket, HEALTHY, STORM, LINES, "a")
                await asyncio.sleep(storm_seconds - (time.monotonic() - storm_start))
                proxy.set("pass")

                trace.enter("recovered")
                expected |= await asyncio.to_thread(put_objects, s3, bucket, HEALTHY + STORM, RECOVERED, LINES, "a")
                await wait_for(drained(sqs, s3_queue.queue_url), 180, "the queue to drain after the storm")
                trace.enter("done")
            finally:
                sampler.cancel()
        stats = proxy.stats()
    ids = await asyncio.to_thread(all_ids, os_client(private_opensearch.url), prefix)
    assert len(expected) == (HEALTHY + STORM + RECOVERED) * LINES
    assert len(ids) == len(expected), f"{len(ids)} documents for {len(expected)} lines"
    assert set(ids) == expected
    assert metric("sluice_documents_indexed_total", result="exists") == exists_before, \
        "a document was sent again after OpenSearch had accepted it"
    assert backup_records(s3, backup.bucket) == ([], [])
    assert replay_pointers(sqs, backup.replay_queue_url) == []
    return trace, stats


def _assert_shrank_and_grew_back(trace: LimitTrace) -> None:
    healthy, storm, after = trace.values("healthy"), trace.values("storm"), trace.values("recovered")
    why = trace.summary()
    assert max(healthy) >= 5, why
    assert min(storm) <= min(2, max(healthy) // 2), f"the limit did not shrink during the storm: {why}"
    assert max(after) >= max(healthy), f"the limit did not grow back after the storm: {why}"


async def test_item_429_storm_then_recovery(aws_endpoint: str, boto: Any, s3_queue: Any, backup: Any,
                                            private_opensearch: Any, unique_name: Any) -> None:
    throttled_before = metric("sluice_bulk_throttled_total", kind="item_429")
    trace, stats = await _storm({"mode": "throttle_items", "share": 0.3}, 15.0, aws_endpoint, boto, s3_queue, backup,
                                private_opensearch, unique_name)
    print(f"\nitem 429 storm: {trace.summary()}; proxy {stats}\n{trace.changes()}")
    _assert_shrank_and_grew_back(trace)
    # The proxy threw back items, and the worker counted every one it was told about.
    assert stats["items_throttled"] > 0
    assert metric("sluice_bulk_throttled_total", kind="item_429") - throttled_before == stats["items_throttled"]


async def test_request_503_storm_then_recovery(aws_endpoint: str, boto: Any, s3_queue: Any, backup: Any,
                                               private_opensearch: Any, unique_name: Any) -> None:
    throttled_before = metric("sluice_bulk_throttled_total", kind="request_503")
    trace, stats = await _storm({"mode": "status", "status": 503, "share": 0.5}, 10.0, aws_endpoint, boto, s3_queue,
                                backup, private_opensearch, unique_name)
    print(f"\nrequest 503 storm: {trace.summary()}; proxy {stats}\n{trace.changes()}")
    _assert_shrank_and_grew_back(trace)
    assert stats["status_503"] > 0
    assert metric("sluice_bulk_throttled_total", kind="request_503") - throttled_before == stats["status_503"]
