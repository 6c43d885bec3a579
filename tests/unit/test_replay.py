"""The pure parts of replay: what each dead letter becomes, attempts, ids, the rate limit, options, reports."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
import pytest

from tests.support import CollectingSink, metric
from worker.command import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from worker.config import PipelineConfig
from worker.model import AckSet, Document, Origin
from worker.parsers import ParseContext
from worker.pipeline import Pipeline
from worker.replay.counts import ReplayCounts
from worker.replay.options import ReplayOptions, ReplayUsageError, dead_letter_keys, options_from_args
from worker.replay.plan import (
    Action,
    attempts_of,
    document_id,
    line_still_too_long,
    origin_of,
    parse_pointer,
    plan_record,
)
from worker.replay.rate import RateLimitedSink, TokenBucket
from worker.replay.report import ReplayReport

ORIGIN = {"source": "logs", "kind": "s3", "bucket": "b", "key": "AWSLogs/1/vpcflowlogs/x.log.gz", "version": "etag:e"}


def rec(reason: str, **fields: Any) -> dict[str, Any]:
    return {"reason": reason, "detail": "", "origin": dict(ORIGIN), "log_type": "vpc_flow", **fields}


# --- record -> action ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("record", "action", "why"), [
    (rec("rejected", document={"a": 1}, id="x.1", index="i", offset=1), Action.RESUBMIT, ""),
    (rec("unserializable", document={"a": 1}, id="x.1"), Action.RESUBMIT, ""),
    (rec("unserializable", raw="2 1 eni ...", offset=5, id="x.5"), Action.REPARSE, ""),
    (rec("rejected", raw="line", offset=5), Action.REPARSE, ""),
    (rec("parse_error", raw="a b c", offset=0), Action.REPARSE, ""),
    (rec("parse_error", document={"eventName": "X"}, offset=3, log_type="cloudtrail"), Action.REPARSE, ""),
    (rec("unserializable", id="x.1"), Action.PARK, "neither the raw record nor the document"),
    (rec("parse_error", raw="head", offset=0,
         detail="line of 2000000 bytes exceeds pipeline.max_line_bytes (1048576); the first bytes are kept"),
     Action.PARK, "over-long line"),
    (rec("parse_error", raw="{bad", offset=0, log_type="cloudtrail", detail="invalid JSON: unexpected"),
     Action.PARK, "not valid JSON"),
    (rec("parse_error", raw="a", offset=0, log_type="no_such_type"), Action.PARK, "unknown log type"),
    (rec("parse_error", raw="a", offset=None), Action.PARK, "no offset"),
    (rec("parse_error", raw="a", offset=True), Action.PARK, "no offset"),
    (rec("bad_notification", raw="{}"), Action.PARK, "bad_notification records cannot be re-driven"),
    (rec("object_missing"), Action.PARK, "object_missing records cannot"),
    (rec("invalid_utf8", raw="caf\ufffd", offset=0, id="x.0"), Action.LEAVE, ""),
    (rec("rejected", document={"a": 1}, id="x.1", attempts=3), Action.PARK, "failed 3 replay(s); max_attempts is 3"),
    ({**rec("rejected", document={"a": 1}, id="x.1"), "origin": {**ORIGIN, "attempts": "5"}}, Action.PARK,
     "failed 5 replay(s)"),
    ({"reason": "rejected", "document": {"a": 1}, "id": "x"}, Action.PARK, "no origin"),
])
def test_plan_record(record: dict[str, Any], action: Action, why: str) -> None:
    plan = plan_record(record, max_attempts=3)
    assert plan.action is action
    assert why in plan.why


def test_attempts_below_the_limit_are_replayed() -> None:
    assert plan_record(rec("rejected", document={}, id="x", attempts=2), max_attempts=3).action is Action.RESUBMIT


@pytest.mark.parametrize(("record", "attempts"), [
    ({}, 0),
    ({"attempts": 2}, 2),
    ({"origin": {"attempts": "4"}}, 4),
    ({"attempts": 1, "origin": {"attempts": "3"}}, 3),
    ({"attempts": "many", "origin": {"attempts": None}}, 0),
    ({"attempts": True}, 0),
])
def test_attempts_of(record: dict[str, Any], attempts: int) -> None:
    assert attempts_of(record) == attempts


def test_origin_of_keeps_the_ids_and_carries_the_attempts() -> None:
    original = Origin("logs", "s3", "b", "k", "etag:e", extra=(("shard", "7"),))
    again = origin_of({**original.as_dict(), "attempts": "1"}, 2)
    assert again.id_prefix() == original.id_prefix()
    assert again.as_dict() == {**original.as_dict(), "attempts": "2"}


_Capture = CollectingSink


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_document_id_is_the_pipelines() -> None:
    """The ids replay derives for re-parsed records are those live ingestion gives the same lines."""
    sink = _Capture()
    pipeline = Pipeline(PipelineConfig(), sink, cast(Any, None))
    origin = Origin("logs", "s3", "bucket", "AWSLogs/1/vpcflowlogs/k.log", "etag:abc")
    lines = ["version srcaddr dstaddr action",
             "2 10.0.0.1 10.0.0.2 ACCEPT",
             "2 10.0.0.3 10.0.0.4 REJECT"]
    ack = AckSet("t")
    await pipeline.ingest(_one(("\n".join(lines) + "\n").encode()), origin, "vpc_flow", ParseContext(), ack)
    offsets = [len(lines[0]) + 1, len(lines[0]) + len(lines[1]) + 2]
    assert [d.id for d in sink.docs] == [document_id(origin, o) for o in offsets]
    assert document_id(origin, 7, "3") == f"{origin.id_prefix()}.7.3"


def test_parse_pointer() -> None:
    ok = {"type": "sluice.dead_letters", "kind": "records", "bucket": "b", "key": "k", "records": 2}
    assert parse_pointer(orjson.dumps(ok).decode()) == ok
    for body, why in (("nope", "not JSON"), ('{"type": "other"}', "not a sluice.dead_letters pointer"),
                      ('{"type": "sluice.dead_letters", "kind": "records"}', "without kind, bucket or key"),
                      ('{"type": "sluice.dead_letters", "kind": "x", "bucket": "b", "key": "k"}', "without kind")):
        with pytest.raises(ValueError, match=why):
            parse_pointer(body)


def test_line_still_too_long() -> None:
    pointer = {"reason": "oversize_line", "detail": "line of 2000000 bytes at offset 10 exceeds ..."}
    assert line_still_too_long(pointer, 1 << 20)
    assert not line_still_too_long(pointer, 4 << 20)
    assert not line_still_too_long({"reason": "decode_error", "detail": "line of 9 bytes"}, 1)
    assert not line_still_too_long({"reason": "oversize_line", "detail": "no length here"}, 1)


# --- rate limit ------------------------------------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_bursts_then_spaces_requests() -> None:
    clock = _Clock()
    bucket = TokenBucket(10, clock=clock)
    assert bucket.reserve(10) == 0.0  # the burst
    assert bucket.reserve(5) == pytest.approx(0.5)  # 5 units in debt at 10/s
    clock.now += 0.5
    assert bucket.reserve(0) == 0.0  # the debt is paid
    clock.now += 60
    assert bucket.reserve(10) == 0.0 and bucket.reserve(1) == pytest.approx(0.1)  # refill is capped at the burst


def test_token_bucket_lets_big_requests_through_after_their_deficit() -> None:
    bucket = TokenBucket(10, clock=_Clock())
    assert bucket.reserve(30) == pytest.approx(2.0)
    assert bucket.reserve(10) == pytest.approx(3.0)  # queued behind the first


def test_token_bucket_rate_zero_is_unlimited() -> None:
    bucket = TokenBucket(0, clock=_Clock())
    assert all(bucket.reserve(1_000_000) == 0.0 for _ in range(3))


async def test_rate_limited_sink_takes_one_unit_per_document() -> None:
    sink, clock = _Capture(), _Clock()
    bucket = TokenBucket(1000, clock=clock)
    limited = RateLimitedSink(sink, bucket)
    docs = [Document(str(i), "generic", {}, AckSet("t"), Origin("s", "s3")) for i in range(3)]
    await limited.submit(docs)
    await limited.submit([])
    assert sink.docs == docs and bucket.tokens == pytest.approx(997)


# --- the command ----------------------------------------------------------------------------------------


def _args(**over: Any) -> argparse.Namespace:
    base = {"from_bucket": False, "from_queue": False, "prefix": "", "since": None, "until": None, "dry_run": False,
            "rate": 0.0, "max_attempts": 3}
    return argparse.Namespace(**{**base, **over})


def test_options_from_args() -> None:
    opts = options_from_args(_args(from_bucket=True, prefix="2026/", since="2026-11-22", until="2026-11-23T10:00:00Z",
                                   rate=50, max_attempts=2, dry_run=True))
    assert opts == ReplayOptions(True, "2026/", datetime(2026, 11, 22, tzinfo=UTC),
                                 datetime(2026, 11, 23, 10, tzinfo=UTC), True, 50.0, 2)
    assert options_from_args(_args()) == ReplayOptions()


@pytest.mark.parametrize(("over", "message"), [
    ({"prefix": "2026/"}, "add --from-bucket"),
    ({"since": "2026-11-22"}, "add --from-bucket"),
    ({"from_bucket": True, "since": "yesterday"}, "not an ISO 8601"),
    ({"from_bucket": True, "since": "2026-11-23", "until": "2026-11-22"}, "is not before"),
    ({"rate": -1}, "--rate"),
    ({"max_attempts": 0}, "--max-attempts"),
])
def test_options_usage_errors(over: dict[str, Any], message: str) -> None:
    with pytest.raises(ReplayUsageError, match=message):
        options_from_args(_args(**over))


def test_dead_letter_keys_select_record_files_in_range_oldest_first() -> None:
    t0 = datetime(2026, 11, 22, tzinfo=UTC)
    listing = [
        ("dl/2026/11/22/10/b.ndjson.gz", t0 + timedelta(hours=2)),
        ("dl/2026/11/22/09/a.ndjson.gz", t0 + timedelta(hours=1)),
        ("dl/2026/11/22/11/c.ndjson.gz", t0 + timedelta(hours=3)),
        ("dl/objects/2026/11/22/bucket/x.ndjson.gz", t0 + timedelta(hours=1)),  # a kept object, not records
        ("dl/poison/2026/11/22/09/p.ndjson.gz", t0 + timedelta(hours=1)),
        ("dl/2026/11/22/09/notes.txt", t0 + timedelta(hours=1)),
    ]
    assert dead_letter_keys(listing, "dl/", "", None, None) == [
        "dl/2026/11/22/09/a.ndjson.gz", "dl/2026/11/22/10/b.ndjson.gz", "dl/2026/11/22/11/c.ndjson.gz"]
    assert dead_letter_keys(listing, "dl/", "", t0 + timedelta(hours=2), t0 + timedelta(hours=3)) == [
        "dl/2026/11/22/10/b.ndjson.gz"]
    assert dead_letter_keys(listing, "dl/", "2026/11/22/11/", None, None) == ["dl/2026/11/22/11/c.ndjson.gz"]
    assert dead_letter_keys(listing, "dl/", "poison/", None, None) == ["dl/poison/2026/11/22/09/p.ndjson.gz"]


def test_report_exit_codes() -> None:
    report = ReplayReport("q")
    report.counts.indexed, report.counts.exists, report.counts.poisoned = 5, 3, 2
    assert report.exit_code == EXIT_OK  # parked on purpose is fine
    report.counts.failed_again = 1
    assert report.exit_code == EXIT_FAILED
    report.counts.failed_again, report.counts.missing = 0, ["s3://b/k"]
    assert report.exit_code == EXIT_FAILED
    report.counts.missing, report.counts.errors = [], 1
    assert report.exit_code == EXIT_FAILED
    report.interrupted = True
    assert report.exit_code == EXIT_INTERRUPTED


def test_report_summary_and_progress() -> None:
    report = ReplayReport("s3://b/dl/")
    c = report.counts
    c.records, c.pointers, c.indexed, c.exists, c.failed_again, c.poisoned = 12, 2, 6, 3, 2, 1
    c.poison_keys, c.deferred = ["dl/poison/2026/11/22/10/x.ndjson.gz"], 1
    text = report.summary()
    assert "finished with failures" in text and "12 records in 2 dead-letter objects" in text
    assert "re-indexed 6, already there 3, failed again 2" in text and "poisoned 1" in text
    assert "dl/poison/2026/11/22/10/x.ndjson.gz" in text and "1 pointer(s) sent during this run" in text
    assert report.progress_line().startswith("replay s3://b/dl/: 12/12 records, 2 objects")

    dry = ReplayReport("q", dry_run=True)
    dry.counts.dry_run[("rejected", "vpc_flow", "re-submit")] = 4
    assert "would re-submit rejected vpc_flow" in " ".join(dry.summary().split())
    assert "(dry run: nothing was changed)" in dry.summary()


def test_counts_feed_the_metric() -> None:
    before = metric("sluice_replayed_records_total", outcome="exists")
    counts = ReplayCounts()
    counts.count("exists", 3)
    counts.count("skipped", 2)  # not a metric outcome
    counts.fail("s3://b/k: boom")
    assert (counts.exists, counts.skipped, counts.errors, counts.done) == (3, 2, 1, 6)
    assert metric("sluice_replayed_records_total", outcome="exists") - before == 3
