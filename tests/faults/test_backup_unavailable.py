"""The backup bucket missing while a record must be dead-lettered: the message is redelivered, not acknowledged
with the record nowhere; once the bucket is back, the record is kept and the good lines are indexed once."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support import (
    RunningWorker,
    backup_records,
    drained,
    index_counts,
    make_config,
    metric,
    os_client,
    queue_depth,
    wait_for,
)
from worker.samples import ACCOUNT, REGION, gzip_lines, vpc_flow_lines

N = 40


async def test_dead_letter_write_failure_redelivers_the_message(aws_endpoint: str, opensearch_url: str, boto: Any,
                                                                s3_queue: Any, backup: Any, unique_name: Any) -> None:
    s3, sqs = boto.client("s3"), boto.client("sqs")
    prefix = unique_name("nobackup")
    missing_bucket = unique_name("gone")  # not created yet: every dead-letter write fails
    cfg = make_config(aws_endpoint=aws_endpoint, opensearch_url=opensearch_url, queue_url=s3_queue.queue_url,
                      backup_bucket=missing_bucket, replay_queue_url=backup.replay_queue_url, index_prefix=prefix,
                      dead_letters__retry_seconds=1.0)
    lines = list(vpc_flow_lines(N, seed=71))
    lines.insert(7, "definitely not a flow log line")
    key = f"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/2026/11/22/{ACCOUNT}_vpcflowlogs_{REGION}_fl-1_nobackup.log.gz"
    nacked_before = metric("sluice_sqs_messages_nacked_total")
    async with RunningWorker(cfg):
        s3.put_object(Bucket=s3_queue.bucket, Key=key, Body=gzip_lines(lines))
        await wait_for(lambda: metric("sluice_sqs_messages_nacked_total") > nacked_before, 60,
                       "the message to be nacked because its dead letter could not be written")
        await asyncio.sleep(1)
        assert queue_depth(sqs, s3_queue.queue_url) == 1, "the message was acknowledged with a record nowhere"
        s3.create_bucket(Bucket=missing_bucket)
        await wait_for(drained(sqs, s3_queue.queue_url), 90, "the redelivered message to be acknowledged")
    assert sum(index_counts(os_client(opensearch_url), prefix).values()) == N  # good lines once, despite 2 reads
    records, objects = backup_records(s3, missing_bucket)
    assert [r["raw"] for r in records if r["reason"] == "parse_error"][:1] == ["definitely not a flow log line"]
    assert objects == []
