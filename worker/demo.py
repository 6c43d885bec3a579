"""`sluice demo`: the whole path on one machine, in about a minute, with nothing to install but the venv.

Starts an AWS emulator (moto server) and an OpenSearch-compatible engine (osmem) unless endpoints are given,
creates the bucket, queues and notification, uploads real samples (the corpus next to the checkout when
present, plus generated ones) under the keys AWS uses, runs the worker until the queue is drained, prints
what landed, and stops everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import os
import time
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import REGISTRY

from worker.config import parse_config
from worker.samples import ACCOUNT, REGION, sample_objects

DAY = "2026/11/22"

# corpus folder -> (key template, file filter)
_CORPUS_LAYOUT: dict[str, str] = {
    "vpcflow": f"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/{DAY}/{ACCOUNT}_vpcflowlogs_{REGION}_fl-corpus_{{name}}",
    "elb": (f"AWSLogs/{ACCOUNT}/elasticloadbalancing/{REGION}/{DAY}/"
            f"{ACCOUNT}_elasticloadbalancing_{REGION}_app.corpus_{{name}}"),
    "cloudtrail": f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{DAY}/{ACCOUNT}_CloudTrail_{REGION}_{{name}}",
}


def default_corpus() -> Path | None:
    for base in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidate = base.parent / "shared" / "corpus"
        if candidate.is_dir():
            return candidate
    return None


def corpus_objects(corpus: Path) -> dict[str, bytes]:
    """The corpus samples the demo can ingest, keyed as AWS would deliver them."""
    out: dict[str, bytes] = {}
    for folder, template in _CORPUS_LAYOUT.items():
        for path in sorted((corpus / folder).glob("*")):
            name = path.name
            if name.endswith("-expected.json") or name.startswith(("vrl_", "opensearch-catalog_amazon_vpc_flow")):
                continue
            if folder == "elb" and "alb" not in name:
                continue  # classic ELB and NLB parsers come with the parser issue
            if folder == "cloudtrail" and "digest" in name:
                key = f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/{REGION}/{DAY}/{ACCOUNT}_CloudTrail-Digest_{REGION}_{name}"
            else:
                key = template.format(name=name)
            out[key] = path.read_bytes()
    return out


def run_demo(aws_endpoint: str | None = None, opensearch_url: str | None = None,
             corpus: str | None = None) -> int:
    import uvloop

    return uvloop.run(_demo(
        aws_endpoint or os.environ.get("SLUICE_AWS_ENDPOINT"),
        opensearch_url or os.environ.get("SLUICE_OPENSEARCH_URL"),
        Path(corpus) if corpus else default_corpus(),
    ))


async def _demo(aws_endpoint: str | None, opensearch_url: str | None, corpus: Path | None) -> int:
    from worker.local_servers import MotoServer, OsmemProcess
    from worker.telemetry import configure_logging

    configure_logging("warning", "console")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    started: list[Any] = []
    try:
        if not aws_endpoint:
            print("starting the AWS emulator (moto server) ...", flush=True)
            moto = MotoServer()
            started.append(moto)
            aws_endpoint = moto.endpoint_url
        if not opensearch_url:
            print("starting the OpenSearch-compatible engine (osmem) ...", flush=True)
            osmem = OsmemProcess()
            started.append(osmem)
            opensearch_url = osmem.url
        print(f"  AWS endpoint:        {aws_endpoint}\n  OpenSearch endpoint: {opensearch_url}")
        return await _run(aws_endpoint, opensearch_url, corpus)
    finally:
        for proc in reversed(started):
            proc.close()
        if started:
            print("stopped the servers the demo started")


async def _run(aws_endpoint: str, opensearch_url: str, corpus: Path | None) -> int:
    from aiobotocore.session import get_session
    from opensearchpy import AsyncOpenSearch

    from worker.app import Worker

    names = {"bucket": "sluice-demo-logs", "backup": "sluice-demo-backup", "queue": "sluice-demo-notifications",
             "dlq": "sluice-demo-notifications-dlq", "replay": "sluice-demo-replay"}
    session = get_session()
    async with session.create_client("s3", region_name=REGION, endpoint_url=aws_endpoint) as s3, \
            session.create_client("sqs", region_name=REGION, endpoint_url=aws_endpoint) as sqs:
        queue_url = await _create_pipeline_resources(s3, sqs, names)
        replay_url = (await sqs.get_queue_url(QueueName=names["replay"]))["QueueUrl"]
        objects = sample_objects(per_type=500)
        if corpus is not None:
            objects.update(corpus_objects(corpus))
            print(f"uploading {len(objects)} objects (generated samples + corpus files from {corpus}) ...")
        else:
            print(f"uploading {len(objects)} generated sample objects ...")
        total_bytes = 0
        for key, body in objects.items():
            await s3.put_object(Bucket=names["bucket"], Key=key, Body=body)
            total_bytes += len(body)

        cfg = parse_config({
            "aws": {"region": REGION, "endpoint_url": aws_endpoint},
            "opensearch": {"hosts": [opensearch_url], "number_of_replicas": 0,
                           "bulk": {"flush_interval": 0.5}},
            "dead_letters": {"bucket": names["backup"], "replay_queue_url": replay_url},
            "sources": {"demo": {"type": "sqs_s3", "queue_url": queue_url, "wait_time": 1,
                                 "visibility_timeout": 60}},
            "telemetry": {"metrics_port": 0, "log_level": "warning", "log_format": "console"},
            "worker": {"shutdown_grace": 10},
        })
        worker = Worker(cfg)
        started = time.monotonic()
        task = asyncio.create_task(worker.run(install_signals=False))
        print("worker running; waiting for the queue to drain ...", flush=True)
        await _wait_drained(sqs, queue_url, task)
        elapsed = time.monotonic() - started
        worker.request_stop()
        await task
        left = await _queue_depth(sqs, queue_url)
        dead = await _dead_letters(s3, names["backup"])

    client = AsyncOpenSearch(hosts=[opensearch_url], timeout=120)
    try:
        with contextlib.suppress(Exception):
            await client.indices.refresh(index="sluice-*")
        indices = await client.indices.get(index="sluice-*")
        counts = {name: (await client.count(index=name))["count"] for name in sorted(indices)}
    finally:
        await client.close()

    docs = sum(counts.values())
    print("\n== what landed ==")
    print(f"{'index':45} {'documents':>10}")
    for name, n in counts.items():
        print(f"{name:45} {n:>10}")
    per_type: dict[str, int] = {}
    for name, n in counts.items():
        per_type[name.split("-")[1]] = per_type.get(name.split("-")[1], 0) + n
    print("\ndocuments indexed per log type: " + ", ".join(f"{k}={v}" for k, v in sorted(per_type.items())))
    print(f"dead letters: {sum(dead.values())} record(s)" + (f" by reason {dead}" if dead else ""))
    print(f"messages left on the queue: {left}")
    decompressed = _metric_sum("sluice_decompressed_bytes_total")
    print(f"throughput: {docs / elapsed:,.0f} documents/s, {decompressed / elapsed / 1e6:.2f} MB/s decompressed "
          f"({total_bytes / 1e6:.2f} MB stored, {elapsed:.1f} s wall, bounded by the test engine's speed)")
    ok = left == 0 and all(per_type.get(t, 0) > 0 for t in ("vpc_flow", "alb", "cloudtrail"))
    print("demo: OK" if ok else "demo: FAILED")
    return 0 if ok else 1


async def _create_pipeline_resources(s3: Any, sqs: Any, names: dict[str, str]) -> str:
    for bucket in (names["bucket"], names["backup"]):
        with contextlib.suppress(Exception):
            await s3.create_bucket(Bucket=bucket)
    dlq_url = (await sqs.create_queue(QueueName=names["dlq"]))["QueueUrl"]
    dlq_arn = await _queue_arn(sqs, dlq_url)
    queue_url = (await sqs.create_queue(QueueName=names["queue"], Attributes={
        "RedrivePolicy": orjson.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}).decode(),
        "VisibilityTimeout": "60",
    }))["QueueUrl"]
    await sqs.create_queue(QueueName=names["replay"])
    queue_arn = await _queue_arn(sqs, queue_url)
    await s3.put_bucket_notification_configuration(Bucket=names["bucket"], NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}],
    })
    return str(queue_url)


async def _queue_arn(sqs: Any, url: str) -> str:
    attrs = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]))["Attributes"]
    return str(attrs["QueueArn"])


async def _queue_depth(sqs: Any, queue_url: str) -> int:
    attrs = (await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]))["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


async def _wait_drained(sqs: Any, queue_url: str, task: asyncio.Task[None], timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    empty_polls = 0
    while time.monotonic() < deadline and not task.done():
        await asyncio.sleep(1.0)
        empty_polls = empty_polls + 1 if await _queue_depth(sqs, queue_url) == 0 else 0
        if empty_polls >= 2:
            return
    if task.done():
        task.result()


async def _dead_letters(s3: Any, bucket: str) -> dict[str, int]:
    reasons: dict[str, int] = {}
    resp = await s3.list_objects_v2(Bucket=bucket, Prefix="dead-letters/")
    for obj in resp.get("Contents", []):
        key = obj["Key"]
        if key.endswith(".ndjson.gz"):
            body = await (await s3.get_object(Bucket=bucket, Key=key))["Body"].read()
            for line in gzip.decompress(body).splitlines():
                reason = orjson.loads(line)["reason"]
                reasons[reason] = reasons.get(reason, 0) + 1
        else:
            reasons["object"] = reasons.get("object", 0) + 1
    return reasons


def _metric_sum(name: str) -> float:
    total = 0.0
    for metric in REGISTRY.collect():
        for sample in metric.samples:
            if sample.name == name:
                total += sample.value
    return total
