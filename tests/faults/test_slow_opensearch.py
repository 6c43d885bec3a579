"""OpenSearch hangs (SIGSTOP): the worker stops receiving at its in-flight limit, keeps its messages
invisible by extending their visibility, reports not-yet-done work on /metrics, and loses nothing."""

from __future__ import annotations

import asyncio
import urllib.request
from typing import Any

from tests.support import (
    RunningWorker,
    drained,
    index_counts,
    make_config,
    metric,
    os_client,
    wait_for,
)
from worker.local_servers import free_port
from worker.samples import ACCOUNT, REGION, gzip_lines, vpc_flow_lines

OBJECTS, LINES, IN_FLIGHT = 8, 50, 2


def _queue_attrs(sqs: Any, url: str) -> tuple[int, int]:
    a = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


async def test_hung_opensearch_holds_back_receives(aws_endpoint: str, boto: Any, s3_queue: Any, backup: Any,
                                                  private_opensearch: Any, unique_name: Any) -> None:
    s3, sqs = boto.client("s3"), boto.client("sqs")
    prefix = unique_name("slow")
    port = free_port()
    cfg = make_config(aws_endpoint=aws_endpoint, opensearch_url=private_opensearch.url,
                      queue_url=s3_queue.queue_url, backup_bucket=backup.bucket,
                      replay_queue_url=backup.replay_queue_url, index_prefix=prefix,
                      sources__logs__max_in_flight=IN_FLIGHT, sources__logs__visibility_timeout=10,
                      opensearch__bulk={"flush_interval": 0.2, "timeout": 60, "max_in_flight": 1},
                      opensearch__retry={"initial_backoff": 0.5, "max_backoff": 1, "max_elapsed": 120},
                      telemetry={"metrics_port": port, "metrics_host": "127.0.0.1"})
    extensions_before = metric("sluice_sqs_visibility_extensions_total")
    exists_before = metric("sluice_documents_indexed_total", result="exists")
    async with RunningWorker(cfg):
        assert (await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/healthz"))[0] == 200
        assert (await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/readyz"))[0] == 200
        private_opensearch.pause()
        try:
            for i in range(OBJECTS):
                key = f"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/2026/11/22/{ACCOUNT}_vpcflowlogs_{REGION}_f_{i}.log.gz"
                s3.put_object(Bucket=s3_queue.bucket, Key=key, Body=gzip_lines(vpc_flow_lines(LINES, seed=300 + i)))
            for _ in range(8):  # 16 s: past the 10 s visibility timeout
                await asyncio.sleep(2)
                visible, in_flight = await asyncio.to_thread(_queue_attrs, sqs, s3_queue.queue_url)
                assert in_flight <= IN_FLIGHT, f"{in_flight} messages taken while OpenSearch hangs"
                assert visible >= OBJECTS - IN_FLIGHT
            status, text = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/metrics")
            assert status == 200 and "sluice_messages_in_flight" in text and "sluice_bulk_requests_in_flight" in text
            assert metric("sluice_sqs_visibility_extensions_total") > extensions_before
        finally:
            private_opensearch.resume()
        await wait_for(drained(sqs, s3_queue.queue_url), 120, "the queue to drain after OpenSearch resumed")
    assert sum(index_counts(os_client(private_opensearch.url), prefix).values()) == OBJECTS * LINES
    # Visibility was extended, so no message was redelivered behind the worker's back: no 409s.
    assert metric("sluice_documents_indexed_total", result="exists") == exists_before
