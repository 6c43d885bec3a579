"""Kinesis -> worker -> OpenSearch against moto server (Kinesis, CloudWatch Logs, DynamoDB) and osmem."""

from __future__ import annotations

import gzip
import time
from typing import Any

import pytest

from tests.kinesis_support import create_stream, kinesis_config, last_sequence_numbers, leases
from tests.kpl import aggregate
from tests.support import backup_records, count, metric, os_client, run_worker_until, scroll_hits
from worker.samples import ACCOUNT, vpc_flow_lines

LAMBDA_GROUP = "/aws/lambda/orders-api"
VPC_GROUP = "vpc-flow-logs-prod"


@pytest.fixture
def env(aws_endpoint: str, opensearch_url: str, boto: Any, backup: Any, unique_name: Any) -> dict[str, Any]:
    prefix = unique_name("kin")
    stream = unique_name("stream")
    table = unique_name("leases")
    return {
        "kinesis": boto.client("kinesis"), "logs": boto.client("logs"), "ddb": boto.client("dynamodb"),
        "s3": boto.client("s3"), "os": os_client(opensearch_url), "prefix": prefix, "stream": stream,
        "table": table, "backup": backup,
        "cfg": lambda **src: kinesis_config(aws_endpoint=aws_endpoint, opensearch_url=opensearch_url,
                                            backup=backup, prefix=prefix, lease_table=table,
                                            **{"stream": stream, **src}),
    }


def _subscribe(logs: Any, group: str, stream_arn: str) -> None:
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s1")
    logs.put_subscription_filter(logGroupName=group, filterName="to-kinesis", filterPattern="",
                                 destinationArn=stream_arn, roleArn=f"arn:aws:iam::{ACCOUNT}:role/cwl-to-kinesis")


def _put_events(logs: Any, group: str, messages: list[str], batch: int = 50) -> None:
    now = int(time.time() * 1000)
    for start in range(0, len(messages), batch):
        events = [{"timestamp": now + i, "message": m} for i, m in enumerate(messages[start:start + batch], start)]
        logs.put_log_events(logGroupName=group, logStreamName="s1", logEvents=events)


def _lambda_messages(n: int) -> list[str]:
    out = []
    for i in range(n):
        rid = f"6234bffe-149a-b642-81ff-{i:012d}"
        if i % 3 == 0:
            out.append(f"START RequestId: {rid} Version: $LATEST\n")
        elif i % 3 == 1:
            out.append(f"END RequestId: {rid}\n")
        else:
            out.append(f"REPORT RequestId: {rid}\tDuration: {i}.5 ms\tBilled Duration: {i + 1} ms\t"
                       f"Memory Size: 128 MB\tMax Memory Used: 70 MB\t\n")
    return out


async def test_cloudwatch_logs_subscription_vpc_flow_and_lambda(env: dict[str, Any]) -> None:
    """CloudWatch Logs -> subscription filter -> Kinesis -> Sluice: every event once, under its own type."""
    arn = create_stream(env["kinesis"], env["stream"], 2)
    _subscribe(env["logs"], LAMBDA_GROUP, arn)
    _subscribe(env["logs"], VPC_GROUP, arn)
    vpc = list(vpc_flow_lines(150, seed=5))[1:]  # CloudWatch delivery has no header line
    lam = _lambda_messages(90)
    _put_events(env["logs"], VPC_GROUP, vpc)
    _put_events(env["logs"], LAMBDA_GROUP, lam)

    cfg = env["cfg"](parser_options={"log_groups": {"vpc-flow-logs-*": "vpc_flow"}})
    await run_worker_until(cfg, lambda: count(env["os"], env["prefix"]) >= len(vpc) + len(lam), timeout=90,
                           settle=2.0)

    docs = scroll_hits(env["os"], env["prefix"])
    by_type: dict[str, int] = {}
    for hit in docs:
        kind = hit["_index"].split("-")[-2]
        by_type[kind] = by_type.get(kind, 0) + 1
    assert by_type == {"vpc_flow": len(vpc), "lambda": len(lam)}
    ids = [hit["_id"] for hit in docs]
    assert len(set(ids)) == len(ids)
    # Each event once: the CloudWatch event ids are all there, each on one document.
    event_ids = [hit["_source"]["aws"]["cloudwatch"]["event_id"] for hit in docs]
    assert len(set(event_ids)) == len(vpc) + len(lam)
    one_vpc = next(h["_source"] for h in docs if "vpc_flow" in h["_index"])
    assert one_vpc["source"]["ip"] and one_vpc["aws"]["cloudwatch"]["log_group"] == VPC_GROUP
    assert one_vpc["aws"]["kinesis"]["name"] == env["stream"]
    assert one_vpc["aws"]["kinesis"]["shard_id"].startswith("shardId-")
    reports = [h["_source"] for h in docs if "lambda" in h["_index"] and "REPORT" in h["_source"]["message"]]
    assert reports and all(r["aws"]["lambda"]["report"]["billed_duration"]["ms"] > 0 for r in reports), reports[:1]
    # Checkpoints moved to the last records and the leases were released on shutdown.
    table = leases(env["ddb"], env["table"])
    assert len(table) == 2
    assert all(lease["owner"] is None for lease in table.values()), table
    # CloudWatch Logs picks a random partition key per delivery, so a shard may get no record at all (1 run in
    # 16 with 5 deliveries): its checkpoint must stay where it started, every other one at its last record.
    last = last_sequence_numbers(env["kinesis"], env["stream"])
    assert any(last.values()) and set(last) == set(table)
    assert {sid: lease["checkpoint"] for sid, lease in table.items()} == {
        sid: seq or "TRIM_HORIZON" for sid, seq in last.items()}, (table, last)
    assert backup_records(env["s3"], env["backup"].bucket) == ([], [])


async def test_plain_gzip_and_kpl_records_with_a_fixed_log_type(env: dict[str, Any]) -> None:
    """Plain, gzip'd and KPL-aggregated records of VPC flow lines; ids from shard + sequence (+ sub-index)."""
    create_stream(env["kinesis"], env["stream"], 1)
    lines = list(vpc_flow_lines(60, seed=9))[1:]
    k = env["kinesis"]
    k.put_record(StreamName=env["stream"], PartitionKey="a", Data="\n".join(lines[:20]).encode())
    k.put_record(StreamName=env["stream"], PartitionKey="b", Data=gzip.compress("\n".join(lines[20:40]).encode()))
    k.put_record(StreamName=env["stream"], PartitionKey="c",
                 Data=aggregate([(f"pk{i}", line.encode()) for i, line in enumerate(lines[40:])]))
    k.put_record(StreamName=env["stream"], PartitionKey="d", Data=b"\x1f\x8b\x08\x00garbage that is not gzip")

    before = metric("sluice_kinesis_records_read_total", source="stream")
    await run_worker_until(env["cfg"](log_type="vpc_flow"), lambda: count(env["os"], env["prefix"]) >= len(lines),
                           timeout=60, settle=1.5)
    docs = scroll_hits(env["os"], env["prefix"])
    assert len(docs) == len(lines)
    assert sorted(d["_source"]["source"]["ip"] for d in docs) == sorted(line.split()[3] for line in lines)
    subs = sorted(d["_source"]["aws"]["kinesis"].get("subsequence_number", -1) for d in docs)
    assert subs == [-1] * 40 + list(range(20))
    assert metric("sluice_kinesis_records_read_total", source="stream") - before == 4
    # The corrupt record is kept whole, with its exact bytes.
    records, _ = backup_records(env["s3"], env["backup"].bucket)
    assert [r["reason"] for r in records] == ["decode_error"]
    assert records[0]["origin"]["partition_key"] == "d"
    # Read again from the start (as after a lost checkpoint): the same ids, so nothing is indexed twice.
    env["ddb"].delete_table(TableName=env["table"])
    await run_worker_until(env["cfg"](log_type="vpc_flow"), lambda: _all_checkpointed(env), timeout=60, settle=1.0)
    assert count(env["os"], env["prefix"]) == len(lines)


def _all_checkpointed(env: dict[str, Any]) -> bool:
    try:
        table = leases(env["ddb"], env["table"])
    except Exception:
        return False
    return bool(table) and all(lease["checkpoint"] and lease["checkpoint"].isdigit() for lease in table.values())


async def test_a_stream_in_another_account_through_an_assumed_role(env: dict[str, Any], aws_endpoint: str) -> None:
    """The stream lives in account 111111111111; the worker assumes a role there (STS) to read it, while the lease
    table stays in the worker's own account. Without the role the stream does not exist for the worker."""
    import boto3

    other = "111111111111"
    role = f"arn:aws:iam::{other}:role/sluice-reader"
    creds = boto3.client("sts", endpoint_url=aws_endpoint).assume_role(
        RoleArn=role, RoleSessionName="test-producer")["Credentials"]
    theirs = boto3.client("kinesis", endpoint_url=aws_endpoint, aws_access_key_id=creds["AccessKeyId"],
                          aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"])
    arn = create_stream(theirs, env["stream"], 1)
    assert f":{other}:" in arn
    lines = list(vpc_flow_lines(30, seed=21))[1:]
    theirs.put_record(StreamName=env["stream"], PartitionKey="a", Data="\n".join(lines).encode())

    await run_worker_until(env["cfg"](stream=arn, role_arn=role, log_type="vpc_flow"),
                           lambda: count(env["os"], env["prefix"]) >= len(lines), timeout=60, settle=1.0)
    assert count(env["os"], env["prefix"]) == len(lines)
    assert list(leases(env["ddb"], env["table"])) == ["shardId-000000000000"]  # in our account's table


async def test_cloudfront_real_time_log_records(env: dict[str, Any]) -> None:
    """CloudFront real-time logs arrive on Kinesis one request per record; the source names the type."""
    from worker.parsers.cloudfront_realtime import PARSER

    create_stream(env["kinesis"], env["stream"], 1)
    example = PARSER.example
    for i in range(5):
        env["kinesis"].put_record(StreamName=env["stream"], PartitionKey=f"edge-{i}",
                                  Data=example.replace("1591112398.123", f"1591112398.{i:03d}").encode())
    written = metric("sluice_kinesis_checkpoints_total", source="stream", outcome="written")
    await run_worker_until(env["cfg"](log_type="cloudfront_realtime"),
                           lambda: count(env["os"], env["prefix"]) >= 5, timeout=60, settle=1.0)
    docs = scroll_hits(env["os"], env["prefix"])
    assert len(docs) == 5 and all("cloudfront_realtime" in d["_index"] for d in docs)
    assert {d["_source"]["source"]["ip"] for d in docs} == {"198.51.100.23"}
    assert sorted(d["_source"]["@timestamp"] for d in docs)[0].startswith("2020-06-02T15:39:58.000")
    # Metrics: checkpoints were written, and a stopped worker holds no lease.
    assert metric("sluice_kinesis_checkpoints_total", source="stream", outcome="written") > written
    assert metric("sluice_kinesis_leases_held", source="stream") == 0


async def test_latest_skips_what_the_stream_held_before_the_first_start(env: dict[str, Any]) -> None:
    """`initial_position: LATEST` starts new shards at the tip; once checkpointed, a restart resumes there."""
    create_stream(env["kinesis"], env["stream"], 1)
    lines = list(vpc_flow_lines(30, seed=23))[1:]
    env["kinesis"].put_record(StreamName=env["stream"], PartitionKey="old", Data="\n".join(lines[:10]).encode())
    cfg = env["cfg"](log_type="vpc_flow", initial_position="LATEST")

    def put_new() -> bool:
        # Written only once the worker holds the lease (its iterator then points past the old record).
        if not leases(env["ddb"], env["table"]) or not any(
                lease["owner"] for lease in leases(env["ddb"], env["table"]).values()):
            return False
        if not state["put"]:
            env["kinesis"].put_record(StreamName=env["stream"], PartitionKey="new",
                                      Data="\n".join(lines[10:20]).encode())
            state["put"] = True
        return count(env["os"], env["prefix"]) >= 10

    state = {"put": False}
    await run_worker_until(cfg, put_new, timeout=60, settle=1.0)
    assert count(env["os"], env["prefix"]) == 10
    # Restarted: the checkpoint, not LATEST, decides; a record written while no worker ran is read.
    env["kinesis"].put_record(StreamName=env["stream"], PartitionKey="later", Data="\n".join(lines[20:]).encode())
    await run_worker_until(cfg, lambda: count(env["os"], env["prefix"]) >= 20, timeout=60, settle=1.0)
    ips = sorted(d["_source"]["source"]["ip"] for d in scroll_hits(env["os"], env["prefix"]))
    assert ips == sorted(line.split()[3] for line in lines[10:])
