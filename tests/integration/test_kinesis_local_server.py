"""kinesis-mock (tests/kinesis_local.py) reshards the way AWS does, which is why the resharding tests use it.

Driven through aiobotocore, as the worker is. One stream goes through a split and then a merge of the two
children; each step checks what the worker's shard discovery and SHARD_END handling rely on. The exact
quirks of kinesis-mock 0.6.2 that differ from AWS are pinned too, so a version bump that changes them
fails here first.

Skipped when `npm ci --prefix tools/kinesis-local` has not been run, except under CI (CI set), where a
missing install is a failure.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from tests.kinesis_local import KinesisLocal
from worker.local_servers import AWS_REGION, DUMMY_AWS_ENV

MAX_HASH = 2**128 - 1
MIDPOINT = 2**127  # NewStartingHashKey that halves the full hash range
SHARD_ID = re.compile(r"shardId-\d{12}")
SEQUENCE_NUMBER = re.compile(r"\d{56}")
# kinesis-mock closes a shard with Long.MaxValue as its EndingSequenceNumber, not the last sequence number
# it handed out (AWS does); it is numerically below every real sequence number. Never compare against it:
# a shard is finished when GetRecords stops returning a NextShardIterator.
CLOSED_SHARD_ENDING_SEQUENCE_NUMBER = "9223372036854775807"


def _client(endpoint_url: str, service: str = "kinesis", **kw: Any) -> Any:
    return get_session().create_client(
        service,
        endpoint_url=endpoint_url,
        region_name=AWS_REGION,
        aws_access_key_id=DUMMY_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        # No retries: a retried 500 would hide what kinesis-mock answered.
        config=AioConfig(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=10),
        **kw,
    )


@pytest.fixture
async def kinesis(kinesis_local: KinesisLocal) -> AsyncIterator[Any]:
    async with _client(kinesis_local.endpoint_url) as client:
        yield client


async def _wait_active(kinesis: Any, stream: str, timeout: float = 10.0) -> list[str]:
    """Poll until ACTIVE; every status seen on the way, so a test can tell the change was not instant."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        summary = (await kinesis.describe_stream_summary(StreamName=stream))["StreamDescriptionSummary"]
        seen.append(summary["StreamStatus"])
        if seen[-1] == "ACTIVE":
            return seen
        await asyncio.sleep(0.02)
    raise AssertionError(f"{stream} not ACTIVE within {timeout} s; statuses seen: {seen[-5:]}")


async def _shards(kinesis: Any, stream: str) -> dict[str, dict[str, Any]]:
    shards: dict[str, dict[str, Any]] = {}
    kwargs: dict[str, Any] = {"StreamName": stream, "MaxResults": 2}  # small pages: pagination is exercised
    while True:
        resp = await kinesis.list_shards(**kwargs)
        shards.update((s["ShardId"], s) for s in resp["Shards"])
        if not resp.get("NextToken"):
            return shards
        kwargs = {"NextToken": resp["NextToken"], "MaxResults": 2}


async def _read_to_end(kinesis: Any, stream: str, shard_id: str) -> tuple[list[bytes], list[dict[str, Any]]]:
    """Every record of a shard from TRIM_HORIZON, small pages, until SHARD_END; and the ChildShards then."""
    it = (await kinesis.get_shard_iterator(StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"))[
        "ShardIterator"
    ]
    data: list[bytes] = []
    for _ in range(50):
        resp = await kinesis.get_records(ShardIterator=it, Limit=2)
        assert "MillisBehindLatest" in resp
        data += [r["Data"] for r in resp["Records"]]
        it = resp.get("NextShardIterator")
        if it is None:
            children: list[dict[str, Any]] = resp["ChildShards"]
            return data, children
        assert "ChildShards" not in resp
    raise AssertionError(f"{shard_id} never reached SHARD_END")


async def _read_open(kinesis: Any, stream: str, shard_id: str) -> tuple[list[bytes], str]:
    """The records of an open shard, and the iterator to go on with (an open shard never ends)."""
    it = (await kinesis.get_shard_iterator(StreamName=stream, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"))[
        "ShardIterator"
    ]
    data: list[bytes] = []
    while True:
        resp = await kinesis.get_records(ShardIterator=it)
        assert "ChildShards" not in resp
        it = resp["NextShardIterator"]
        if not resp["Records"]:
            return data, it
        data += [r["Data"] for r in resp["Records"]]


def _hash(partition_key: str) -> int:
    return int(hashlib.md5(partition_key.encode()).hexdigest(), 16)


async def test_split_then_merge_like_aws(kinesis_local: KinesisLocal, kinesis: Any) -> None:
    stream = "resharding"
    await kinesis.create_stream(StreamName=stream, ShardCount=1)
    assert (await _wait_active(kinesis, stream))[0] == "CREATING"

    (parent,) = await _shards(kinesis, stream)
    assert SHARD_ID.fullmatch(parent)
    before = [f"before-{i}".encode() for i in range(5)]
    for i, data in enumerate(before):
        put = await kinesis.put_record(StreamName=stream, Data=data, PartitionKey=f"pk-{i}")
        assert put["ShardId"] == parent
        assert SEQUENCE_NUMBER.fullmatch(put["SequenceNumber"])

    await kinesis.split_shard(StreamName=stream, ShardToSplit=parent, NewStartingHashKey=str(MIDPOINT))
    assert (await _wait_active(kinesis, stream))[0] == "UPDATING"

    shards = await _shards(kinesis, stream)
    assert len(shards) == 3
    ending = shards[parent]["SequenceNumberRange"].get("EndingSequenceNumber")
    assert ending == CLOSED_SHARD_ENDING_SEQUENCE_NUMBER
    children = sorted(s for s in shards if s != parent)
    low, high = children
    assert all(shards[c]["ParentShardId"] == parent and "AdjacentParentShardId" not in shards[c] for c in children)
    assert all("EndingSequenceNumber" not in shards[c]["SequenceNumberRange"] for c in children)
    assert shards[low]["HashKeyRange"] == {"StartingHashKey": "0", "EndingHashKey": str(MIDPOINT - 1)}
    assert shards[high]["HashKeyRange"] == {"StartingHashKey": str(MIDPOINT), "EndingHashKey": str(MAX_HASH)}

    after = {f"after-{i}": f"after-{i}".encode() for i in range(8)}
    expected: dict[str, list[bytes]] = {low: [], high: []}
    for key, data in after.items():
        put = await kinesis.put_record(StreamName=stream, Data=data, PartitionKey=key)
        assert put["ShardId"] == (low if _hash(key) < MIDPOINT else high)
        expected[put["ShardId"]].append(data)
    assert expected[low] and expected[high]

    # The closed parent holds exactly what came before the split, then ends and names both children.
    parent_data, child_shards = await _read_to_end(kinesis, stream, parent)
    assert parent_data == before
    assert sorted(c["ShardId"] for c in child_shards) == children
    assert all(c["ParentShards"] == [parent] for c in child_shards)
    # A LATEST iterator on the closed parent ends at once, with the children again.
    latest = await kinesis.get_shard_iterator(StreamName=stream, ShardId=parent, ShardIteratorType="LATEST")
    resp = await kinesis.get_records(ShardIterator=latest["ShardIterator"])
    assert resp["Records"] == [] and "NextShardIterator" not in resp and len(resp["ChildShards"]) == 2

    # What was put after the split is in the children only, each where its hash key belongs.
    iterators = {}
    for child in children:
        child_data, iterators[child] = await _read_open(kinesis, stream, child)
        assert child_data == expected[child]

    # An iterator older than 300 s: ExpiredIteratorException (HTTP 400), as on AWS.
    kinesis_local.advance_clock(301)
    with pytest.raises(ClientError) as expired:
        await kinesis.get_records(ShardIterator=iterators[low])
    assert expired.value.response["Error"]["Code"] == "ExpiredIteratorException"
    assert expired.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    await kinesis.merge_shards(StreamName=stream, ShardToMerge=low, AdjacentShardToMerge=high)
    assert (await _wait_active(kinesis, stream))[0] == "UPDATING"
    shards = await _shards(kinesis, stream)
    assert len(shards) == 4
    (merged,) = (s for s in shards if s not in (parent, *children))
    assert shards[merged]["ParentShardId"] == low
    assert shards[merged]["AdjacentParentShardId"] == high
    assert shards[merged]["HashKeyRange"] == {"StartingHashKey": "0", "EndingHashKey": str(MAX_HASH)}
    assert all(shards[c]["SequenceNumberRange"].get("EndingSequenceNumber") for c in children)

    put = await kinesis.put_record(StreamName=stream, Data=b"after-merge", PartitionKey="after-0")
    assert put["ShardId"] == merged
    for child in children:
        child_data, child_shards = await _read_to_end(kinesis, stream, child)
        assert child_data == expected[child]
        assert [(c["ShardId"], c["ParentShards"]) for c in child_shards] == [(merged, [low, high])]


async def test_garbage_iterator_is_a_500(kinesis: Any) -> None:
    """Not AWS's InvalidArgumentException: botocore retries a 500, so a bad iterator costs the retries."""
    with pytest.raises(ClientError) as bad:
        await kinesis.get_records(ShardIterator="AAAAAAAAAAFub3QgYW4gaXRlcmF0b3I=")
    assert bad.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500


async def test_tls_port_and_no_dynamodb(kinesis_local: KinesisLocal) -> None:
    """The HTTPS port serves the same API (self-signed: verify off); DynamoDB is not there (moto serves it)."""
    async with _client(kinesis_local.tls_endpoint_url, verify=False) as tls:
        await tls.create_stream(StreamName="over-tls", ShardCount=1)
        assert "over-tls" in (await tls.list_streams())["StreamNames"]
    async with _client(kinesis_local.endpoint_url, "dynamodb") as ddb:
        with pytest.raises(ClientError) as missing:
            await ddb.list_tables()
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
