"""S3 or SQS unreachable while the worker runs, then back: it keeps running, deletes nothing it could not read,
backs off with growing visibility timeouts, and after recovery everything is indexed exactly once.

The AWS side is a moto server of the test's own (`private_moto`), so its outage hurts no other test. Faults:

- S3 refused: the worker reaches S3 through a TCP proxy that stops listening and cuts its connections (moto
  itself keeps its objects). Every GetObject fails, so every message is nacked, each time with twice the
  visibility of the time before (`retry_visibility * 2^(receive count - 1)`): the bounded retry budget.
- SQS refused mid-ingestion: receives, visibility extensions and deletes fail; the receive loop carries on;
  messages whose documents were indexed but whose delete failed come back and cost 409s, not duplicates.
- Everything frozen (SIGSTOP of moto, state kept) mid-ingestion for longer than the visibility timeout: every
  AWS call hangs (a partition, not an error); the worker stays up and healthy, its calls complete after the
  thaw, and every document is indexed exactly once (any message that came back meanwhile costs 409s only).

The worker is a real `sluice run` process: its health endpoint and metrics are read over HTTP, its decisions
(nacks, with their visibility) from its JSON log.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import orjson
import pytest
import yaml
from botocore.config import Config as BotoConfig
from prometheus_client.parser import text_string_to_metric_families

from tests.support import all_ids, make_config, os_client, queue_depth
from worker.local_servers import DUMMY_AWS_ENV, MotoServer, free_port
from worker.model import Origin
from worker.samples import ACCOUNT, REGION, alb_lines, vpc_flow_lines

SOURCE = "logs"
SLUICE = Path(sys.executable).with_name("sluice")
RETRY_VISIBILITY = 1
MAX_RECEIVES = 12
"""The queue's redrive maxReceiveCount: generous, so the outages here never move a message to the DLQ."""


# --- a TCP proxy that can refuse ----------------------------------------------------------------------------


ACCESS_DENIED = (b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nConnection: close\r\n"
                 b"Content-Length: 120\r\n\r\n"
                 b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>"
                 b"<Message>Access Denied</Message></Error>\n".ljust(120))


class TcpProxy:
    """127.0.0.1:`port` -> `target`, on its own thread and event loop (so the test's blocking calls never stall
    it). `down()` stops listening (connection refused) and cuts every open connection; `deny()` answers every
    request with S3's 403 AccessDenied (which the AWS client does not retry by itself); `up()` relays again."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._denying = False
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxy", daemon=True)
        self._thread.start()
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        self._denying = False
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)

    def deny(self) -> None:
        self._denying = True
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)

    def down(self) -> None:
        asyncio.run_coroutine_threadsafe(self._refuse(), self._loop).result(10)

    def close(self) -> None:
        self.down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _refuse(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self._denying:
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                await reader.readuntil(b"\r\n\r\n")
                writer.write(ACCESS_DENIED)
                await writer.drain()
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        pair = {writer, up_writer}
        self._open |= pair
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._open -= pair


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            writer.close()


# --- AWS wiring on the private moto ---------------------------------------------------------------------------


@dataclass
class Aws:
    s3: Any
    sqs: Any
    bucket: str
    queue_url: str
    dlq_url: str
    backup_bucket: str
    replay_queue_url: str


def _wire(server: MotoServer) -> Aws:
    """A bucket notifying a queue (with a DLQ), a backup bucket and a replay queue, as production has them."""
    kw: dict[str, Any] = {"endpoint_url": server.endpoint_url, "region_name": REGION,
                          "aws_access_key_id": DUMMY_AWS_ENV["AWS_ACCESS_KEY_ID"],
                          "aws_secret_access_key": DUMMY_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
                          "config": BotoConfig(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=5)}
    s3, sqs = boto3.client("s3", **kw), boto3.client("sqs", **kw)
    dlq_url = sqs.create_queue(QueueName="logs-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVES)}
    queue_url = sqs.create_queue(QueueName="logs", Attributes={"RedrivePolicy": json.dumps(redrive)})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.create_bucket(Bucket="logs")
    s3.put_bucket_notification_configuration(Bucket="logs", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    for msg in sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", []):
        assert json.loads(msg["Body"]).get("Event") == "s3:TestEvent"
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=msg["ReceiptHandle"])
    s3.create_bucket(Bucket="backup")
    replay = sqs.create_queue(QueueName="replay")["QueueUrl"]
    return Aws(s3, sqs, "logs", queue_url, dlq_url, "backup", replay)


def _upload(aws: Aws, n: int, lines: int, seed: int) -> set[str]:
    """`n` objects (VPC flow and ALB in turn); returns the ids their documents must have."""
    ids: set[str] = set()
    for i in range(n):
        if i % 2:
            key = (f"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/2026/11/22/"
                   f"{ACCOUNT}_vpcflowlogs_{REGION}_fl-o_{seed}_{i}.log.gz")
            text, first = list(vpc_flow_lines(lines, seed=seed + i)), 1
        else:
            key = (f"AWSLogs/{ACCOUNT}/elasticloadbalancing/{REGION}/2026/11/22/"
                   f"{ACCOUNT}_elasticloadbalancing_{REGION}_app.o.1_20261122T0000Z_10.0.0.1_{seed}_{i}.log.gz")
            text, first = list(alb_lines(lines, seed=seed + i)), 0
        etag = aws.s3.put_object(Bucket=aws.bucket, Key=key,
                                 Body=gzip.compress(("\n".join(text) + "\n").encode()))["ETag"].strip('"')
        prefix = Origin(SOURCE, "s3", aws.bucket, key, f"etag:{etag}").id_prefix()
        at = 0
        for j, line in enumerate(text):
            if j >= first:
                ids.add(f"{prefix}.{at}")
            at += len(line.encode()) + 1
    return ids


def _backup_keys(aws: Aws) -> list[str]:
    return [o["Key"] for o in aws.s3.list_objects_v2(Bucket=aws.backup_bucket).get("Contents", [])]


# --- the worker process ----------------------------------------------------------------------------------------


class WorkerProcess:
    """`sluice run` with a config file, its JSON log in a file, its metrics and health over HTTP."""

    def __init__(self, tmp: Path, cfg: Any, metrics_port: int) -> None:
        self.cfg_file = tmp / "sluice.yaml"
        self.cfg_file.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
        self.log = tmp / "worker.log"
        self.port = metrics_port
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen([str(SLUICE), "run", "--config", str(self.cfg_file)],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, **DUMMY_AWS_ENV})

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    async def started(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while b'"worker_started"' not in self.log.read_bytes():
            assert self.proc.poll() is None and time.monotonic() < deadline, self.tail()
            await asyncio.sleep(0.05)

    def alive_and_healthy(self) -> bool:
        if self.proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def metric(self, name: str, **labels: str) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            text = r.read().decode()
        return sum(s.value for fam in text_string_to_metric_families(text) for s in fam.samples
                   if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))

    def events(self, name: str) -> list[dict[str, Any]]:
        out = []
        for raw in self.log.read_bytes().splitlines():
            if raw.startswith(b"{") and b'"%s"' % name.encode() in raw:
                rec = orjson.loads(raw)
                if rec.get("event") == name:
                    out.append(rec)
        return out

    async def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = await asyncio.to_thread(self.proc.wait, 30)
            assert rc == 0, self.tail()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _config(aws: Aws, server: MotoServer, opensearch_url: str, prefix: str, port: int, **over: Any) -> Any:
    return make_config(aws_endpoint=server.endpoint_url, opensearch_url=opensearch_url, queue_url=aws.queue_url,
                       backup_bucket=aws.backup_bucket, replay_queue_url=aws.replay_queue_url, index_prefix=prefix,
                       sources__logs__visibility_timeout=10, sources__logs__retry_visibility=RETRY_VISIBILITY,
                       telemetry={"metrics_port": port, "metrics_host": "127.0.0.1"}, **over)


async def _drained(aws: Aws, worker: WorkerProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    empty = 0
    while empty < 2:
        assert worker.proc.poll() is None, worker.tail()
        assert time.monotonic() < deadline, f"queue not drained within {timeout} s\n{worker.tail()}"
        await asyncio.sleep(0.5)
        empty = empty + 1 if await asyncio.to_thread(queue_depth, aws.sqs, aws.queue_url) == 0 else 0


async def _assert_exactly_once(aws: Aws, client: Any, prefix: str, expected: set[str]) -> None:
    ids = await asyncio.to_thread(all_ids, client, prefix)
    assert len(ids) == len(expected), f"{len(ids)} documents for {len(expected)} lines"
    assert set(ids) == expected
    assert queue_depth(aws.sqs, aws.queue_url) == 0
    assert queue_depth(aws.sqs, aws.dlq_url) == 0, "a message went to the DLQ"
    assert _backup_keys(aws) == [], "something was dead-lettered"
    assert queue_depth(aws.sqs, aws.replay_queue_url) == 0


@pytest.fixture
def proxies() -> Iterator[list[TcpProxy]]:
    made: list[TcpProxy] = []
    yield made
    for p in made:
        p.close()


# --- the tests -----------------------------------------------------------------------------------------------


async def test_s3_outage_nacks_with_growing_visibility_then_recovers(
        tmp_path: Path, private_moto: MotoServer, opensearch_url: str, unique_name: Any,
        proxies: list[TcpProxy]) -> None:
    aws = _wire(private_moto)
    s3_proxy = TcpProxy("127.0.0.1", private_moto.port)
    proxies.append(s3_proxy)
    prefix, port = unique_name("s3out"), free_port()
    cfg = _config(aws, private_moto, opensearch_url, prefix, port, aws__endpoints={"s3": s3_proxy.url})
    worker = WorkerProcess(tmp_path, cfg, port)
    client = os_client(opensearch_url)
    refused, denied = 25.0, 20.0
    try:
        await worker.started()
        # Unreachable first: the AWS client retries each GetObject for up to ~15 s by itself, then the message is
        # nacked. Then S3 answers, but with 403 AccessDenied (revoked credentials, a bucket policy): no client
        # retries, so the worker's own backoff alone paces the receives.
        s3_proxy.down()
        expected = await asyncio.to_thread(_upload, aws, 6, 40, 500)
        began, denying = time.monotonic(), False
        while time.monotonic() - began < refused + denied:
            if not denying and time.monotonic() - began >= refused:
                s3_proxy.deny()
                denying = True
            await asyncio.sleep(2.5)
            assert await asyncio.to_thread(worker.alive_and_healthy), worker.tail()
            assert queue_depth(aws.sqs, aws.queue_url) == 6, "a message was deleted while S3 was down"
        assert await asyncio.to_thread(all_ids, client, prefix) == []
        assert _backup_keys(aws) == []
        nacks = worker.events("sqs_message_nacked")
        received = worker.metric("sluice_sqs_messages_received_total")
        assert worker.metric("sluice_sqs_messages_deleted_total") == 0
        assert worker.metric("sluice_sqs_messages_nacked_total", reason="failed") == len(nacks)
        assert 0 <= received - len(nacks) <= 6, "every receive but the ones in hand ended in a nack"

        s3_proxy.up()
        await _drained(aws, worker, timeout=90)
        assert worker.metric("sluice_sqs_messages_deleted_total") == 6
        await worker.stop()
    finally:
        worker.kill()

    await _assert_exactly_once(aws, client, prefix, expected)
    # The backoff: each nack hid its message for retry_visibility * 2^(receive count - 1) seconds, so every
    # message came back less often the longer S3 stayed away.
    per_message: dict[str, list[int]] = {}
    for ev in nacks:
        assert ev["reason"] == "failed"
        assert ev["visible_in"] == min(900, RETRY_VISIBILITY * 2 ** (ev["receive_count"] - 1)), ev
        per_message.setdefault(ev["message_id"], []).append(ev["visible_in"])
    assert len(per_message) == 6, "a message was never tried while S3 was down"
    for waits in per_message.values():
        assert waits == [RETRY_VISIBILITY * 2 ** i for i in range(len(waits))], waits
    deepest = max(per_message.values(), key=len)
    assert len(deepest) >= 4, f"no message was retried four times in {refused + denied:.0f} s: {per_message}"
    print(f"\nS3 refused {refused:.0f} s then 403 for {denied:.0f} s: {len(nacks)} nacks and {received:.0f} receives "
          f"for 6 messages, deepest visibility sequence {deepest} s; {len(expected)} documents after recovery",
          file=sys.stderr)


async def test_sqs_refused_mid_ingestion_loses_and_doubles_nothing(
        tmp_path: Path, private_moto: MotoServer, opensearch_url: str, unique_name: Any,
        proxies: list[TcpProxy]) -> None:
    aws = _wire(private_moto)
    sqs_proxy = TcpProxy("127.0.0.1", private_moto.port)
    proxies.append(sqs_proxy)
    prefix, port = unique_name("sqsout"), free_port()
    cfg = _config(aws, private_moto, opensearch_url, prefix, port, aws__endpoints={"sqs": sqs_proxy.url},
                  sources__logs__max_in_flight=4)
    expected = await asyncio.to_thread(_upload, aws, 24, 60, 600)
    worker = WorkerProcess(tmp_path, cfg, port)
    client = os_client(opensearch_url)
    try:
        await worker.started()
        deadline = time.monotonic() + 60
        while worker.metric("sluice_sqs_messages_deleted_total") < 4:  # under way, far from done
            assert time.monotonic() < deadline, worker.tail()
            await asyncio.sleep(0.1)
        sqs_proxy.down()
        deleted_at_outage = worker.metric("sluice_sqs_messages_deleted_total")
        # 30 s: longer than the client's own retries (up to 15 s, which hide shorter outages) and than the
        # visibility timeout of the messages the worker holds.
        for _ in range(12):
            await asyncio.sleep(2.5)
            assert await asyncio.to_thread(worker.alive_and_healthy), worker.tail()
        assert worker.metric("sluice_sqs_messages_deleted_total") == deleted_at_outage
        sqs_proxy.up()
        await _drained(aws, worker, timeout=120)
        exists = worker.metric("sluice_documents_indexed_total", result="exists")
        failures = (len(worker.events("sqs_receive_failed")), len(worker.events("sqs_delete_failed")),
                    len(worker.events("sqs_visibility_extension_failed")))
        await worker.stop()
    finally:
        worker.kill()
    await _assert_exactly_once(aws, client, prefix, expected)
    assert sum(failures) >= 1, "no SQS call failed: SQS was never out of reach as the worker saw it"
    print(f"\nSQS refused for 30 s after {deleted_at_outage:.0f}/24 messages: receive/delete/extension failures "
          f"{failures}, {exists:.0f} documents redelivered as 409s, {len(expected)} documents exactly once",
          file=sys.stderr)


async def test_aws_frozen_longer_than_visibility_then_thawed(
        tmp_path: Path, private_moto: MotoServer, opensearch_url: str, unique_name: Any) -> None:
    aws = _wire(private_moto)
    prefix, port = unique_name("frozen"), free_port()
    cfg = _config(aws, private_moto, opensearch_url, prefix, port, sources__logs__max_in_flight=4)
    expected = await asyncio.to_thread(_upload, aws, 24, 60, 700)
    worker = WorkerProcess(tmp_path, cfg, port)
    client = os_client(opensearch_url)
    try:
        await worker.started()
        deadline = time.monotonic() + 60
        while worker.metric("sluice_sqs_messages_deleted_total") < 4:
            assert time.monotonic() < deadline, worker.tail()
            await asyncio.sleep(0.1)
        # Freeze while messages are held: right after a batch is deleted the next receive may not have
        # returned yet, and a freeze then would test nothing (the assertion below says so).
        held = worker.metric("sluice_messages_in_flight")
        while held < 1 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            held = worker.metric("sluice_messages_in_flight")
        private_moto.pause()
        try:
            for _ in range(6):  # 15 s frozen: past the 10 s visibility of what the worker holds
                await asyncio.sleep(2.5)
                assert await asyncio.to_thread(worker.alive_and_healthy), worker.tail()
        finally:
            private_moto.resume()
        await _drained(aws, worker, timeout=120)
        exists = worker.metric("sluice_documents_indexed_total", result="exists")
        await worker.stop()
    finally:
        worker.kill()
    await _assert_exactly_once(aws, client, prefix, expected)
    assert held >= 1, "nothing was in flight when AWS froze: the test proved nothing"
    print(f"\nAWS frozen for 15 s with {held:.0f} messages in flight: {exists:.0f} documents redelivered as 409s, "
          f"{len(expected)} documents exactly once", file=sys.stderr)
