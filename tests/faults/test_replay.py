"""`sluice replay` and the `type: replay` source, against real servers: mapping conflicts fixed after the fact,
parsers that learn a format, records that keep failing, dry runs, time ranges, whole objects.

Every scenario starts the same way as production would get there: a worker ingests objects and something
goes wrong for reasons of the input's own (a mapping conflict, a line the parser cannot read, a key no rule
routes), so the dead letters and their pointers are written by the real worker, not by the test.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import orjson
import pytest
import yaml

from tests.support import (
    all_docs,
    backup_records,
    drained,
    index_counts,
    make_config,
    metric,
    os_client,
    queue_depth,
    run_worker_until,
)
from worker.config import Config
from worker.model import Origin
from worker.replay.command import replay
from worker.replay.options import ReplayOptions
from worker.samples import ACCOUNT, REGION, gzip_lines, vpc_flow_lines

SLUICE = Path(sys.executable).with_name("sluice")
DAY = "2026.11.22"
CUSTOM_FORMAT = "srcaddr dstaddr srcport dstport protocol packets bytes start end action"
"""10 columns: no documented headerless format has that many, so without the option every line fails."""


def vpc_key(name: str) -> str:
    return (f"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/2026/11/22/"
            f"{ACCOUNT}_vpcflowlogs_{REGION}_fl-1_20261122T0000Z_{name}.log.gz")


@dataclass
class Env:
    s3: Any
    sqs: Any
    os: Any
    prefix: str
    bucket: str
    queue_url: str
    backup_bucket: str
    replay_url: str
    make: Callable[..., Config]

    def cfg(self, **over: Any) -> Config:
        return self.make(**over)

    @property
    def vpc_index(self) -> str:
        return f"{self.prefix}-vpc_flow-{DAY}"

    def create_conflict(self) -> None:
        """The day's vpc_flow index with destination.port mapped as an ip: every flow document is a 400."""
        self.os.indices.create(index=self.vpc_index, body={
            "mappings": {"properties": {"destination": {"properties": {"port": {"type": "ip"}}}}}})

    def fix_conflict(self) -> None:
        self.os.indices.delete(index=self.vpc_index)

    async def ingest(self, objects: dict[str, bytes], **over: Any) -> None:
        for key, body in objects.items():
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        await run_worker_until(self.cfg(**over), drained(self.sqs, self.queue_url))

    async def notify_again(self, keys: list[str], **over: Any) -> None:
        """The same S3 notifications once more (SQS at-least-once), for a worker to ingest them again."""
        for key in keys:
            etag = self.s3.head_object(Bucket=self.bucket, Key=key)["ETag"].strip('"')
            record = {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": self.bucket},
                                                               "object": {"key": key, "size": 1, "eTag": etag}}}
            self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps({"Records": [record]}))
        await run_worker_until(self.cfg(**over), drained(self.sqs, self.queue_url))

    def ids(self, index_pattern: str) -> list[str]:
        if not self.os.indices.exists(index=index_pattern):
            return []
        return [h["_id"] for h in all_docs(self.os, index_pattern)]

    def replay_depth(self) -> int:
        return queue_depth(self.sqs, self.replay_url)

    def visible_pointers(self) -> int:
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.replay_url,
                                              AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"])

    def records_under(self, sub: str) -> list[dict[str, Any]]:
        """Records of the NDJSON.gz objects under `dead-letters/<sub>` in the backup bucket."""
        out: list[dict[str, Any]] = []
        for key in self.keys_under(sub):
            if key.endswith(".ndjson.gz"):
                body = self.s3.get_object(Bucket=self.backup_bucket, Key=key)["Body"].read()
                out += [orjson.loads(line) for line in gzip.decompress(body).splitlines()]
        return out

    def keys_under(self, sub: str) -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.backup_bucket,
                                                                   Prefix=f"dead-letters/{sub}")
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def dead_letters(self) -> list[dict[str, Any]]:
        """Records outside poison/ (what the worker and replays wrote back)."""
        return [r for r in backup_records(self.s3, self.backup_bucket)[0] if "parked" not in r]


@pytest.fixture
def env(aws_endpoint: str, opensearch_url: str, boto: Any, s3_queue: Any, backup: Any, unique_name: Any) -> Env:
    prefix = unique_name("replay")

    def make(**over: Any) -> Config:
        return make_config(aws_endpoint=aws_endpoint, opensearch_url=opensearch_url, queue_url=s3_queue.queue_url,
                           backup_bucket=backup.bucket, replay_queue_url=backup.replay_queue_url,
                           index_prefix=prefix, **over)

    return Env(boto.client("s3"), boto.client("sqs"), os_client(opensearch_url), prefix, s3_queue.bucket,
               s3_queue.queue_url, backup.bucket, backup.replay_queue_url, make)


def replayed(outcome: str) -> float:
    return metric("sluice_replayed_records_total", outcome=outcome)


def custom_format_lines(n: int, seed: int) -> list[str]:
    """Headerless VPC flow lines in CUSTOM_FORMAT (columns 4-13 of the default format)."""
    return [" ".join(line.split()[3:13]) for line in list(vpc_flow_lines(n, seed=seed))[1:]]


async def test_rejected_documents_reindexed_after_the_mapping_is_fixed(env: Env, tmp_path: Path) -> None:
    keys = [vpc_key("a"), vpc_key("b")]
    env.create_conflict()
    await env.ingest({keys[0]: gzip_lines(vpc_flow_lines(25, seed=1)), keys[1]: gzip_lines(vpc_flow_lines(25, seed=2))})
    rejected = [r for r in env.dead_letters() if r["reason"] == "rejected"]
    assert len(rejected) == 50 and len({r["id"] for r in rejected}) == 50
    assert env.ids(env.vpc_index) == []
    assert env.replay_depth() >= 1

    env.fix_conflict()
    # The command line itself, as an operator runs it.
    cfg_file = tmp_path / "sluice.yaml"
    cfg_file.write_text(yaml.safe_dump(env.cfg().model_dump(mode="json")))
    proc = await asyncio.to_thread(subprocess.run, [str(SLUICE), "replay", "--config", str(cfg_file)],
                                   capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "re-indexed 50, already there 0, failed again 0" in proc.stderr, proc.stderr[-3000:]

    docs = all_docs(env.os, env.vpc_index)
    assert sorted(d["_id"] for d in docs) == sorted(r["id"] for r in rejected)
    by_id = {r["id"]: r["document"] for r in rejected}
    assert all(d["_source"] == by_id[d["_id"]] for d in docs)
    assert isinstance(docs[0]["_source"]["destination"]["port"], int)
    assert env.replay_depth() == 0

    # A second replay (of the same dead-letter objects, still in the bucket) adds nothing.
    exists = replayed("exists")
    report = await replay(env.cfg(), ReplayOptions(from_bucket=True))
    assert (report.counts.exists, report.counts.indexed, report.exit_code) == (50, 0, 0)
    assert replayed("exists") - exists == 50
    assert index_counts(env.os, env.prefix) == {env.vpc_index: 50}

    # And the objects delivered once more map onto the same documents (409s, no copies).
    before = metric("sluice_documents_indexed_total", result="exists")
    await env.notify_again(keys)
    assert metric("sluice_documents_indexed_total", result="exists") - before == 50
    assert index_counts(env.os, env.prefix) == {env.vpc_index: 50}


async def test_parse_errors_reparsed_once_the_source_knows_the_format(env: Env) -> None:
    key = vpc_key("custom")
    lines = custom_format_lines(30, seed=3)
    await env.ingest({key: gzip_lines(lines)})
    failures = env.dead_letters()
    assert [r["reason"] for r in failures] == ["parse_error"] * 30
    assert sorted(r["raw"] for r in failures) == sorted(lines)
    assert index_counts(env.os, env.prefix) == {}

    learned = {"sources__logs__parser_options": {"format": CUSTOM_FORMAT}}
    indexed = replayed("indexed")
    report = await replay(env.cfg(**learned), ReplayOptions())
    assert (report.counts.indexed, report.counts.failed_again, report.exit_code) == (30, 0, 0)
    assert replayed("indexed") - indexed == 30
    assert env.replay_depth() == 0

    # The ids the original ingestion would have given them (hash of bucket, key, ETag; then the byte offset).
    etag = env.s3.head_object(Bucket=env.bucket, Key=key)["ETag"].strip('"')
    prefix = Origin("logs", "s3", env.bucket, key, f"etag:{etag}").id_prefix()
    docs = all_docs(env.os, env.vpc_index)
    assert sorted(d["_id"] for d in docs) == sorted(f"{prefix}.{r['offset']}" for r in failures)
    by_id = {f"{prefix}.{r['offset']}": r["raw"].split() for r in failures}
    assert all(d["_source"]["source"]["ip"] == by_id[d["_id"]][0]
               and d["_source"]["destination"]["port"] == int(by_id[d["_id"]][3]) for d in docs)

    # A worker that knows the format re-reading the object lands on exactly these documents.
    before = metric("sluice_documents_indexed_total", result="exists")
    await env.notify_again([key], **learned)
    assert metric("sluice_documents_indexed_total", result="exists") - before == 30
    assert index_counts(env.os, env.prefix) == {env.vpc_index: 30}


async def test_records_that_keep_failing_are_parked_under_poison(env: Env) -> None:
    env.create_conflict()
    await env.ingest({vpc_key("p"): gzip_lines(vpc_flow_lines(20, seed=4))})
    assert len(env.dead_letters()) == 20

    failed, poisoned = replayed("failed_again"), replayed("poisoned")
    first = await replay(env.cfg(), ReplayOptions(max_attempts=1))
    assert (first.counts.failed_again, first.counts.poisoned, first.exit_code) == (20, 0, 1)
    assert first.counts.deferred >= 1  # its own new pointers were left for the next run, not retried at once
    again = [r for r in env.dead_letters() if r.get("origin", {}).get("attempts") == "1"]
    assert len(again) == 20 and all(r["reason"] == "rejected" for r in again)
    assert env.visible_pointers() >= 1

    second = await replay(env.cfg(), ReplayOptions(max_attempts=1))
    assert (second.counts.poisoned, second.counts.failed_again, second.exit_code) == (20, 0, 0)
    assert replayed("failed_again") - failed == 20 and replayed("poisoned") - poisoned == 20
    parked = env.records_under("poison/")
    assert len(parked) == 20 and {r["id"] for r in parked} == {r["id"] for r in again}
    assert all(r["attempts"] == 1 and "max_attempts is 1" in r["parked"] for r in parked)
    assert second.counts.poison_keys == [k for k in env.keys_under("poison/")]
    assert env.replay_depth() == 0
    assert env.ids(env.vpc_index) == []
    assert "parked under poison/ (1 objects)" in second.summary()


async def test_dry_run_changes_nothing(env: Env) -> None:
    env.create_conflict()
    lines = list(vpc_flow_lines(12, seed=5))
    lines.insert(3, "not a flow log line")
    await env.ingest({vpc_key("d"): gzip_lines(lines)})
    keys_before, depth_before = env.keys_under(""), env.replay_depth()
    assert depth_before >= 1 and len(env.dead_letters()) == 13

    dry = replayed("dry_run")
    for opts in (ReplayOptions(dry_run=True), ReplayOptions(dry_run=True, from_bucket=True)):
        report = await replay(env.cfg(), opts)
        assert dict(report.counts.dry_run) == {("rejected", "vpc_flow", "re-submit"): 12,
                                               ("parse_error", "vpc_flow", "re-parse"): 1}
        assert report.exit_code == 0 and report.counts.indexed == report.counts.poisoned == 0
        assert "would re-submit" in report.summary()
    assert replayed("dry_run") - dry == 26
    assert env.keys_under("") == keys_before
    assert env.visible_pointers() == depth_before == env.replay_depth()
    assert index_counts(env.os, env.prefix) == {env.vpc_index: 0}


async def test_from_bucket_replays_only_the_time_range(env: Env) -> None:
    env.create_conflict()
    await env.ingest({vpc_key("early"): gzip_lines(vpc_flow_lines(10, seed=6))})
    await asyncio.sleep(1.2)
    mid = datetime.now(UTC)
    await asyncio.sleep(1.2)
    await env.ingest({vpc_key("late"): gzip_lines(vpc_flow_lines(15, seed=7))})
    records = env.dead_letters()
    early = {r["id"] for r in records if r["origin"]["key"] == vpc_key("early")}
    late = {r["id"] for r in records if r["origin"]["key"] == vpc_key("late")}
    assert (len(early), len(late)) == (10, 15)
    pointers = env.replay_depth()
    env.fix_conflict()

    report = await replay(env.cfg(), ReplayOptions(from_bucket=True, since=mid))
    assert (report.counts.indexed, report.objects_listed, report.exit_code) == (15, 1, 0)
    assert set(env.ids(env.vpc_index)) == late

    report = await replay(env.cfg(), ReplayOptions(from_bucket=True, until=mid))
    assert (report.counts.indexed, report.counts.exists) == (10, 0)
    assert set(env.ids(env.vpc_index)) == early | late
    assert env.replay_depth() == pointers  # the bucket was read; the queue was left alone

    # The queued pointers of the same dead letters now replay as "already there".
    report = await replay(env.cfg(), ReplayOptions())
    assert (report.counts.exists, report.counts.indexed, report.exit_code) == (25, 0, 0)
    assert env.replay_depth() == 0
    assert index_counts(env.os, env.prefix) == {env.vpc_index: 25}


async def test_unknown_object_reingested_under_its_original_origin(env: Env) -> None:
    key = "misc/appliance-export.txt"
    lines = [f"appliance {i} status=green temp={40 + i % 7}" for i in range(18)]
    await env.ingest({key: ("\n".join(lines) + "\n").encode()})
    assert env.dead_letters() == [] and len(env.keys_under("objects/")) == 1
    assert index_counts(env.os, env.prefix) == {}

    # Still unknown: it goes back (a new pointer to the same copy, one attempt more), nothing is indexed.
    report = await replay(env.cfg(), ReplayOptions())
    assert (report.counts.failed_again, report.counts.indexed, report.exit_code) == (1, 0, 1)
    pointers = [json.loads(msg["Body"]) for msg in env.sqs.receive_message(
        QueueUrl=env.replay_url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])]
    assert [(p["kind"], p["attempts"], p["origin"]["key"]) for p in pointers] == [("object", 1, key)]
    assert len(env.keys_under("objects/")) == 1 and index_counts(env.os, env.prefix) == {}

    fallback = {"sources__logs__fallback_log_type": "generic"}
    report = await replay(env.cfg(**fallback), ReplayOptions())
    assert (report.counts.indexed, report.counts.documents, report.exit_code) == (1, 18, 0)
    assert env.replay_depth() == 0

    etag = env.s3.head_object(Bucket=env.bucket, Key=key)["ETag"].strip('"')
    prefix = Origin("logs", "s3", env.bucket, key, f"etag:{etag}").id_prefix()
    offsets, at = [], 0
    for line in lines:
        offsets.append(at)
        at += len(line) + 1
    assert sorted(env.ids(f"{env.prefix}-generic-*")) == sorted(f"{prefix}.{o}" for o in offsets)

    before = metric("sluice_documents_indexed_total", result="exists")
    await env.notify_again([key], **fallback)
    assert metric("sluice_documents_indexed_total", result="exists") - before == 18
    assert sum(index_counts(env.os, env.prefix).values()) == 18


async def test_object_that_stays_unreadable_is_parked_with_its_origin(env: Env) -> None:
    key = "misc/blob.bin"
    await env.ingest({key: b"\x00\x01 not a log at all\n"})
    kept = env.keys_under("objects/")
    assert len(kept) == 1

    first = await replay(env.cfg(), ReplayOptions(max_attempts=1))
    second = await replay(env.cfg(), ReplayOptions(max_attempts=1))
    assert (first.counts.failed_again, first.exit_code) == (1, 1)
    assert (second.counts.poisoned, second.exit_code) == (1, 0)
    parked = env.keys_under("poison/objects/")
    assert parked == [kept[0].replace("dead-letters/objects/", "dead-letters/poison/objects/")]
    assert second.counts.poison_keys == parked
    head = env.s3.head_object(Bucket=env.backup_bucket, Key=parked[0])
    assert head["Metadata"]["sluice-reason"] == "unknown_log_type" and head["Metadata"]["sluice-attempts"] == "1"
    assert key in unquote(head["Metadata"]["sluice-origin"])
    assert env.s3.get_object(Bucket=env.backup_bucket, Key=parked[0])["Body"].read() == b"\x00\x01 not a log at all\n"
    assert env.replay_depth() == 0


def _replay_source(**over: Any) -> dict[str, Any]:
    return {"sources__replay": {"type": "replay", "wait_time": 1, "min_age": 0, **over}}


async def test_replay_source_reindexes_after_the_fix(env: Env) -> None:
    env.create_conflict()
    await env.ingest({vpc_key("s"): gzip_lines(vpc_flow_lines(20, seed=8))})
    ids = {r["id"] for r in env.dead_letters()}
    assert len(ids) == 20
    env.fix_conflict()

    indexed = replayed("indexed")
    await run_worker_until(env.cfg(**_replay_source()), drained(env.sqs, env.replay_url))
    assert set(env.ids(env.vpc_index)) == ids
    assert replayed("indexed") - indexed == 20
    assert env.replay_depth() == 0


async def test_replay_source_parks_what_keeps_failing(env: Env) -> None:
    env.create_conflict()
    await env.ingest({vpc_key("k"): gzip_lines(vpc_flow_lines(10, seed=9))})
    ids = {r["id"] for r in env.dead_letters()}

    # Live ingestion and replay in one worker: each failure comes back, twice, then it is parked.
    def parked() -> bool:
        return len(env.records_under("poison/")) >= 10 and queue_depth(env.sqs, env.replay_url) == 0

    await run_worker_until(env.cfg(**_replay_source(max_attempts=2)), parked, timeout=90)
    poison = env.records_under("poison/")
    assert len(poison) == 10 and {r["id"] for r in poison} == ids
    assert all(r["attempts"] == 2 for r in poison)
    tries = [r for r in env.dead_letters() if r["id"] in ids]
    assert sorted(int(r["origin"].get("attempts", 0)) for r in tries) == [0] * 10 + [1] * 10 + [2] * 10
    assert env.ids(env.vpc_index) == []


async def test_replay_source_leaves_young_pointers_alone(env: Env) -> None:
    env.create_conflict()
    await env.ingest({vpc_key("y"): gzip_lines(vpc_flow_lines(10, seed=10))})
    depth = env.replay_depth()
    env.fix_conflict()

    # Long enough that a source ignoring min_age would have replayed (and deleted) the pointer.
    started = time.monotonic()
    received = metric("sluice_sqs_messages_received_total", source="replay")
    await run_worker_until(env.cfg(**_replay_source(min_age=3600)),
                           lambda: metric("sluice_sqs_messages_received_total", source="replay") > received
                           and time.monotonic() - started > 3)
    assert env.replay_depth() == depth  # received, found too young, handed back: not deleted
    assert index_counts(env.os, env.prefix) == {}
