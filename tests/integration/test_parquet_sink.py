"""S3 notifications -> worker -> Parquet on S3 (moto over sockets), read back with pyarrow's dataset discovery.

Also: both sinks at once (OpenSearch and Parquet hold every document, the queue is empty), and `sluice compact`
on the written dataset, including a compaction interrupted between writing its outputs and deleting its inputs.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import yaml
from pyarrow import fs

from tests.kinesis_support import create_stream, kinesis_config
from tests.support import drained, index_counts, make_config, os_client, queue_depth, run_worker_until
from worker.aws import AwsClients
from worker.compaction import Compactor
from worker.config import Config, ParquetConfig
from worker.local_servers import DUMMY_AWS_ENV
from worker.samples import ACCOUNT, REGION, alb_lines, cloudtrail_records, gzip_lines, vpc_flow_lines
from worker.sinks.arrow_schema import Converter

N = 150
DAY = "2026/11/22"
VPC_KEY = f"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/{DAY}/{ACCOUNT}_vpcflowlogs_{REGION}_fl-1_20261122T0000Z_%s.log.gz"
ALB_KEY = (f"AWSLogs/{ACCOUNT}/elasticloadbalancing/{REGION}/{DAY}/"
           f"{ACCOUNT}_elasticloadbalancing_{REGION}_app.lb.1_20261122T0000Z_10.0.0.1_%s.log.gz")
CT_KEY = f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{DAY}/{ACCOUNT}_CloudTrail_{REGION}_20261122T0000Z_%s.json.gz"
SLUICE = Path(sys.executable).with_name("sluice")
PARTITIONING = ds.partitioning(pa.schema([("log_type", pa.string()), ("account_id", pa.string()),
                                          ("region", pa.string()), ("event_hour", pa.string())]), flavor="hive")


def read_dataset(endpoint: str, bucket: str, prefix: str = "parquet/", log_type: str | None = None) -> pa.Table:
    """Every row under the dataset (or one log type's table), found by hive partition discovery over S3."""
    s3 = fs.S3FileSystem(access_key=DUMMY_AWS_ENV["AWS_ACCESS_KEY_ID"],
                         secret_key=DUMMY_AWS_ENV["AWS_SECRET_ACCESS_KEY"], region="us-east-1",
                         endpoint_override=endpoint, scheme="http")
    root = f"{bucket}/{prefix}" + (f"log_type={log_type}/" if log_type else "")
    if not s3.get_file_info(fs.FileSelector(root, recursive=True, allow_not_found=True)):
        return pa.table({"sluice_id": pa.array([], pa.string())})
    if log_type:
        dataset = ds.dataset(root, filesystem=s3, format="parquet", partitioning=ds.partitioning(
            pa.schema([("account_id", pa.string()), ("region", pa.string()), ("event_hour", pa.string())]),
            flavor="hive"))
    else:
        # Tables of different log types have different columns: read what they share.
        dataset = ds.dataset(root, filesystem=s3, format="parquet", partitioning=PARTITIONING)
        return dataset.to_table(columns=["sluice_id", "timestamp", "log_type", "account_id", "region", "event_hour"])
    return dataset.to_table()


def lake_keys(s3: Any, bucket: str) -> list[str]:
    keys: list[str] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return sorted(keys)


@pytest.fixture
def env(aws_endpoint: str, opensearch_url: str, boto: Any, s3_queue: Any, backup: Any,
        unique_name: Any) -> dict[str, Any]:
    prefix = unique_name("pq")
    lake = unique_name("lake")
    boto.client("s3").create_bucket(Bucket=lake)

    def cfg(sinks: list[str], **over: Any) -> Config:
        return make_config(aws_endpoint=aws_endpoint, opensearch_url=opensearch_url, queue_url=s3_queue.queue_url,
                           backup_bucket=backup.bucket, replay_queue_url=backup.replay_queue_url, index_prefix=prefix,
                           sources__logs__sinks=sinks, parquet={"bucket": lake, "prefix": "parquet/"}, **over)

    return {"s3": boto.client("s3"), "sqs": boto.client("sqs"), "queue": s3_queue, "lake": lake, "cfg": cfg,
            "endpoint": aws_endpoint, "os": os_client(opensearch_url), "prefix": prefix}


def _upload_three_types(env: dict[str, Any], tag: str = "a", n: int = N) -> None:
    s3, bucket = env["s3"], env["queue"].bucket
    s3.put_object(Bucket=bucket, Key=VPC_KEY % tag, Body=gzip_lines(vpc_flow_lines(n, seed=11)))
    s3.put_object(Bucket=bucket, Key=ALB_KEY % tag, Body=gzip_lines(alb_lines(n, seed=12)))
    s3.put_object(Bucket=bucket, Key=CT_KEY % tag,
                  Body=gzip.compress(orjson.dumps({"Records": cloudtrail_records(n, seed=13)})))


def _per_type(table: pa.Table) -> dict[str, int]:
    counts = table.group_by("log_type").aggregate([("sluice_id", "count")]).to_pylist()
    return {row["log_type"]: row["sluice_id_count"] for row in counts}


async def test_three_log_types_land_as_partitioned_parquet(env: dict[str, Any]) -> None:
    _upload_three_types(env)
    await run_worker_until(env["cfg"](["parquet"]), drained(env["sqs"], env["queue"].queue_url))

    table = read_dataset(env["endpoint"], env["lake"])
    assert _per_type(table) == {"vpc_flow": N, "alb": N, "cloudtrail": N}
    assert len(set(table.column("sluice_id").to_pylist())) == 3 * N  # one row per input line, none twice
    assert set(table.column("account_id").to_pylist()) == {ACCOUNT}
    assert set(table.column("region").to_pylist()) == {REGION}
    assert all(h.startswith("20261122") for h in table.column("event_hour").to_pylist())
    assert queue_depth(env["sqs"], env["queue"].queue_url) == 0
    assert index_counts(env["os"], env["prefix"]) == {}  # a parquet-only source never touches OpenSearch

    vpc = read_dataset(env["endpoint"], env["lake"], log_type="vpc_flow")
    assert vpc.schema.field("timestamp").type == pa.timestamp("ms", tz="UTC")
    source = vpc.schema.field("source").type
    assert source.field("ip").type == pa.string() and source.field("bytes").type == pa.int64()
    assert vpc.schema.field("event").type.field("category").type == pa.list_(pa.string())
    expected_bytes = sum(int(line.split()[9]) for line in list(vpc_flow_lines(N, seed=11))[1:])
    assert pc.sum(pc.struct_field(vpc.column("source"), "bytes")).as_py() == expected_bytes
    assert pc.min(vpc.column("timestamp")).as_py() == datetime(2026, 11, 22, 0, 1, tzinfo=UTC)  # a flow's end
    alb = read_dataset(env["endpoint"], env["lake"], log_type="alb")
    statuses = set(pc.struct_field(pc.struct_field(alb.column("http"), "response"), "status_code").to_pylist())
    assert statuses <= {200, 301, 404, 500, 502}
    ct = read_dataset(env["endpoint"], env["lake"], log_type="cloudtrail")
    assert set(pc.struct_field(ct.column("event"), "action").to_pylist()) <= {
        "DescribeInstances", "GetBucketAcl", "CreateUser", "AssumeRole", "ConsoleLogin"}
    keys = lake_keys(env["s3"], env["lake"])
    assert all(k.startswith("parquet/log_type=") and k.endswith(".parquet") for k in keys)


async def test_the_same_notification_twice_rewrites_the_same_files(env: dict[str, Any]) -> None:
    s3, sqs, queue = env["s3"], env["sqs"], env["queue"]
    s3.put_object(Bucket=queue.bucket, Key=VPC_KEY % "b", Body=gzip_lines(vpc_flow_lines(N, seed=21)))
    await run_worker_until(env["cfg"](["parquet"]), drained(sqs, queue.queue_url))
    first = {k: s3.head_object(Bucket=env["lake"], Key=k)["ETag"] for k in lake_keys(s3, env["lake"])}
    etag = s3.head_object(Bucket=queue.bucket, Key=VPC_KEY % "b")["ETag"].strip('"')
    record = {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": queue.bucket},
                                                       "object": {"key": VPC_KEY % "b", "size": 1, "eTag": etag}}}
    sqs.send_message(QueueUrl=queue.queue_url, MessageBody=json.dumps({"Records": [record]}))
    await run_worker_until(env["cfg"](["parquet"]), drained(sqs, queue.queue_url))
    second = {k: s3.head_object(Bucket=env["lake"], Key=k)["ETag"] for k in lake_keys(s3, env["lake"])}
    assert first == second  # same keys, same bytes
    assert read_dataset(env["endpoint"], env["lake"]).num_rows == N


async def test_both_sinks_hold_every_document(env: dict[str, Any]) -> None:
    _upload_three_types(env, "c")
    await run_worker_until(env["cfg"](["opensearch", "parquet"]), drained(env["sqs"], env["queue"].queue_url))
    counts: dict[str, int] = {}
    for name, n in index_counts(env["os"], env["prefix"]).items():
        counts[name.split("-")[-2]] = counts.get(name.split("-")[-2], 0) + n
    assert counts == {"vpc_flow": N, "alb": N, "cloudtrail": N}
    table = read_dataset(env["endpoint"], env["lake"])
    assert _per_type(table) == {"vpc_flow": N, "alb": N, "cloudtrail": N}
    ids = set(table.column("sluice_id").to_pylist())
    hits = env["os"].search(index=f"{env['prefix']}-*", body={"query": {"match_all": {}}, "size": 1000,
                                                              "_source": False})["hits"]["hits"]
    assert {h["_id"] for h in hits} == ids  # the same documents under the same ids in both engines
    assert queue_depth(env["sqs"], env["queue"].queue_url) == 0


class _InterruptedCompactor(Compactor):
    """Fails the first time it deletes inputs: the outputs are written, the inputs are still there."""

    failed = False

    async def _delete(self, keys: list[str]) -> None:
        if not self.failed:
            _InterruptedCompactor.failed = True
            raise RuntimeError("interrupted")
        await super()._delete(keys)


async def test_compaction_merges_closed_hours_and_survives_an_interruption(env: dict[str, Any]) -> None:
    s3, sqs, queue = env["s3"], env["sqs"], env["queue"]
    for i in range(6):  # six small VPC objects in the same hour
        s3.put_object(Bucket=queue.bucket, Key=VPC_KEY % f"k{i}", Body=gzip_lines(vpc_flow_lines(40, seed=100 + i)))
    cfg = env["cfg"](["parquet"])
    await run_worker_until(cfg, drained(sqs, queue.queue_url))
    before = read_dataset(env["endpoint"], env["lake"])
    assert before.num_rows == 240 and len(lake_keys(s3, env["lake"])) == 6

    pcfg = ParquetConfig(bucket=env["lake"], prefix="parquet/")
    later = datetime(2026, 11, 23, tzinfo=UTC)
    async with AwsClients(cfg.aws) as aws:
        with pytest.raises(RuntimeError, match="interrupted"):
            await _InterruptedCompactor(pcfg, aws, now=later).run(["vpc_flow"])
        keys = lake_keys(s3, env["lake"])
        assert any("/_compaction-" in k for k in keys) and sum("/c-" in k for k in keys) == 1
        report = await Compactor(pcfg, aws, now=later).run(["vpc_flow"])
    assert report.manifests_resumed == 1
    keys = lake_keys(s3, env["lake"])
    assert len(keys) == 1 and "/c-" in keys[0]
    after = read_dataset(env["endpoint"], env["lake"])
    assert sorted(after.column("sluice_id").to_pylist()) == sorted(before.column("sluice_id").to_pylist())

    # A late redelivery of a compacted object brings its file back: the next compaction drops the duplicates.
    etag = s3.head_object(Bucket=queue.bucket, Key=VPC_KEY % "k0")["ETag"].strip('"')
    record = {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": queue.bucket},
                                                       "object": {"key": VPC_KEY % "k0", "size": 1, "eTag": etag}}}
    sqs.send_message(QueueUrl=queue.queue_url, MessageBody=json.dumps({"Records": [record]}))
    await run_worker_until(cfg, drained(sqs, queue.queue_url))
    assert read_dataset(env["endpoint"], env["lake"]).num_rows == 280
    async with AwsClients(cfg.aws) as aws:
        report = await Compactor(pcfg, aws, now=later).run(["vpc_flow"])
        assert report.duplicates == 40 and report.hours_compacted == 1
        again = await Compactor(pcfg, aws, now=later).run(["vpc_flow"])  # converged: nothing left to do
        assert again.hours_compacted == 0
        # An hour that is not closed yet is left alone.
        assert (await Compactor(pcfg, aws, now=datetime(2026, 11, 22, 1, tzinfo=UTC)).run()).hours_compacted == 0
    final = read_dataset(env["endpoint"], env["lake"])
    assert final.num_rows == 240 and len(set(final.column("sluice_id").to_pylist())) == 240


def test_compact_command_reports_on_stderr(tmp_path: Any, aws_endpoint: str, boto: Any, unique_name: Any) -> None:
    """`sluice compact` as a process (it sets up logging and signals, as commands do)."""
    lake = unique_name("lake")
    s3 = boto.client("s3")
    s3.create_bucket(Bucket=lake)
    hour = "parquet/log_type=generic/account_id=1/region=r/event_hour=2026010100/"
    for n in range(3):
        out = pa.BufferOutputStream()
        batch = Converter("generic").convert([{"message": f"m{n}-{i}"} for i in range(10)],
                                             [f"u{n}.{i}" for i in range(10)])
        pq.write_table(pa.Table.from_batches([batch]), out)
        s3.put_object(Bucket=lake, Key=f"{hour}u-{n}-0.parquet", Body=out.getvalue().to_pybytes())
    cfg_file = tmp_path / "sluice.yaml"
    cfg_file.write_text(yaml.safe_dump({
        "aws": {"region": "us-east-1", "endpoint_url": aws_endpoint},
        "opensearch": {"hosts": ["http://127.0.0.1:9"]},
        "dead_letters": {"bucket": "unused", "replay_queue_url": "http://127.0.0.1:9/q"},
        "sources": {"logs": {"type": "sqs", "queue_url": "http://127.0.0.1:9/q", "sinks": ["parquet"]}},
        "parquet": {"bucket": lake},
    }))

    def compact(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(SLUICE), "compact", "--config", str(cfg_file), *extra], capture_output=True,
                              text=True, timeout=120, env=dict(os.environ), check=False)

    dry = compact("--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.strip() == hour and "compacted 0 hour(s) of 1" in dry.stderr
    done = compact()
    assert done.returncode == 0, done.stderr
    assert "compacted 1 hour(s) of 1: 3 files" in done.stderr and "30 rows" in done.stderr
    assert [k.rsplit("/", 1)[1][:2] for k in lake_keys(s3, lake)] == ["c-"]
    assert read_dataset(aws_endpoint, lake).num_rows == 30
    assert compact("--log-type", "nope").returncode == 2


async def test_kinesis_batches_land_in_parquet(aws_endpoint: str, opensearch_url: str, boto: Any, backup: Any,
                                               unique_name: Any) -> None:
    lake, stream = unique_name("lake"), unique_name("stream")
    boto.client("s3").create_bucket(Bucket=lake)
    kinesis = boto.client("kinesis")
    create_stream(kinesis, stream, 2)
    lines = list(alb_lines(300, seed=31))
    for start in range(0, len(lines), 100):
        kinesis.put_records(StreamName=stream, Records=[
            {"Data": line.encode(), "PartitionKey": str(i)} for i, line in enumerate(lines[start:start + 100], start)])
    cfg = kinesis_config(aws_endpoint=aws_endpoint, opensearch_url=opensearch_url, backup=backup,
                         prefix=unique_name("kpq"), stream=stream, lease_table=unique_name("leases"),
                         log_type="alb", sinks=["parquet"], overrides={"parquet": {"bucket": lake}})
    await run_worker_until(cfg, lambda: read_dataset(aws_endpoint, lake).num_rows >= len(lines), timeout=90,
                           settle=1.0)
    table = read_dataset(aws_endpoint, lake, log_type="alb")
    assert table.num_rows == len(lines) and len(set(table.column("sluice_id").to_pylist())) == len(lines)
    shards = pc.struct_field(pc.struct_field(table.column("aws"), "kinesis"), "shard_id")
    assert len(set(shards.to_pylist())) == 2
    assert len(lake_keys(boto.client("s3"), lake)) < len(lines)  # one file per batch and hour, not per record
