"""`sluice backfill` against real servers: interrupted (SIGINT, then SIGKILL) and resumed, time ranges, and the
same ids as live ingestion, so a backfill over objects already ingested from their notifications adds nothing.

Ids are checked against ids computed independently from the generated lines: the hash of (bucket, key, version
tag) and the byte offset of each line in the decompressed object, as `Origin.id_prefix` documents them.
"""

from __future__ import annotations

import asyncio
import gzip
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import yaml

from tests.support import (
    all_ids,
    backup_records,
    drained,
    index_counts,
    make_config,
    metric,
    os_client,
    replay_pointers,
    run_worker_until,
)
from worker.aws import AwsClients
from worker.backfill import BackfillOptions, backfill
from worker.backfill_state import BackfillState
from worker.config import Config
from worker.dead_letters import DeadLetters
from worker.model import AckSet, Origin
from worker.pipeline import Pipeline
from worker.samples import ACCOUNT, REGION, alb_lines, cloudtrail_records, gzip_lines, vpc_flow_lines
from worker.sinks.opensearch import OpenSearchSink, build_client
from worker.sources.s3_events import ObjectRef
from worker.sources.s3_objects import ObjectIngester, ObjectSettings

SLUICE = Path(sys.executable).with_name("sluice")
OBJECTS, LINES = 500, 3
SOURCE = "logs"
DAY = "2026/11/22"
SUMMARY = re.compile(r"(\d+) objects listed, (\d+) ingested, (\d+) already done \(skipped_done\), (\d+) skipped "
                     r"by routing, (\d+) failed")


def _vpc_key(i: int) -> str:
    return (f"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/{DAY}/"
            f"{ACCOUNT}_vpcflowlogs_{REGION}_fl-bf_20261122T0000Z_{i:04d}.log.gz")


def _vpc_object(seed: int, lines: int = LINES) -> tuple[bytes, list[int]]:
    """(gzip body, byte offsets of the lines that become documents: all but the header)."""
    text = list(vpc_flow_lines(lines, seed=seed))
    offsets, pos = [], 0
    for j, line in enumerate(text):
        if j:
            offsets.append(pos)
        pos += len(line.encode()) + 1
    return gzip_lines(text), offsets


def _ids(bucket: str, key: str, version_tag: str, offsets: list[int]) -> set[str]:
    prefix = Origin(SOURCE, "s3", bucket, key, version_tag).id_prefix()
    return {f"{prefix}.{off}" for off in offsets}


def _put_many(s3: Any, bucket: str, objects: dict[str, bytes]) -> dict[str, str]:
    """Upload in parallel; key -> ETag without quotes."""
    def put(item: tuple[str, bytes]) -> tuple[str, str]:
        return item[0], s3.put_object(Bucket=bucket, Key=item[0], Body=item[1])["ETag"].strip('"')

    with ThreadPoolExecutor(8) as pool:
        return dict(pool.map(put, objects.items()))


def _total(client: Any, prefix: str) -> int:
    return sum(index_counts(client, prefix).values())


def _config(aws_endpoint: str, opensearch_url: str, backup: Any, prefix: str, **over: Any) -> Config:
    # The source's queue is never read by a backfill (it lists the bucket); the source lends its settings and name.
    return make_config(aws_endpoint=aws_endpoint, opensearch_url=opensearch_url,
                       queue_url=f"{aws_endpoint}/{ACCOUNT}/unused", backup_bucket=backup.bucket,
                       replay_queue_url=backup.replay_queue_url, index_prefix=prefix, **over)


def _recorded(state: Path, bucket: str) -> dict[str, str]:
    return BackfillState(state, bucket, "").load() if state.exists() else {}


def _spawn(cfg_file: Path, url: str, state: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([str(SLUICE), "backfill", "--config", str(cfg_file), url, "--state", str(state),
                                 *extra], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=dict(os.environ))


async def _run_until_recorded(proc: subprocess.Popen[bytes], state: Path, bucket: str, at_least: int,
                              log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while len(_recorded(state, bucket)) < at_least:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"backfill exited ({proc.returncode}) or made no progress:\n{_tail(log)}")
        await asyncio.sleep(0.05)


def _tail(log: Path) -> str:
    return log.read_text()[-3000:]


async def test_backfill_500_objects_resumes_after_sigint_and_sigkill_and_a_rerun_adds_nothing(
        tmp_path: Path, aws_endpoint: str, opensearch_url: str, boto: Any, backup: Any, unique_name: Any) -> None:
    s3 = boto.client("s3")
    client = os_client(opensearch_url)
    bucket, prefix = unique_name("history"), unique_name("bf")
    s3.create_bucket(Bucket=bucket)  # no notifications: these objects were never announced
    objects: dict[str, bytes] = {}
    offsets: dict[str, list[int]] = {}
    for i in range(OBJECTS):
        objects[_vpc_key(i)], offsets[_vpc_key(i)] = _vpc_object(seed=5000 + i)
    digest = (f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/{REGION}/{DAY}/"
              f"{ACCOUNT}_CloudTrail-Digest_{REGION}_trail_{REGION}_20261122T0000Z.json.gz")
    objects[digest] = gzip.compress(b'{"digestStartTime": "2026-11-22T00:00:00Z"}')
    objects["elsewhere/not-under-the-prefix.log.gz"] = _vpc_object(seed=1)[0]
    etags = _put_many(s3, bucket, objects)
    expected = set().union(*(_ids(bucket, key, f"etag:{etags[key]}", offsets[key]) for key in offsets))
    assert len(expected) == OBJECTS * LINES

    cfg = _config(aws_endpoint, opensearch_url, backup, prefix)
    cfg_file = tmp_path / "sluice.yaml"
    cfg_file.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    url, state = f"s3://{bucket}/AWSLogs/{ACCOUNT}/", tmp_path / "backfill.state"

    # 1. SIGINT partway: objects already read settle and are recorded; nothing indexed is left unrecorded.
    log1 = tmp_path / "run1.log"
    proc = _spawn(cfg_file, url, state, log1, "--concurrency", "2")
    try:
        await _run_until_recorded(proc, state, bucket, 40, log1)
        proc.send_signal(signal.SIGINT)
        rc = await asyncio.to_thread(proc.wait, 30)
    finally:
        if proc.poll() is None:
            proc.kill()
    out1 = log1.read_text()
    done1 = _recorded(state, bucket)
    print(f"\nrun 1 (SIGINT): {len(done1)} objects recorded\n{out1[-600:]}", file=sys.stderr)
    assert rc == 130, out1[-3000:]
    assert "interrupted" in out1 and "run the same command again" in out1
    assert 40 <= len(done1) < OBJECTS, "the interruption came too late to prove anything"
    assert _total(client, prefix) == len(done1) * LINES, "a graceful stop indexed objects it did not record"
    assert all(done1[key] == f"etag:{etags[key]}" for key in done1)

    # 2. SIGKILL partway: no handler runs; what was indexed but not yet synced to the state is redone later.
    log2 = tmp_path / "run2.log"
    proc = _spawn(cfg_file, url, state, log2, "--concurrency", "2")
    try:
        await _run_until_recorded(proc, state, bucket, len(done1) + 40, log2)
        os.kill(proc.pid, signal.SIGKILL)
        rc = await asyncio.to_thread(proc.wait, 30)
    finally:
        if proc.poll() is None:
            proc.kill()
    done2 = _recorded(state, bucket)
    indexed2 = _total(client, prefix)
    print(f"run 2 (SIGKILL): {len(done2)} objects recorded, {indexed2} documents indexed", file=sys.stderr)
    assert rc == -signal.SIGKILL
    assert set(done1) < set(done2) and len(done2) < OBJECTS
    assert indexed2 >= len(done2) * LINES

    # 3. The rerun skips what is recorded and finishes the rest.
    log3 = tmp_path / "run3.log"
    started = time.monotonic()
    proc = _spawn(cfg_file, url, state, log3)
    rc = await asyncio.to_thread(proc.wait, 180)
    took = time.monotonic() - started
    out3 = log3.read_text()
    print(f"run 3 (to the end, {took:.1f} s):\n{out3[-600:]}", file=sys.stderr)
    assert rc == 0, out3[-3000:]
    figures = SUMMARY.search(out3)
    assert figures, out3[-3000:]
    listed, ingested, skipped_done, routed_away, failed = map(int, figures.groups())
    assert (listed, skipped_done, ingested, routed_away, failed) == (
        OBJECTS + 1, len(done2), OBJECTS - len(done2), 1, 0)
    done3 = _recorded(state, bucket)
    assert set(done3) == set(offsets)  # every log object, not the digest, not the key outside the prefix

    ids = all_ids(client, prefix)
    assert len(ids) == OBJECTS * LINES, f"{len(ids)} documents for {OBJECTS * LINES} lines"
    assert set(ids) == expected

    # 4. Run again (in this process, to read the metrics): everything is skipped, nothing is added.
    created = metric("sluice_documents_indexed_total", result="created")
    skipped = metric("sluice_backfill_objects_total", outcome="skipped_done")
    report = await backfill(cfg, BackfillOptions(bucket, f"AWSLogs/{ACCOUNT}/", state))
    assert (report.listed, report.skipped_done, report.ingested, report.skipped, report.exit_code) == (
        OBJECTS + 1, OBJECTS, 0, 1, 0)
    assert metric("sluice_backfill_objects_total", outcome="skipped_done") - skipped == OBJECTS
    assert metric("sluice_documents_indexed_total", result="created") == created
    assert _total(client, prefix) == OBJECTS * LINES
    assert backup_records(s3, backup.bucket) == ([], [])


async def test_since_until_select_by_last_modified_and_a_rewritten_object_is_ingested_again(
        tmp_path: Path, aws_endpoint: str, opensearch_url: str, boto: Any, backup: Any, unique_name: Any) -> None:
    s3 = boto.client("s3")
    client = os_client(opensearch_url)
    bucket, prefix = unique_name("ranges"), unique_name("bf")
    s3.create_bucket(Bucket=bucket)
    first = {_vpc_key(i): _vpc_object(seed=i)[0] for i in range(5)}
    _put_many(s3, bucket, first)
    listing = s3.list_objects_v2(Bucket=bucket)["Contents"]
    await asyncio.sleep(1.5)  # LastModified has one-second resolution
    second = {_vpc_key(i): _vpc_object(seed=i)[0] for i in range(5, 10)}
    _put_many(s3, bucket, second)
    modified = {o["Key"]: o["LastModified"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    boundary = min(modified[k] for k in second)
    assert boundary > max(o["LastModified"] for o in listing)

    cfg = _config(aws_endpoint, opensearch_url, backup, prefix)
    state = tmp_path / "ranges.state"
    report = await backfill(cfg, BackfillOptions(bucket, "AWSLogs/", state, until=boundary))
    assert (report.listed, report.ingested, report.exit_code) == (5, 5, 0)
    assert set(_recorded(state, bucket)) == set(first)
    assert _total(client, prefix) == 5 * LINES

    report = await backfill(cfg, BackfillOptions(bucket, "AWSLogs/", state, since=boundary))
    assert (report.listed, report.ingested, report.skipped_done) == (5, 5, 0)
    assert _total(client, prefix) == 10 * LINES

    # The same object written again (another ETag) is another identity: ingested again, under new ids.
    key = _vpc_key(2)
    body, offsets = _vpc_object(seed=777, lines=4)
    etag = s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
    report = await backfill(cfg, BackfillOptions(bucket, "AWSLogs/", state))
    assert (report.listed, report.ingested, report.skipped_done) == (10, 1, 9)
    assert _recorded(state, bucket)[key] == f"etag:{etag}"
    assert _total(client, prefix) == 10 * LINES + 4
    assert _ids(bucket, key, f"etag:{etag}", offsets) <= set(all_ids(client, prefix))


async def test_backfill_after_notifications_adds_no_document(aws_endpoint: str, opensearch_url: str, boto: Any,
                                                             s3_queue: Any, backup: Any, unique_name: Any,
                                                             tmp_path: Path) -> None:
    s3, sqs = boto.client("s3"), boto.client("sqs")
    client = os_client(opensearch_url)
    prefix = unique_name("bf")
    objects = {_vpc_key(i): _vpc_object(seed=300 + i, lines=20)[0] for i in range(8)}
    objects[f"AWSLogs/{ACCOUNT}/elasticloadbalancing/{REGION}/{DAY}/{ACCOUNT}_elasticloadbalancing_{REGION}_"
            f"app.lb.1_20261122T0000Z_10.0.0.1_bf.log.gz"] = gzip_lines(alb_lines(30, seed=31))
    objects[f"AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{DAY}/{ACCOUNT}_CloudTrail_{REGION}_20261122T0000Z_bf.json.gz"] = \
        gzip.compress(orjson.dumps({"Records": cloudtrail_records(25, seed=32)}))
    objects["plain/a key with spaces+plus.log"] = "\n".join(vpc_flow_lines(10, seed=33)).encode() + b"\n"
    _put_many(s3, s3_queue.bucket, objects)
    expected_docs = 8 * 20 + 30 + 25 + 10
    cfg = make_config(aws_endpoint=aws_endpoint, opensearch_url=opensearch_url, queue_url=s3_queue.queue_url,
                      backup_bucket=backup.bucket, replay_queue_url=backup.replay_queue_url, index_prefix=prefix)
    await run_worker_until(cfg, drained(sqs, s3_queue.queue_url))
    live_ids = all_ids(client, prefix)
    assert len(live_ids) == expected_docs

    created = metric("sluice_documents_indexed_total", result="created")
    exists = metric("sluice_documents_indexed_total", result="exists")
    report = await backfill(cfg, BackfillOptions(s3_queue.bucket, "", tmp_path / "after-live.state"))
    assert (report.listed, report.ingested, report.failed, report.documents) == (
        len(objects), len(objects), 0, expected_docs)
    # Every document came back as a 409 on `create`: the backfill built exactly the ids the notifications did.
    assert metric("sluice_documents_indexed_total", result="exists") - exists == expected_docs
    assert metric("sluice_documents_indexed_total", result="created") == created
    assert sorted(all_ids(client, prefix)) == sorted(live_ids)
    assert backup_records(s3, backup.bucket) == ([], [])


async def test_failed_objects_are_not_recorded_and_a_rerun_retries_them(
        tmp_path: Path, aws_endpoint: str, private_opensearch: Any, boto: Any, backup: Any,
        unique_name: Any) -> None:
    """OpenSearch down for the whole first run: exit 1 and nothing recorded, except the object that could not be
    decoded (it is durably in the backup bucket: done); the run after recovery ingests everything once."""
    s3, sqs = boto.client("s3"), boto.client("sqs")
    bucket, prefix = unique_name("down"), unique_name("bf")
    s3.create_bucket(Bucket=bucket)
    objects = {_vpc_key(i): _vpc_object(seed=900 + i)[0] for i in range(20)}
    objects["AWSLogs/unknown/blob.bin"] = bytes(range(256)) * 8  # no routing rule, no format: kept whole
    _put_many(s3, bucket, objects)
    cfg = _config(aws_endpoint, private_opensearch.url, backup, prefix,
                  opensearch__install_templates=False,
                  opensearch__retry={"initial_backoff": 0.1, "max_backoff": 0.3, "max_elapsed": 1.5})
    state = tmp_path / "down.state"
    private_opensearch.stop()
    failed = metric("sluice_backfill_objects_total", outcome="failed")
    report = await backfill(cfg, BackfillOptions(bucket, "AWSLogs/", state))
    assert (report.listed, report.failed, report.ingested, report.exit_code) == (21, 20, 1, 1)
    assert metric("sluice_backfill_objects_total", outcome="failed") - failed == 20
    assert "sink retries exhausted" in report.summary()
    assert set(_recorded(state, bucket)) == {"AWSLogs/unknown/blob.bin"}
    _, kept = backup_records(s3, backup.bucket)
    assert len(kept) == 1 and kept[0].endswith("/AWSLogs/unknown/blob.bin")
    assert [p["reason"] for p in replay_pointers(sqs, backup.replay_queue_url)] == ["unknown_log_type"]

    private_opensearch.start()
    report = await backfill(cfg, BackfillOptions(bucket, "AWSLogs/", state))
    assert (report.listed, report.ingested, report.skipped_done, report.failed, report.exit_code) == (21, 20, 1, 0, 0)
    assert _total(os_client(private_opensearch.url), prefix) == 20 * LINES
    assert len(backup_records(s3, backup.bucket)[1]) == 1  # the blob was not copied a second time


async def test_versioned_buckets_use_version_ids_and_a_changed_etag_is_not_read(
        tmp_path: Path, aws_endpoint: str, opensearch_url: str, boto: Any, backup: Any, unique_name: Any) -> None:
    s3 = boto.client("s3")
    client = os_client(opensearch_url)
    bucket, prefix = unique_name("versioned"), unique_name("bf")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    key = _vpc_key(1)
    s3.put_object(Bucket=bucket, Key=key, Body=_vpc_object(seed=1, lines=5)[0])
    body, offsets = _vpc_object(seed=2, lines=7)
    version = s3.put_object(Bucket=bucket, Key=key, Body=body)["VersionId"]
    cfg = _config(aws_endpoint, opensearch_url, backup, prefix)
    report = await backfill(cfg, BackfillOptions(bucket, "", tmp_path / "v.state"))
    assert (report.listed, report.ingested) == (1, 1)  # the current version only
    assert set(all_ids(client, prefix)) == _ids(bucket, key, version, offsets)
    assert _recorded(tmp_path / "v.state", bucket) == {key: version}

    # Listed with one ETag, rewritten before it is read: not read (If-Match), so newer bytes never get the
    # older ETag's ids; the unit fails and the next run lists the new ETag.
    plain = unique_name("plain")
    s3.create_bucket(Bucket=plain)
    old_etag = s3.put_object(Bucket=plain, Key=key, Body=_vpc_object(seed=3)[0])["ETag"].strip('"')
    s3.put_object(Bucket=plain, Key=key, Body=_vpc_object(seed=4)[0])
    async with AwsClients(cfg.aws) as aws, DeadLetters(cfg.dead_letters, aws) as dead_letters:
        os_async = build_client(cfg.opensearch, cfg.aws.region)
        try:
            async with OpenSearchSink(cfg.opensearch, dead_letters, os_async) as sink:
                ingester = ObjectIngester(SOURCE, ObjectSettings(), aws, Pipeline(cfg.pipeline, sink, dead_letters),
                                          dead_letters)
                ack = AckSet("stale")
                result = await ingester.ingest(ObjectRef(plain, key, etag=old_etag), ack, if_match=True)
                ack.seal()
                assert not await ack.wait()
        finally:
            await os_async.close()
    assert result.error is not None and "changed since it was listed" in result.error
    assert _total(client, prefix) == 7
