"""Kinesis throttles GetRecords (ProvisionedThroughputExceeded, through a fault proxy in front of moto's Kinesis):
the reader backs off and retries, counts it, loses nothing, and goes on once the throttling stops."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.faults.proxy import FaultProxy
from tests.kinesis_support import create_stream, kinesis_config
from tests.support import count, metric, os_client, wait_for
from worker.app import Worker
from worker.samples import vpc_flow_lines


async def test_get_records_throttled_then_recovers(aws_endpoint: str, opensearch_url: str, boto: Any, backup: Any,
                                                   unique_name: Any) -> None:
    kinesis = boto.client("kinesis")
    client = os_client(opensearch_url)
    stream, table, prefix = unique_name("throttle"), unique_name("throttle-leases"), unique_name("throttle")
    create_stream(kinesis, stream, 1)
    lines = list(vpc_flow_lines(100, seed=61))[1:]
    for i in range(0, 100, 10):
        kinesis.put_record(StreamName=stream, PartitionKey=f"k{i}", Data="\n".join(lines[i:i + 10]).encode())

    with FaultProxy(aws_endpoint) as proxy:
        proxy.set("throttle_get_records", share=1.0)
        cfg = kinesis_config(aws_endpoint=aws_endpoint, opensearch_url=opensearch_url, backup=backup, prefix=prefix,
                             stream=stream, lease_table=table, log_type="vpc_flow",
                             overrides={"aws__endpoints": {"kinesis": proxy.url}})
        throttled = metric("sluice_kinesis_read_errors_total", source="stream", reason="throttled")
        worker = Worker(cfg)
        task = asyncio.create_task(worker.run(install_signals=False))
        try:
            # botocore retries a throttled call a few times itself; then the reader backs off on its own.
            await wait_for(lambda: metric("sluice_kinesis_read_errors_total", source="stream",
                                          reason="throttled") > throttled, 60, "the reader seeing throttling")
            assert count(client, prefix) == 0
            proxy.set("pass")
            await wait_for(lambda: count(client, prefix) == 100, 60, "every record indexed after throttling ends")
        finally:
            worker.request_stop()
            await asyncio.wait_for(task, 30)
        assert proxy.stats()["get_records_throttled"] > 0
    assert count(client, prefix) == 100
