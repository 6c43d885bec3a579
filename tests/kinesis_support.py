"""Helpers for the Kinesis tests: streams, configs, and reading the lease table and the index."""

from __future__ import annotations

import time
from typing import Any

from tests.support import make_config
from worker.config import Config


def create_stream(kinesis: Any, name: str, shards: int, timeout: float = 30.0) -> str:
    """Create a stream and wait until it is ACTIVE; its ARN."""
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    deadline = time.monotonic() + timeout
    while True:
        desc = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]
        if desc["StreamStatus"] == "ACTIVE":
            return str(desc["StreamARN"])
        if time.monotonic() > deadline:
            raise AssertionError(f"stream {name} not ACTIVE after {timeout} s")
        time.sleep(0.2)


def kinesis_config(*, aws_endpoint: str, opensearch_url: str, backup: Any, prefix: str, stream: str,
                   lease_table: str, overrides: dict[str, Any] | None = None, **source: Any) -> Config:
    """A worker config with one `kinesis` source named `stream` and short lease timings; `overrides` are
    `make_config`'s (`opensearch__retry=...`), `source` the source's own keys."""
    src: dict[str, Any] = {"type": "kinesis", "stream": stream, "lease_table": lease_table,
                           "lease_duration": 3.0, "idle_interval": 0.3, "checkpoint_interval": 0.5,
                           "shard_sync_interval": 5.0}
    src.update(source)
    return make_config(aws_endpoint=aws_endpoint, opensearch_url=opensearch_url, queue_url="",
                       backup_bucket=backup.bucket, replay_queue_url=backup.replay_queue_url, index_prefix=prefix,
                       sources={"stream": src}, **(overrides or {}))


def leases(ddb: Any, table: str) -> dict[str, dict[str, Any]]:
    """shard id -> {owner, checkpoint, counter, parents} as the lease table holds them now ({} before a worker
    has created the table)."""
    out: dict[str, dict[str, Any]] = {}
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        try:
            resp = ddb.scan(**kwargs)
        except ddb.exceptions.ResourceNotFoundException:
            return {}  # no worker has created the table yet
        for item in resp.get("Items", []):
            out[item["shard_id"]["S"]] = {
                "owner": item.get("owner", {}).get("S"),
                "checkpoint": item.get("checkpoint", {}).get("S"),
                "counter": int(item["counter"]["N"]),
                "parents": [p["S"] for p in item.get("parents", {}).get("L", [])],
            }
        if not resp.get("LastEvaluatedKey"):
            return out
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def last_sequence_numbers(kinesis: Any, stream: str) -> dict[str, str | None]:
    """shard id -> the sequence number of its last record (None for a shard no record went to), read from the
    stream itself, so a test can tell an empty shard from one whose checkpoint did not move."""
    out: dict[str, str | None] = {}
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        sid = shard["ShardId"]
        it = kinesis.get_shard_iterator(StreamName=stream, ShardId=sid,
                                        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        last: str | None = None
        while it:
            resp = kinesis.get_records(ShardIterator=it, Limit=10000)
            if resp["Records"]:
                last = resp["Records"][-1]["SequenceNumber"]
            if not resp["Records"] and resp.get("MillisBehindLatest", 0) == 0:
                break
            it = resp.get("NextShardIterator")
        out[sid] = last
    return out
