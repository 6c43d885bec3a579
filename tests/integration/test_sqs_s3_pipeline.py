"""S3 notifications on SQS -> worker -> OpenSearch, against real servers (no mocked wire)."""

from __future__ import annotations

import gzip
import json
from typing import Any

import orjson
import pytest

from tests.support import (
    all_docs,
    backup_records,
    drained,
    index_counts,
    make_config,
    metric,
    os_client,
    queue_depth,
    replay_pointers,
    run_worker_until,
)
from worker.samples import ACCOUNT, REGION, alb_lines, cloudtrail_records, gzip_lines, vpc_flow_lines

N = 120
DAY = "2026/11/22"
VPC_KEY = f"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/{DAY}/{ACCOUNT}_vpcflowlogs_{REGION}_fl-1_20261122T0000Z_a.log.gz"
ALB_KEY = (f"AWSLogs/{ACCOUNT}/elasticloadbalancing/{REGION}/{DAY}/"
           f"{ACCOUNT}_elasticloadbalancing_{REGION}_app.lb.1_20261122T0000Z_10.0.0.1_a.log.gz")
CT_KEY = f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{DAY}/{ACCOUNT}_CloudTrail_{REGION}_20261122T0000Z_a.json.gz"


@pytest.fixture
def env(aws_endpoint: str, opensearch_url: str, boto: Any, s3_queue: Any, backup: Any,
        unique_name: Any) -> dict[str, Any]:
    prefix = unique_name("it")
    return {
        "s3": boto.client("s3"), "sqs": boto.client("sqs"), "os": os_client(opensearch_url), "prefix": prefix,
        "queue": s3_queue, "backup": backup,
        "cfg": lambda **over: make_config(
            aws_endpoint=aws_endpoint, opensearch_url=opensearch_url, queue_url=s3_queue.queue_url,
            backup_bucket=backup.bucket, replay_queue_url=backup.replay_queue_url, index_prefix=prefix, **over),
    }


def _upload_three_types(env: dict[str, Any]) -> None:
    s3, bucket = env["s3"], env["queue"].bucket
    s3.put_object(Bucket=bucket, Key=VPC_KEY, Body=gzip_lines(vpc_flow_lines(N, seed=11)))
    s3.put_object(Bucket=bucket, Key=ALB_KEY, Body=gzip_lines(alb_lines(N, seed=12)))
    s3.put_object(Bucket=bucket, Key=CT_KEY,
                  Body=gzip.compress(orjson.dumps({"Records": cloudtrail_records(N, seed=13)})))


def _by_type(counts: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name, n in counts.items():
        log_type = name.split("-")[-2]
        out[log_type] = out.get(log_type, 0) + n
    return out


async def test_three_log_types_end_to_end(env: dict[str, Any]) -> None:
    _upload_three_types(env)
    await run_worker_until(env["cfg"](), drained(env["sqs"], env["queue"].queue_url))

    counts = index_counts(env["os"], env["prefix"])
    assert _by_type(counts) == {"vpc_flow": N, "alb": N, "cloudtrail": N}
    assert all(name.endswith("2026.11.22") for name in counts), counts
    assert queue_depth(env["sqs"], env["queue"].queue_url) == 0
    assert backup_records(env["s3"], env["backup"].bucket) == ([], [])

    client = env["os"]
    # Fields and types: mappings come from the installed templates, values from the logs themselves.
    vpc_index = f"{env['prefix']}-vpc_flow-2026.11.22"
    mapping = client.indices.get_mapping(index=vpc_index)[vpc_index]["mappings"]["properties"]
    assert mapping["source"]["properties"]["ip"]["type"] == "ip"
    assert mapping["source"]["properties"]["bytes"]["type"] == "long"
    assert mapping["@timestamp"]["type"] == "date"
    expected_bytes = sum(int(line.split()[9]) for line in list(vpc_flow_lines(N, seed=11))[1:])
    agg = client.search(index=vpc_index, body={"size": 0, "aggs": {"b": {"sum": {"field": "source.bytes"}}}})
    assert agg["aggregations"]["b"]["value"] == expected_bytes
    in_range = client.count(index=vpc_index, body={"query": {"term": {"source.ip": "10.0.0.0/16"}}})["count"]
    assert in_range == N  # every generated source address is in 10.0.0.0/16

    alb = all_docs(client, f"{env['prefix']}-alb-2026.11.22")[0]["_source"]
    assert alb["http"]["response"]["status_code"] in (200, 301, 404, 500, 502)
    assert isinstance(alb["source"]["ip"], str) and alb["@timestamp"].startswith("2026-11-22T")
    ct = all_docs(client, f"{env['prefix']}-cloudtrail-2026.11.22")
    assert {d["_source"]["event"]["action"] for d in ct} <= {
        "DescribeInstances", "GetBucketAcl", "CreateUser", "AssumeRole", "ConsoleLogin"}
    assert metric("sluice_documents_indexed_total", result="created") >= 3 * N


async def test_same_object_notified_twice_yields_no_duplicates(env: dict[str, Any]) -> None:
    s3, sqs, queue = env["s3"], env["sqs"], env["queue"]
    s3.put_object(Bucket=queue.bucket, Key=VPC_KEY, Body=gzip_lines(vpc_flow_lines(N, seed=21)))
    await run_worker_until(env["cfg"](), drained(sqs, queue.queue_url))
    etag = s3.head_object(Bucket=queue.bucket, Key=VPC_KEY)["ETag"].strip('"')
    # The same notification again, as SQS at-least-once delivery (or S3 itself) may do.
    record = {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": queue.bucket},
                                                       "object": {"key": VPC_KEY, "size": 1, "eTag": etag}}}
    sqs.send_message(QueueUrl=queue.queue_url, MessageBody=json.dumps({"Records": [record]}))
    exists_before = metric("sluice_documents_indexed_total", result="exists")
    await run_worker_until(env["cfg"](), drained(sqs, queue.queue_url))

    assert _by_type(index_counts(env["os"], env["prefix"])) == {"vpc_flow": N}
    assert metric("sluice_documents_indexed_total", result="exists") - exists_before == N
    assert queue_depth(sqs, queue.queue_url) == 0


async def test_bad_input_is_dead_lettered_and_message_still_deleted(env: dict[str, Any]) -> None:
    s3, sqs, queue, client = env["s3"], env["sqs"], env["queue"], env["os"]
    prefix = env["prefix"]
    # A document OpenSearch rejects: the index exists with destination.port mapped as an ip.
    client.indices.create(index=f"{prefix}-vpc_flow-2026.11.23", body={
        "mappings": {"properties": {"destination": {"properties": {"port": {"type": "ip"}}}}}})
    lines = list(vpc_flow_lines(10, seed=31))
    lines.insert(4, "this is not a flow log line")
    bad_day = lines[6].split()
    bad_day[10], bad_day[11] = "1795392000", "1795392060"  # 2026-11-23: lands in the conflicting index
    lines[6] = " ".join(bad_day)
    corrupt = bytearray(gzip_lines(vpc_flow_lines(50, seed=32)))
    corrupt[len(corrupt) // 2: len(corrupt) // 2 + 64] = b"\x00" * 64
    s3.put_object(Bucket=queue.bucket, Key=VPC_KEY, Body=gzip_lines(lines))
    s3.put_object(Bucket=queue.bucket, Key=VPC_KEY.replace("_a.log.gz", "_corrupt.log.gz"), Body=bytes(corrupt))

    before = {r: metric("sluice_documents_dead_lettered_total", reason=r)
              for r in ("parse_error", "rejected", "decode_error")}
    await run_worker_until(env["cfg"](), drained(sqs, queue.queue_url))

    records, objects = backup_records(s3, env["backup"].bucket)
    reasons = sorted(r["reason"] for r in records)
    assert reasons == ["parse_error", "rejected"], records
    parse_err = next(r for r in records if r["reason"] == "parse_error")
    assert parse_err["raw"] == "this is not a flow log line"
    assert parse_err["origin"]["key"] == VPC_KEY and parse_err["offset"] > 0
    rejected = next(r for r in records if r["reason"] == "rejected")
    assert "400" in rejected["detail"] and rejected["document"]["destination"]["port"]
    assert len(objects) == 1 and objects[0].endswith("_corrupt.log.gz")
    head = s3.head_object(Bucket=env["backup"].bucket, Key=objects[0])
    assert head["Metadata"]["sluice-reason"] == "decode_error"
    for reason in ("parse_error", "rejected", "decode_error"):
        assert metric("sluice_documents_dead_lettered_total", reason=reason) - before[reason] >= 1, reason
    pointers = replay_pointers(sqs, env["backup"].replay_queue_url)
    assert {p["kind"] for p in pointers} == {"records", "object"}
    assert queue_depth(sqs, queue.queue_url) == 0
    # The good lines of the damaged object are still indexed.
    counts = _by_type(index_counts(client, prefix))
    assert counts["vpc_flow"] >= 9


async def test_unknown_log_type_object_is_kept(env: dict[str, Any]) -> None:
    s3, sqs, queue = env["s3"], env["sqs"], env["queue"]
    s3.put_object(Bucket=queue.bucket, Key="misc/notes.txt", Body=b"hello\nworld\n")
    await run_worker_until(env["cfg"](), drained(sqs, queue.queue_url))
    records, objects = backup_records(s3, env["backup"].bucket)
    assert records == [] and len(objects) == 1 and objects[0].endswith("misc/notes.txt")
    assert queue_depth(sqs, queue.queue_url) == 0
