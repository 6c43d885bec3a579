"""OpenSearch stopped while a Kinesis shard is being read: the checkpoint does not move; after recovery every
record is indexed.

The sink gives up on a bulk request after `retry.max_elapsed` (3 s here) and the outage lasts longer, so the
reader's batches fail (RETRY) and it rewinds to its checkpoint: nothing after the checkpoint is considered done
until it is indexed for real.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.kinesis_support import create_stream, kinesis_config, leases
from tests.support import count, metric, os_client, wait_for
from worker.app import Worker
from worker.samples import vpc_flow_lines


async def test_checkpoints_hold_while_opensearch_is_down(aws_endpoint: str, private_opensearch: Any, boto: Any,
                                                         backup: Any, unique_name: Any) -> None:
    kinesis, ddb = boto.client("kinesis"), boto.client("dynamodb")
    client = os_client(private_opensearch.url)
    stream, table, prefix = unique_name("osdown"), unique_name("osdown-leases"), unique_name("osdown")
    create_stream(kinesis, stream, 1)
    lines = iter(list(vpc_flow_lines(300, seed=71))[1:])
    sequences: list[str] = []

    def put(n: int) -> None:
        for i in range(n):
            resp = kinesis.put_record(StreamName=stream, PartitionKey=f"k{i}", Data=next(lines).encode())
            sequences.append(resp["SequenceNumber"])

    def checkpoint() -> str:
        return str(next(iter(leases(ddb, table).values()))["checkpoint"])

    cfg = kinesis_config(aws_endpoint=aws_endpoint, opensearch_url=private_opensearch.url, backup=backup,
                         prefix=prefix, stream=stream, lease_table=table, log_type="vpc_flow",
                         overrides={"opensearch__retry": {"initial_backoff": 0.2, "max_backoff": 0.5,
                                                          "max_elapsed": 3}})
    put(50)
    worker = Worker(cfg)
    task = asyncio.create_task(worker.run(install_signals=False))
    try:
        await wait_for(lambda: count(client, prefix) == 50, 30, "the first records indexed")
        await wait_for(lambda: checkpoint() == sequences[-1], 10, "the checkpoint at the last indexed record")
        settled = checkpoint()
        rewinds = metric("sluice_kinesis_rewinds_total", source="stream")

        private_opensearch.stop()
        put(50)
        for _ in range(8):  # 8 s: more than the sink's retry budget, many checkpoint intervals
            await asyncio.sleep(1.0)
            assert checkpoint() == settled
        assert metric("sluice_kinesis_rewinds_total", source="stream") > rewinds

        private_opensearch.start()  # comes back empty: only the records read during the outage are expected
        await wait_for(lambda: count(client, prefix) == 50, 60, "the records of the outage indexed")
        await wait_for(lambda: checkpoint() == sequences[-1], 15, "the checkpoint at the last record")
    finally:
        worker.request_stop()
        await asyncio.wait_for(task, 30)
    assert count(client, prefix) == 50
