"""SIGTERM in the middle of ingestion: the worker exits 0 within its grace period and loses nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from tests.support import drained, index_counts, make_config, os_client, queue_depth, run_worker_until
from worker.samples import ACCOUNT, REGION, gzip_lines, vpc_flow_lines

OBJECTS, LINES = 30, 400
GRACE = 6.0


async def test_sigterm_mid_ingestion(tmp_path: Path, aws_endpoint: str, opensearch_url: str, boto: Any,
                                     s3_queue: Any, backup: Any, unique_name: Any) -> None:
    s3, sqs = boto.client("s3"), boto.client("sqs")
    prefix = unique_name("term")
    for i in range(OBJECTS):
        key = f"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/2026/11/22/{ACCOUNT}_vpcflowlogs_{REGION}_fl-1_{i}.log.gz"
        s3.put_object(Bucket=s3_queue.bucket, Key=key, Body=gzip_lines(vpc_flow_lines(LINES, seed=200 + i)))
    cfg = make_config(aws_endpoint=aws_endpoint, opensearch_url=opensearch_url, queue_url=s3_queue.queue_url,
                      backup_bucket=backup.bucket, replay_queue_url=backup.replay_queue_url, index_prefix=prefix,
                      worker={"shutdown_grace": GRACE})
    cfg_file = tmp_path / "sluice.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    log = (tmp_path / "worker.log").open("wb")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    # A real process, so the signal goes through the real handler; nothing else runs in this loop meanwhile.
    proc = subprocess.Popen([sys.executable, "-m", "worker", "run", "--config", str(cfg_file)],  # noqa: ASYNC220
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    client = os_client(opensearch_url)
    try:
        deadline = time.monotonic() + 60
        while sum(index_counts(client, prefix).values()) < LINES:  # well under way, far from done
            assert proc.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "worker made no progress"
            await asyncio.sleep(0.2)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = await asyncio.to_thread(proc.wait, GRACE + 10)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    output = (tmp_path / "worker.log").read_text()
    assert rc == 0, output[-3000:]
    assert took <= GRACE + 1.0, f"took {took:.1f} s to exit"
    assert "shutdown_requested" in output and "worker_stopped" in output
    partial = sum(index_counts(client, prefix).values())
    assert partial < OBJECTS * LINES, "everything was done before SIGTERM: the test proved nothing"
    assert queue_depth(sqs, s3_queue.queue_url) > 0, "unfinished messages must stay on the queue"

    # A second worker picks up what the first handed back: exactly one document per line in the end.
    await run_worker_until(cfg, drained(sqs, s3_queue.queue_url), timeout=180)
    assert sum(index_counts(client, prefix).values()) == OBJECTS * LINES
