"""`sluice backfill` logic without servers: arguments, listing -> ids, the state file, the run's bookkeeping."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from worker.__main__ import build_parser, main
from worker.backfill import (
    Backfill,
    BackfillAborted,
    BackfillOptions,
    BackfillReport,
    BackfillUsageError,
    in_range,
    listed_ref,
    options_from_args,
    parse_s3_url,
    parse_time,
    source_settings,
)
from worker.backfill_state import BackfillState, StateFileError, default_state_path
from worker.config import parse_config
from worker.model import AckSet, Origin, Outcome
from worker.sources.s3_events import ObjectRef, parse_notification
from worker.sources.s3_objects import ObjectResult

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def _args(*argv: str) -> Any:
    return build_parser().parse_args(["backfill", "--config", "c.yaml", *argv])


def _config(**sources: Any) -> Any:
    return parse_config({
        "opensearch": {"hosts": ["http://127.0.0.1:1"]},
        "dead_letters": {"bucket": "backup", "replay_queue_url": "http://q/replay"},
        "sources": sources or {"vpc": {"type": "sqs_s3", "queue_url": "http://q/vpc"}},
    })


# --- arguments -------------------------------------------------------------------------------------------


def test_s3_url_splits_bucket_and_prefix() -> None:
    assert parse_s3_url("s3://logs/AWSLogs/123/") == ("logs", "AWSLogs/123/")
    assert parse_s3_url("s3://logs") == ("logs", "")
    assert parse_s3_url("s3://logs/") == ("logs", "")
    for bad in ("logs/AWSLogs", "s3:///prefix", "gs://logs/x"):
        with pytest.raises(BackfillUsageError):
            parse_s3_url(bad)


def test_times_are_iso_8601_and_utc_unless_they_say_otherwise() -> None:
    assert parse_time("2026-11-22", "--since") == datetime(2026, 11, 22, tzinfo=UTC)
    assert parse_time("2026-11-22T10:00:00Z", "--since") == T0
    assert parse_time("2026-11-22T12:00:00+02:00", "--since") == T0
    assert parse_time("2026-11-22T10:00", "--since") == T0
    assert parse_time(None, "--since") is None
    with pytest.raises(BackfillUsageError, match="--until 'yesterday'"):
        parse_time("yesterday", "--until")


def test_options_defaults_and_refusals() -> None:
    opts = options_from_args(_args("s3://logs/AWSLogs/"))
    assert (opts.bucket, opts.prefix, opts.concurrency, opts.log_type) == ("logs", "AWSLogs/", 8, "auto")
    assert opts.state_path == default_state_path("logs", "AWSLogs/")
    assert opts.state_path.name.startswith(".sluice-backfill-logs-") and opts.state_path.suffix == ".state"
    assert default_state_path("logs", "a/") != default_state_path("logs", "b/")
    opts = options_from_args(_args("s3://b/p", "--since", "2026-11-01", "--until", "2026-11-02", "--state", "x.st",
                                   "--log-type", "alb", "--concurrency", "3"))
    assert (opts.since, opts.until) == (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC))
    assert (opts.state_path, opts.log_type, opts.concurrency) == (Path("x.st"), "alb", 3)
    for argv, why in ((("s3://b/p", "--since", "2026-11-02", "--until", "2026-11-01"), "not before"),
                      (("s3://b/p", "--log-type", "nope"), "--log-type 'nope'"),
                      (("s3://b/p", "--concurrency", "0"), "at least 1")):
        with pytest.raises(BackfillUsageError, match=why):
            options_from_args(_args(*argv))


def test_command_exits_2_on_bad_arguments_before_touching_anything(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "sluice.yaml"
    cfg.write_text(yaml.safe_dump(_config().model_dump(mode="json")))
    assert main(["backfill", "--config", str(cfg), "logs/AWSLogs/"]) == 2
    assert "expected s3://bucket/prefix" in capsys.readouterr().err
    assert main(["backfill", "--config", str(cfg), "s3://logs/", "--since", "soon"]) == 2
    assert "--since 'soon'" in capsys.readouterr().err


# --- a listed object has the ids its notification would give ---------------------------------------------


def _notified(key: str, **obj: str) -> ObjectRef:
    body = {"Records": [{"eventName": "ObjectCreated:Put", "s3": {
        "bucket": {"name": "logs"}, "object": {"key": key, "size": 42, **obj}}}]}
    return parse_notification(json.dumps(body)).objects[0]


def _ids_prefix(ref: ObjectRef) -> str:
    return Origin("logs", "s3", ref.bucket, ref.key, ref.version_tag, ref.size).id_prefix()


def test_listed_object_gets_the_version_tag_and_ids_of_its_notification() -> None:
    key = "AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/11/22/a b.log.gz"
    entry = {"Key": key, "ETag": '"9b2cf535f27731c974343645a3985328"', "Size": 42, "LastModified": T0}
    note = _notified("AWSLogs%2F123456789012%2Fvpcflowlogs%2Fus-east-1%2F2026%2F11%2F22%2Fa+b.log.gz",
                     eTag="9b2cf535f27731c974343645a3985328")
    listed = listed_ref("logs", entry)
    assert listed.version_tag == note.version_tag == "etag:9b2cf535f27731c974343645a3985328"
    assert (listed.key, listed.etag, listed.size) == (note.key, note.etag, 42)
    assert _ids_prefix(listed) == _ids_prefix(note)
    # A multipart ETag keeps its part count, in both.
    etag = "d41d8cd98f00b204e9800998ecf8427e-3"
    assert listed_ref("logs", {"Key": "k", "ETag": f'"{etag}"'}).version_tag == _notified("k", eTag=etag).version_tag
    # Another ETag (the object was rewritten) is another identity.
    assert _ids_prefix(listed_ref("logs", {**entry, "ETag": '"0000"'})) != _ids_prefix(note)


def test_versioned_listing_uses_the_version_id_as_notifications_do() -> None:
    entry = {"Key": "k", "ETag": '"abc"', "VersionId": "3HL4kqtJlcpXroDTDmJ", "Size": 1, "IsLatest": True}
    note = _notified("k", eTag="abc", versionId="3HL4kqtJlcpXroDTDmJ")
    assert listed_ref("logs", entry).version_tag == note.version_tag == "3HL4kqtJlcpXroDTDmJ"
    # Written before versioning was enabled: listed as version "null", notified without a version id.
    assert listed_ref("logs", {**entry, "VersionId": "null"}).version_tag == "etag:abc"


def test_time_range_is_since_inclusive_until_exclusive() -> None:
    later = T0 + timedelta(hours=1)
    assert in_range(T0, T0, later) and not in_range(later, T0, later)
    assert not in_range(T0 - timedelta(microseconds=1), T0, None)
    assert in_range(T0, None, None)


def test_objects_are_read_with_the_first_sqs_s3_sources_settings() -> None:
    cfg = _config(rp={"type": "replay"},
                  vpc={"type": "sqs_s3", "queue_url": "q", "parser_options": {"format": "version srcaddr"},
                       "keep_original": True, "fallback_log_type": "generic"},
                  alb={"type": "sqs_s3", "queue_url": "q2", "log_type": "alb"})
    name, settings = source_settings(cfg, "auto")
    assert name == "vpc"
    assert (settings.log_type, settings.keep_original, settings.fallback_log_type) == ("auto", True, "generic")
    assert settings.parser_options == {"format": "version srcaddr"}
    assert source_settings(cfg, "waf")[1].log_type == "waf"
    name, settings = source_settings(_config(rp={"type": "replay"}), "auto")
    assert (name, settings.log_type, settings.keep_original) == ("backfill", "auto", False)


# --- the state file --------------------------------------------------------------------------------------


async def test_state_records_survive_a_reload_and_the_last_version_wins(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "bf.state"
    state = BackfillState(path, "logs", "AWSLogs/")
    assert state.load() == {}
    state.open()
    await state.record("a", "etag:1")
    await state.record("b", "etag:2")
    await state.record("a", "etag:3")
    await state.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["sluice_backfill"] == 1 and lines[0]["bucket"] == "logs" and lines[0]["prefix"] == "AWSLogs/"
    assert lines[1:] == [{"key": "a", "version": "etag:1"}, {"key": "b", "version": "etag:2"},
                         {"key": "a", "version": "etag:3"}]
    again = BackfillState(path, "logs", "AWSLogs/")
    assert again.load() == {"a": "etag:3", "b": "etag:2"}
    assert again.is_done("a", "etag:3") and not again.is_done("a", "etag:1") and not again.is_done("c", "")


async def test_a_line_torn_by_a_crash_is_ignored_and_the_next_record_starts_a_new_line(tmp_path: Path) -> None:
    path = tmp_path / "bf.state"
    state = BackfillState(path, "logs", "")
    state.open()
    await state.record("a", "etag:1")
    await state.close()
    with path.open("ab") as f:
        f.write(b'{"key": "b", "vers')  # SIGKILL in the middle of a write
    torn = BackfillState(path, "logs", "")
    assert torn.load() == {"a": "etag:1"} and torn.torn_lines == 1
    torn.open()
    await torn.record("c", "etag:3")
    await torn.close()
    after = BackfillState(path, "logs", "")
    assert after.load() == {"a": "etag:1", "c": "etag:3"} and after.torn_lines == 1


def test_state_of_another_bucket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bf.state"
    path.write_text('{"sluice_backfill": 1, "bucket": "other", "prefix": ""}\n{"key": "a", "version": "etag:1"}\n')
    with pytest.raises(StateFileError, match="bucket 'other', not 'logs'"):
        BackfillState(path, "logs", "").load()


async def test_records_are_synced_in_batches_not_one_by_one(tmp_path: Path) -> None:
    state = BackfillState(tmp_path / "bf.state", "logs", "")
    state.open()
    for i in range(1000):
        await state.record(f"k{i}", "etag:x")
    await state.close()
    assert 2 <= state.syncs <= 3, state.syncs  # SYNC_BATCH = 512: two full batches, and the rest at close
    assert len(BackfillState(tmp_path / "bf.state", "logs", "").load()) == 1000


# --- report ------------------------------------------------------------------------------------------------


def test_report_exit_codes_progress_and_summary() -> None:
    report = BackfillReport("s3://logs/p/", listed=10, listing_done=True, ingested=3, skipped_done=4, failed=1,
                            read=5, documents=1234, bytes_in=2_500_000)
    report.started -= 9.0  # start-up and listing: not in the rates
    report.reading_since = report.started + 5.0
    report.ended = report.reading_since + 4.0
    line = report.progress_line()
    assert line.startswith("backfill s3://logs/p/: 8/10 objects (1 being indexed, 4 already done, 1 failed), "
                           "1,234 docs, 2.5 MB")
    assert "1.2 obj/s" in line and "ETA 0m01s" in line  # 5 read in 4 s, 1 left to read
    assert report.exit_code == 1
    summary = report.summary()
    assert "3 ingested, 4 already done (skipped_done)" in summary and "2 not reached" in summary
    assert "run the same command again" in summary and "1.2 objects/s, 308 docs/s" in summary
    assert BackfillReport("s3://b/", listed=2, listing_done=True, ingested=2).exit_code == 0
    assert BackfillReport("s3://b/", interrupted=True, failed=1).exit_code == 130
    assert BackfillReport("s3://b/", listed=5).progress_line().split(": ")[1].startswith("0/5+ objects")


# --- the run's bookkeeping, with an in-memory listing and ingester ------------------------------------------


class _Pages:
    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages = pages

    async def paginate(self, **_: Any) -> AsyncIterator[dict[str, Any]]:
        for page in self.pages:
            await asyncio.sleep(0.002)  # a listing takes time: readers must not mistake a pause for the end
            yield page


class _FakeS3:
    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.pages = [{"Contents": entries[i:i + 7]} for i in range(0, len(entries), 7)]

    async def get_bucket_versioning(self, Bucket: str) -> dict[str, Any]:
        return {}

    def get_paginator(self, name: str) -> _Pages:
        assert name == "list_objects_v2"
        return _Pages(self.pages)


class _FakeIngester:
    """Counts two documents per object into its AckSet and settles them when `release` is set."""

    def __init__(self, fail: frozenset[str] = frozenset()) -> None:
        self.reading = 0
        self.max_reading = 0
        self.release = asyncio.Event()
        self.fail = fail
        self.seen: list[str] = []
        self.read_ten = asyncio.Event()

    async def ingest(self, ref: ObjectRef, ack: AckSet, if_match: bool = False) -> ObjectResult:
        assert if_match, "backfill must read the listed ETag, not whatever is there now"
        self.seen.append(ref.key)
        if len(self.seen) >= 10:
            self.read_ten.set()
        if "Digest" in ref.key:
            return ObjectResult(skipped="cloudtrail_digest")
        self.reading += 1
        self.max_reading = max(self.max_reading, self.reading)
        await asyncio.sleep(0.001)
        self.reading -= 1
        ack.add(2)

        async def settle() -> None:
            await self.release.wait()
            ack.settle(Outcome.DELIVERED)
            ack.settle(Outcome.RETRY if ref.key in self.fail else Outcome.DELIVERED)

        asyncio.get_running_loop().create_task(settle())
        return ObjectResult()


def _entries(n: int) -> list[dict[str, Any]]:
    return [{"Key": f"p/{i:03d}.log", "ETag": f'"e{i}"', "Size": 10, "LastModified": T0 + timedelta(minutes=i)}
            for i in range(n)]


async def test_run_bounds_reading_records_only_settled_objects_and_skips_them_next_time(tmp_path: Path) -> None:
    entries = [*_entries(40), {"Key": "p/CloudTrail-Digest/x.json.gz", "ETag": '"d"', "Size": 1,
                               "LastModified": T0}]
    opts = BackfillOptions("logs", "p/", tmp_path / "bf.state", until=T0 + timedelta(minutes=30), concurrency=3)
    ingester = _FakeIngester(fail=frozenset({"p/007.log"}))
    state = BackfillState(opts.state_path, "logs", "p/")
    state.open()
    run = Backfill(opts, ingester, state, _FakeS3(entries), asyncio.Event(), 5.0, None)  # type: ignore[arg-type]
    task = asyncio.create_task(run.run())
    await asyncio.sleep(0.3)
    assert len(ingester.seen) == 31  # 30 in range (minutes 0..29) and the digest, all read...
    assert state.done == {}  # ...but nothing is done before its documents are settled
    ingester.release.set()
    report = await task
    assert ingester.max_reading <= 3
    assert (report.listed, report.ingested, report.skipped, report.failed) == (31, 29, 1, 1)
    assert report.exit_code == 1 and "p/007.log: sink retries exhausted" in report.failures[0]
    recorded = BackfillState(opts.state_path, "logs", "p/").load()
    assert sorted(recorded) == [f"p/{i:03d}.log" for i in range(30) if i != 7]
    assert recorded["p/001.log"] == "etag:e1"

    # Second run: the failed object is retried, the done ones are skipped without being read.
    again = _FakeIngester()
    again.release.set()
    state = BackfillState(opts.state_path, "logs", "p/")
    state.load()
    state.open()
    report = await Backfill(opts, again, state, _FakeS3(entries), asyncio.Event(), 5.0,  # type: ignore[arg-type]
                            None).run()
    assert sorted(again.seen) == ["p/007.log", "p/CloudTrail-Digest/x.json.gz"]
    assert (report.skipped_done, report.ingested, report.failed, report.exit_code) == (29, 1, 0, 0)


async def test_a_stop_finishes_what_was_read_records_it_and_leaves_the_rest(tmp_path: Path) -> None:
    opts = BackfillOptions("logs", "p/", tmp_path / "bf.state", concurrency=2)
    ingester = _FakeIngester()
    state = BackfillState(opts.state_path, "logs", "p/")
    state.open()
    stop = asyncio.Event()
    run = Backfill(opts, ingester, state, _FakeS3(_entries(200)), stop, 5.0, None)  # type: ignore[arg-type]
    task = asyncio.create_task(run.run())
    await ingester.read_ten.wait()
    stop.set()
    await asyncio.sleep(0.05)
    ingester.release.set()  # what was read settles within the grace period
    report = await task
    read = len(ingester.seen)
    assert 10 <= read < 200
    assert report.interrupted and report.exit_code == 130
    assert report.ingested == read and len(BackfillState(opts.state_path, "logs", "p/").load()) == read


async def test_a_listing_longer_than_the_read_ahead_queue_is_read_to_the_end(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("worker.backfill.LIST_AHEAD", 3)
    opts = BackfillOptions("logs", "p/", tmp_path / "bf.state", concurrency=2)
    ingester = _FakeIngester()
    ingester.release.set()
    state = BackfillState(opts.state_path, "logs", "p/")
    state.open()
    report = await Backfill(opts, ingester, state, _FakeS3(_entries(60)), asyncio.Event(), 5.0,  # type: ignore[arg-type]
                            None).run()
    assert (report.listed, report.ingested, report.exit_code) == (60, 60, 0)
    assert len(BackfillState(opts.state_path, "logs", "p/").load()) == 60


class _BrokenS3(_FakeS3):
    async def get_bucket_versioning(self, Bucket: str) -> dict[str, Any]:
        raise RuntimeError("NoSuchBucket")


async def test_a_failed_listing_ends_the_run_with_its_error_and_leaves_no_state_file(tmp_path: Path) -> None:
    opts = BackfillOptions("logs", "p/", tmp_path / "bf.state")
    run = Backfill(opts, _FakeIngester(), BackfillState(opts.state_path, "logs", "p/"), _BrokenS3([]),  # type: ignore[arg-type]
                   asyncio.Event(), 5.0, None)
    with pytest.raises(BackfillAborted, match="NoSuchBucket"):
        await run.run()
    assert run.report.exit_code == 1 and "stopped by an error" in run.report.summary()
    assert not opts.state_path.exists()
