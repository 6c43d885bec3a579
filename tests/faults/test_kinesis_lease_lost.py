"""A lease taken by another worker: the old owner stops reading that shard, and its late checkpoint is refused.

Worker A starts alone on a 2-shard stream and takes both leases; worker B starts and, to balance, steals one.
Then:
- A abandons its reader of the stolen shard within a renewal interval (its renewal is refused), and counts the
  loss; only B reads that shard from then on (records written after the steal are indexed once, by B);
- a checkpoint A writes late with the lease it held is refused by the table (conditional on A's token), and the
  table keeps B's position.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.kinesis_support import create_stream, kinesis_config, leases
from tests.support import count, metric, os_client, wait_for
from worker.app import Worker
from worker.samples import vpc_flow_lines
from worker.sources.kinesis import KinesisSourceRunner
from worker.sources.kinesis_leases import LeaseLost

LEASE_DURATION = 3.0


async def _start(cfg: Any) -> tuple[Worker, asyncio.Task[None]]:
    worker = Worker(cfg)
    task = asyncio.create_task(worker.run(install_signals=False))
    while not worker.ready:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    return worker, task


async def _stop(worker: Worker, task: asyncio.Task[None]) -> None:
    worker.request_stop()
    await asyncio.wait_for(task, 30)


async def test_stolen_lease_stops_the_old_owner_and_refuses_its_checkpoint(
        aws_endpoint: str, opensearch_url: str, boto: Any, backup: Any, unique_name: Any) -> None:
    kinesis, ddb = boto.client("kinesis"), boto.client("dynamodb")
    client = os_client(opensearch_url)
    stream, table, prefix = unique_name("steal"), unique_name("steal-leases"), unique_name("steal")
    create_stream(kinesis, stream, 2)
    lines = iter(list(vpc_flow_lines(400, seed=31))[1:])

    def put(n: int) -> None:
        for i in range(n):
            kinesis.put_record(StreamName=stream, PartitionKey=f"k{i}", Data=next(lines).encode())

    def cfg(worker_id: str) -> Any:
        return kinesis_config(aws_endpoint=aws_endpoint, opensearch_url=opensearch_url, backup=backup,
                              prefix=prefix, stream=stream, lease_table=table, log_type="vpc_flow",
                              lease_duration=LEASE_DURATION, worker_id=worker_id)

    put(40)
    a, a_task = await _start(cfg("worker-a"))
    b = b_task = None
    try:
        runner_a = a.sources[0]
        assert isinstance(runner_a, KinesisSourceRunner)
        await wait_for(lambda: len(runner_a.readers) == 2, 20, "A holding both leases")
        await wait_for(lambda: count(client, prefix) >= 40, 30, "the first records indexed")
        held_by_a = {key: reader.lease for key, reader in runner_a.readers.items()}
        lost_before = metric("sluice_kinesis_lease_events_total", source="stream", event="lost")

        b, b_task = await _start(cfg("worker-b"))
        runner_b = b.sources[0]
        assert isinstance(runner_b, KinesisSourceRunner)
        await wait_for(lambda: len(runner_b.readers) == 1, 20, "B stealing one lease")
        stolen_key = next(iter(runner_b.readers))
        # A finds out at its next renewal at the latest, and stops reading the shard at once.
        await wait_for(lambda: stolen_key not in runner_a.readers, LEASE_DURATION, "A abandoning the stolen shard")
        assert metric("sluice_kinesis_lease_events_total", source="stream", event="lost") == lost_before + 1
        assert len(runner_a.readers) == 1

        # A's late checkpoint, with the lease it held before the steal, is refused; B's position stays.
        stale = held_by_a[stolen_key]
        shard_id = stale.shard_id
        before = leases(ddb, table)[shard_id]
        with pytest.raises(LeaseLost):
            await runner_a.table.checkpoint(stale, "99999999999999999999999999999999999999999999999999999999")
        after = leases(ddb, table)[shard_id]
        assert after["owner"] == "worker-b" and after["checkpoint"] == before["checkpoint"]

        put(40)  # both shards get new records; the stolen one is read by B alone
        await wait_for(lambda: count(client, prefix) >= 80, 30, "the later records indexed")
        await asyncio.sleep(1.5)
        assert count(client, prefix) == 80
    finally:
        if b is not None and b_task is not None:
            await _stop(b, b_task)
        await _stop(a, a_task)
    final = leases(ddb, table)
    assert all(lease["owner"] is None and lease["checkpoint"].isdigit() for lease in final.values()), final
