"""Helpers shared by the integration and fault tests: configs, running the worker, reading outcomes."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from typing import Any

import orjson
from opensearchpy import OpenSearch

from worker.app import Worker
from worker.config import Config, parse_config
from worker.model import Document


def make_config(*, aws_endpoint: str, opensearch_url: str, queue_url: str, backup_bucket: str,
                replay_queue_url: str, index_prefix: str, **over: Any) -> Config:
    """A worker config for one test: its own index prefix, short waits, no metrics port."""
    data: dict[str, Any] = {
        "aws": {"region": "us-east-1", "endpoint_url": aws_endpoint},
        "opensearch": {
            "hosts": [opensearch_url], "number_of_replicas": 0,
            "index": index_prefix + "-{log_type}-{yyyy}.{MM}.{dd}",
            "bulk": {"flush_interval": 0.2, "max_docs": 500},
            "retry": {"initial_backoff": 0.2, "max_backoff": 1.0, "max_elapsed": 20},
        },
        "dead_letters": {"bucket": backup_bucket, "replay_queue_url": replay_queue_url},
        "sources": {"logs": {"type": "sqs_s3", "queue_url": queue_url, "wait_time": 1,
                             "visibility_timeout": 30, "retry_visibility": 1}},
        "telemetry": {"metrics_port": 0},
        "worker": {"shutdown_grace": 10},
    }
    for path, value in over.items():
        node = data
        parts = path.split("__")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return parse_config(data)


def queue_depth(sqs: Any, queue_url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


async def run_worker_until(cfg: Config, done: Any, timeout: float = 120.0, settle: float = 0.0) -> Worker:
    """Run a worker in this loop until `done()` (a sync predicate, polled) holds, then stop it gracefully."""
    worker = Worker(cfg)
    task = asyncio.create_task(worker.run(install_signals=False))
    deadline = time.monotonic() + timeout
    try:
        while True:
            await asyncio.sleep(0.5)
            if task.done():
                task.result()
                raise AssertionError("worker stopped by itself")
            if await asyncio.to_thread(done):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not reached within {timeout} s")
        if settle:
            await asyncio.sleep(settle)
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 60)
    return worker


def drained(sqs: Any, queue_url: str) -> Any:
    """A predicate: the queue held no message (visible or in flight) on two polls in a row."""
    state = {"empty": 0}

    def check() -> bool:
        state["empty"] = state["empty"] + 1 if queue_depth(sqs, queue_url) == 0 else 0
        return state["empty"] >= 2

    return check


def os_client(url: str) -> OpenSearch:
    return OpenSearch(hosts=[url], timeout=120)


def index_counts(client: OpenSearch, prefix: str) -> dict[str, int]:
    """Documents per index for every index under `prefix` (refreshed first)."""
    pattern = f"{prefix}-*"
    if not client.indices.exists(index=pattern):
        return {}
    client.indices.refresh(index=pattern)
    return {name: client.count(index=name)["count"] for name in sorted(client.indices.get(index=pattern))}


def all_docs(client: OpenSearch, index: str, size: int = 10000) -> list[dict[str, Any]]:
    client.indices.refresh(index=index)
    hits = client.search(index=index, body={"query": {"match_all": {}}, "size": size})["hits"]["hits"]
    return [h for h in hits]


def scroll_hits(client: OpenSearch, prefix: str, source: bool = True) -> list[dict[str, Any]]:
    """Every hit under the index prefix (all log types; `[]` before any index exists), refreshed first and read
    with a scroll, duplicates (the same id in two indices) included."""
    pattern = f"{prefix}-*"
    if not client.indices.exists(index=pattern):
        return []
    client.indices.refresh(index=pattern)
    out: list[dict[str, Any]] = []
    resp = client.search(index=pattern, scroll="1m",
                         body={"query": {"match_all": {}}, "_source": source, "size": 2000})
    while hits := resp["hits"]["hits"]:
        out.extend(hits)
        resp = client.scroll(scroll_id=resp["_scroll_id"], scroll="1m")
    return out


def all_ids(client: OpenSearch, prefix: str) -> list[str]:
    """Every `_id` under the index prefix, duplicates included."""
    return [h["_id"] for h in scroll_hits(client, prefix, source=False)]


def count(client: OpenSearch, prefix: str) -> int:
    """Documents under the index prefix (0 before any index exists), refreshed first."""
    pattern = f"{prefix}-*"
    if not client.indices.exists(index=pattern):
        return 0
    client.indices.refresh(index=pattern)
    return int(client.count(index=pattern)["count"])


def backup_records(s3: Any, bucket: str) -> tuple[list[dict[str, Any]], list[str]]:
    """(dead-letter records from NDJSON.gz objects, keys of whole objects kept) in the backup bucket."""
    records: list[dict[str, Any]] = []
    objects: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith(".ndjson.gz"):
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                records += [orjson.loads(line) for line in gzip.decompress(body).splitlines()]
            else:
                objects.append(key)
    return records, objects


def replay_pointers(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    out = []
    while True:
        resp = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        msgs = resp.get("Messages", [])
        if not msgs:
            return out
        for msg in msgs:
            out.append(json.loads(msg["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=msg["ReceiptHandle"])


def metric(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    total = 0.0
    for fam in REGISTRY.collect():
        for sample in fam.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


class RunningWorker:
    """`async with RunningWorker(cfg) as w:` runs a worker in this loop; leaving stops it gracefully."""

    def __init__(self, cfg: Config) -> None:
        self.worker = Worker(cfg)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Worker:
        self.task = asyncio.create_task(self.worker.run(install_signals=False))
        deadline = time.monotonic() + 30
        while not self.worker.ready:
            if self.task.done():
                self.task.result()
            if time.monotonic() > deadline:
                raise AssertionError("worker did not become ready")
            await asyncio.sleep(0.05)
        return self.worker

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.worker.request_stop()
        await asyncio.wait_for(self.task, 60)


async def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.5)


class CollectingSink:
    """A pipeline sink that keeps every document (with its dict) in `docs`, for unit tests of pure code."""

    def __init__(self) -> None:
        self.docs: list[Document] = []

    def add(self, doc: Document) -> None:
        self.docs.append(doc)

    def takes_serialized(self, source: str) -> bool:
        return False  # tests read the dicts

    async def ready(self) -> None:
        return None

    async def submit(self, docs: list[Document]) -> None:
        self.docs.extend(docs)

    def idle(self) -> None:
        return None
