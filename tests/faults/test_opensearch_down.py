"""OpenSearch stopped while objects arrive: nothing is deleted, nothing is dead-lettered, all lands later."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support import (
    RunningWorker,
    backup_records,
    drained,
    index_counts,
    make_config,
    os_client,
    queue_depth,
    replay_pointers,
    wait_for,
)
from worker.samples import ACCOUNT, REGION, gzip_lines, vpc_flow_lines

N = 80


async def test_opensearch_down_then_back(aws_endpoint: str, boto: Any, s3_queue: Any, backup: Any,
                                         private_opensearch: Any, unique_name: Any) -> None:
    s3, sqs = boto.client("s3"), boto.client("sqs")
    prefix = unique_name("down")
    cfg = make_config(aws_endpoint=aws_endpoint, opensearch_url=private_opensearch.url,
                      queue_url=s3_queue.queue_url, backup_bucket=backup.bucket,
                      replay_queue_url=backup.replay_queue_url, index_prefix=prefix,
                      opensearch__retry={"initial_backoff": 0.2, "max_backoff": 0.5, "max_elapsed": 2},
                      opensearch__bulk={"flush_interval": 0.2, "timeout": 3})
    async with RunningWorker(cfg):
        private_opensearch.stop()
        for i in range(3):
            key = f"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/2026/11/22/{ACCOUNT}_vpcflowlogs_{REGION}_fl-1_{i}.log.gz"
            s3.put_object(Bucket=s3_queue.bucket, Key=key, Body=gzip_lines(vpc_flow_lines(N, seed=100 + i)))
        await asyncio.sleep(8)  # several receive -> fail -> nack cycles
        assert queue_depth(sqs, s3_queue.queue_url) == 3, "a message was deleted while OpenSearch was down"
        assert backup_records(s3, backup.bucket) == ([], [])
        private_opensearch.start()
        await wait_for(drained(sqs, s3_queue.queue_url), 90, "the queue to drain after recovery")
    client = os_client(private_opensearch.url)
    assert sum(index_counts(client, prefix).values()) == 3 * N
    assert backup_records(s3, backup.bucket) == ([], [])
    assert replay_pointers(sqs, backup.replay_queue_url) == []
