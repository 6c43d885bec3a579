"""A shard split while records are being written and read (kinesis-mock for Kinesis; moto for DynamoDB, S3, SQS).

A writer puts numbered records under 8 partition keys faster than the worker reads them (2 records per
GetRecords, so it falls behind; a burst of 100 just before the split makes sure of it), and the shard is split
while both run: when the children start receiving records, the parent still has a backlog. Then:
- every record is indexed exactly once (the `_id`s equal the ids derived from what PutRecord returned);
- for every partition key, the documents in the order the worker read them (`event.ingested`, then sequence
  number) carry the writer's numbers in increasing order, across the parent and the children: the children were
  read only after the parent was read to its end and checkpointed;
- the lease table shows the parent at SHARD_END and the children checkpointed, with the parent recorded.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import defaultdict
from typing import Any

import boto3

from tests.kinesis_support import kinesis_config, leases
from tests.support import count, os_client, scroll_hits, wait_for
from worker.app import Worker
from worker.local_servers import AWS_REGION, DUMMY_AWS_ENV
from worker.model import Origin

KEYS = 8
BURST = 100
"""Records put in one call just before the split, so the reader is well behind whatever the machine's load."""
MIDPOINT = str(2**127)


class Writer(threading.Thread):
    def __init__(self, kinesis: Any, stream: str) -> None:
        super().__init__(daemon=True)
        self.kinesis, self.stream = kinesis, stream
        self.written: list[tuple[str, str, str, int]] = []  # shard, sequence, key, n
        self.halt = threading.Event()

    burst = threading.Event()
    """Set by the test: the writer puts BURST records in one PutRecords call (in order), then clears it."""

    def run(self) -> None:
        n = 0
        while not self.halt.is_set():
            if self.burst.is_set():
                entries = [(f"key-{i % KEYS}", i) for i in range(n, n + BURST)]
                resp = self.kinesis.put_records(StreamName=self.stream, Records=[
                    {"PartitionKey": key, "Data": f"{key} n={i}".encode()} for key, i in entries])
                assert not resp.get("FailedRecordCount"), resp
                for (key, i), result in zip(entries, resp["Records"], strict=True):
                    self.written.append((result["ShardId"], result["SequenceNumber"], key, i))
                n += BURST
                self.burst.clear()
                continue
            key = f"key-{n % KEYS}"
            resp = self.kinesis.put_record(StreamName=self.stream, PartitionKey=key, Data=f"{key} n={n}".encode())
            self.written.append((resp["ShardId"], resp["SequenceNumber"], key, n))
            n += 1
            time.sleep(0.02)


async def test_split_while_writing_keeps_every_record_and_per_key_order(
        kinesis_local: Any, aws_endpoint: str, opensearch_url: str, backup: Any, unique_name: Any) -> None:
    kinesis = boto3.client("kinesis", endpoint_url=kinesis_local.endpoint_url, region_name=AWS_REGION,
                           aws_access_key_id=DUMMY_AWS_ENV["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=DUMMY_AWS_ENV["AWS_SECRET_ACCESS_KEY"])
    ddb = boto3.client("dynamodb", endpoint_url=aws_endpoint, region_name=AWS_REGION)
    client = os_client(opensearch_url)
    stream, table, prefix = unique_name("split"), unique_name("split-leases"), unique_name("split")
    kinesis.create_stream(StreamName=stream, ShardCount=1)

    def active() -> bool:
        return bool(kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]["StreamStatus"]
                    == "ACTIVE")

    await wait_for(active, 20, "the stream ACTIVE")
    cfg = kinesis_config(aws_endpoint=aws_endpoint, opensearch_url=opensearch_url, backup=backup, prefix=prefix,
                         stream=stream, lease_table=table, log_type="generic", max_records=2,
                         shard_sync_interval=1.0,
                         overrides={"aws__endpoints": {"kinesis": kinesis_local.endpoint_url}})
    writer = Writer(kinesis, stream)
    writer.start()
    worker = Worker(cfg)
    task = asyncio.create_task(worker.run(install_signals=False))
    try:
        await wait_for(lambda: count(client, prefix) >= 40, 60, "records read from the first shard")
        writer.burst.set()
        await wait_for(lambda: not writer.burst.is_set(), 30, "the burst written")
        parent = kinesis.list_shards(StreamName=stream)["Shards"][0]["ShardId"]
        backlog = len(writer.written) - count(client, prefix)
        kinesis.split_shard(StreamName=stream, ShardToSplit=parent, NewStartingHashKey=MIDPOINT)
        await wait_for(active, 20, "the split done")
        await asyncio.sleep(4.0)  # records now go to the children
        writer.halt.set()
        writer.join()
        written = list(writer.written)
        children = {shard for shard, *_ in written} - {parent}
        assert len(children) == 2, children
        assert backlog > 50, f"the reader was not behind when the shard was split ({backlog})"
        await wait_for(lambda: count(client, prefix) >= len(written), 180, "every record indexed")
        await asyncio.sleep(1.5)
    finally:
        writer.halt.set()
        worker.request_stop()
        await asyncio.wait_for(task, 30)

    docs = scroll_hits(client, prefix)
    expected = {Origin("stream", "kinesis", key=f"{stream}/{shard}", version=seq).id_prefix() + ".0"
                for shard, seq, _, _ in written}
    ids = [d["_id"] for d in docs]
    assert len(ids) == len(set(ids)) == len(written)
    assert set(ids) == expected

    per_key: dict[str, list[tuple[str, int, int, str]]] = defaultdict(list)
    for d in docs:
        src = d["_source"]
        kin = src["aws"]["kinesis"]
        key, n = src["message"].split(" n=")
        per_key[kin["partition_key"]].append((src["event"]["ingested"], int(kin["sequence_number"]), int(n),
                                             kin["shard_id"]))
    for key, entries in per_key.items():
        entries.sort()
        numbers = [n for _, _, n, _ in entries]
        assert numbers == sorted(numbers), f"{key}: read out of order: {numbers}"
        shards = [shard for *_, shard in entries]
        first_child = next(i for i, shard in enumerate(shards) if shard != parent)
        assert all(shard == parent for shard in shards[:first_child]), f"{key}: parent after a child: {shards}"
        assert all(shard != parent for shard in shards[first_child:]), f"{key}: parent after a child: {shards}"

    table_now = leases(ddb, table)
    assert table_now[parent]["checkpoint"] == "SHARD_END"
    for child in children:
        assert table_now[child]["parents"] == [parent]
        assert table_now[child]["checkpoint"].isdigit()
    print(f"\n{len(written)} records ({sum(1 for s, *_ in written if s == parent)} before the split), "
          f"{len(docs)} documents, per-key order kept across {parent} -> {sorted(children)}")


async def test_an_expired_iterator_is_replaced(kinesis_local: Any, aws_endpoint: str, opensearch_url: str,
                                               backup: Any, unique_name: Any) -> None:
    """An iterator older than 5 minutes (the server's clock moved on) is replaced by one after the last record read;
    nothing is skipped or read twice."""
    from tests.support import metric

    kinesis = boto3.client("kinesis", endpoint_url=kinesis_local.endpoint_url, region_name=AWS_REGION,
                           aws_access_key_id=DUMMY_AWS_ENV["AWS_ACCESS_KEY_ID"],
                           aws_secret_access_key=DUMMY_AWS_ENV["AWS_SECRET_ACCESS_KEY"])
    client = os_client(opensearch_url)
    stream, table, prefix = unique_name("expire"), unique_name("expire-leases"), unique_name("expire")
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    await wait_for(lambda: kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"][
        "StreamStatus"] == "ACTIVE", 20, "the stream ACTIVE")
    for n in range(10):
        kinesis.put_record(StreamName=stream, PartitionKey="k", Data=f"before n={n}".encode())
    cfg = kinesis_config(aws_endpoint=aws_endpoint, opensearch_url=opensearch_url, backup=backup, prefix=prefix,
                         stream=stream, lease_table=table, log_type="generic", idle_interval=2.0,
                         overrides={"aws__endpoints": {"kinesis": kinesis_local.endpoint_url}})
    expired = metric("sluice_kinesis_read_errors_total", source="stream", reason="expired_iterator")
    worker = Worker(cfg)
    task = asyncio.create_task(worker.run(install_signals=False))
    try:
        await wait_for(lambda: count(client, prefix) == 10, 30, "the first records indexed")
        kinesis_local.advance_clock(301)  # the iterator the idle reader holds is now past its 5 minutes
        for n in range(10):
            kinesis.put_record(StreamName=stream, PartitionKey="k", Data=f"after n={n}".encode())
        await wait_for(lambda: count(client, prefix) == 20, 30, "the later records indexed")
        assert metric("sluice_kinesis_read_errors_total", source="stream", reason="expired_iterator") > expired
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 30)
    await asyncio.sleep(1.0)
    assert count(client, prefix) == 20
