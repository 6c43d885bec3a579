"""`sluice backfill s3://bucket/prefix`: ingest objects that already exist (history, or a bucket without
notifications), resumably, with the same ids as live ingestion.

Why it is built this way:
- Same ids: each listed object becomes the `ObjectRef` a notification for it would carry (same bucket, key and
  version tag: version id, else the ETag without quotes) and goes through the same `ObjectIngester` as the
  `sqs_s3` source, so an object that was (or will be) ingested from its notification yields 409s, not copies.
  Objects are read with `If-Match` on the listed ETag: newer bytes never go out under an older ETag's ids.
- Same throughput: `--concurrency` objects are read at once, and a reader does not wait for its object's
  bulk requests to come back before reading the next one (that wait happens in a separate task, bounded by
  `MAX_UNSETTLED`), so bulk requests stay full; the sink's own backpressure bounds memory.
- Resumable: an object is written to the state file (`worker/backfill_state.py`) only once every document
  from it is indexed or durably dead-lettered; a rerun skips those (and re-ingests any whose ETag changed).
- Interruptible: SIGINT/SIGTERM stops listing and reading, lets objects already read settle within
  `worker.shutdown_grace`, records them, and exits 130; a second signal stops at once. Exit 0 when every
  listed object is done, 1 when some failed (not recorded, so the next run retries them).

Objects are read with the settings of the config's first `sqs_s3` source (`log_type`, `parser_options`,
`keep_original`, `fallback_log_type`), whose name is also the `source` of their dead letters, so that
`sluice replay` re-parses them the same way; `--log-type` overrides the log type. Progress goes to stderr
(in place on a terminal, a line every few seconds otherwise), with a summary at the end. Per-object log
lines are at info level, which backfill does not print unless `telemetry.log_level` is `debug`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import sys
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import ClientError

from worker import telemetry as m
from worker.app import build_enricher
from worker.aws import AwsClients
from worker.backfill_state import BackfillState, StateFileError, default_state_path
from worker.command import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, run_command
from worker.config import Config, SqsS3Source
from worker.dead_letters import DeadLetters
from worker.model import AckSet, Outcome
from worker.parsers import log_types
from worker.pipeline import Pipeline
from worker.progress import ProgressPrinter, duration
from worker.setup import source_indices
from worker.sinks.opensearch import OpenSearchSink, build_client
from worker.sources.s3_events import ObjectRef
from worker.sources.s3_objects import ObjectIngester, ObjectSettings
from worker.sources.sqs_s3 import settings_of

log = m.get_logger("sluice.backfill")

MAX_UNSETTLED = 4096
"""Objects read but not yet settled (their documents still in bulk requests) at any time."""
LIST_AHEAD = 100_000
"""Listed objects waiting to be read: listing runs ahead (so the total and the ETA are known early) but not
without bound, so a prefix with millions of objects does not fill memory."""


class BackfillAborted(Exception):
    """The run stopped before its end (the listing failed); its summary, with the error, is already printed."""


class BackfillUsageError(ValueError):
    """The command line cannot work (bad URL, bad time, unknown log type): exit 2 with this message."""


@dataclass(frozen=True, slots=True)
class BackfillOptions:
    bucket: str
    prefix: str
    state_path: Path
    since: datetime | None = None
    until: datetime | None = None
    log_type: str = "auto"
    concurrency: int = 8


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/prefix` -> (bucket, prefix); the prefix may be empty (the whole bucket)."""
    if not url.startswith("s3://"):
        raise BackfillUsageError(f"{url!r}: expected s3://bucket/prefix")
    bucket, _, prefix = url[5:].partition("/")
    if not bucket:
        raise BackfillUsageError(f"{url!r}: no bucket name")
    return bucket, prefix


def parse_time(value: str | None, what: str) -> datetime | None:
    """ISO 8601 (`2026-11-22`, `2026-11-22T10:00:00Z`, with an offset or without: UTC) -> aware datetime."""
    if value is None or value == "":
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise BackfillUsageError(f"{what} {value!r}: not an ISO 8601 date or time") from None
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def options_from_args(args: argparse.Namespace) -> BackfillOptions:
    bucket, prefix = parse_s3_url(args.url)
    since, until = parse_time(args.since, "--since"), parse_time(args.until, "--until")
    if since and until and since >= until:
        raise BackfillUsageError(f"--since {args.since} is not before --until {args.until}")
    if args.log_type != "auto" and args.log_type not in log_types():
        raise BackfillUsageError(f"--log-type {args.log_type!r}: one of auto, {', '.join(log_types())}")
    if args.concurrency < 1:
        raise BackfillUsageError("--concurrency must be at least 1")
    state = Path(args.state) if args.state else default_state_path(bucket, prefix)
    return BackfillOptions(bucket, prefix, state, since, until, args.log_type, args.concurrency)


def listed_ref(bucket: str, entry: Mapping[str, Any]) -> ObjectRef:
    """The `ObjectRef` a notification for this listed object carries, hence the same version tag and ids.

    A notification holds the version id (versioned buckets) and the ETag without quotes; a listing quotes
    the ETag, and lists objects written before versioning was enabled with version id `null`, which their
    notifications did not carry.
    """
    version = str(entry.get("VersionId") or "")
    if version == "null":
        version = ""
    return ObjectRef(bucket=bucket, key=str(entry["Key"]), size=int(entry.get("Size") or 0),
                     etag=str(entry.get("ETag") or "").strip('"'), version=version, event_name="Backfill")


def in_range(modified: datetime, since: datetime | None, until: datetime | None) -> bool:
    """LastModified in [since, until)."""
    return (since is None or modified >= since) and (until is None or modified < until)


def source_settings(cfg: Config, log_type: str) -> tuple[str, ObjectSettings]:
    """(source name, object settings): the first `sqs_s3` source's, or the defaults under the name `backfill`."""
    live = [(name, scfg) for name, scfg in cfg.sources.items() if isinstance(scfg, SqsS3Source)]
    if live:
        name, settings = live[0][0], settings_of(live[0][1], cfg.pipeline)
    else:
        name, settings = "backfill", ObjectSettings(chunk_size=cfg.pipeline.read_chunk_bytes)
    if log_type != "auto":
        settings = dataclasses.replace(settings, log_type=log_type)
    return name, settings


# --- progress and summary --------------------------------------------------------------------------------


@dataclass(slots=True)
class BackfillReport:
    """Counts of one run; `exit_code` and `summary()` are what the command ends with."""

    url: str
    listed: int = 0
    listing_done: bool = False
    ingested: int = 0
    """Objects finished by this run (their documents indexed or dead-lettered) and recorded as done."""
    skipped_done: int = 0
    """Objects a previous run finished (same key and version tag in the state file)."""
    skipped: int = 0
    """Objects the router leaves alone on purpose (CloudTrail digests...)."""
    failed: int = 0
    read: int = 0
    """Objects read by this run (their documents handed to the sink; settled or not yet)."""
    documents: int = 0
    dead_lettered: int = 0
    """Documents (or whole objects) that went to the backup bucket from objects finished by this run."""
    bytes_in: int = 0
    interrupted: bool = False
    error: str | None = None
    """Why the run stopped before its end (the listing failed, ...)."""
    failures: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    reading_since: float | None = None
    """When the first object was read: rates leave out start-up and listing, so the ETA is not skewed."""
    ended: float | None = None

    @property
    def done(self) -> int:
        return self.ingested + self.skipped_done + self.skipped + self.failed

    @property
    def elapsed(self) -> float:
        return max(1e-6, (self.ended or time.monotonic()) - self.started)

    @property
    def working(self) -> float:
        """Seconds since the first object was read (0 before)."""
        if self.reading_since is None:
            return 0.0
        return max(1e-6, (self.ended or time.monotonic()) - self.reading_since)

    def rates(self) -> tuple[float, float]:
        """(objects/s, documents/s) over the time spent reading (objects skipped as done cost nothing)."""
        working = self.working
        if not working:
            return 0.0, 0.0
        return self.read / working, self.documents / working

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        return EXIT_FAILED if self.failed or self.error else EXIT_OK

    def progress_line(self) -> str:
        rate, doc_rate = self.rates()
        total = f"{self.listed}" if self.listing_done else f"{self.listed}+"
        eta = "?"
        if self.listing_done and rate > 0:
            eta = duration((self.listed - self.skipped_done - self.read) / rate)
        unsettled = self.read - self.ingested - self.failed - self.skipped
        return (f"backfill {self.url}: {self.done}/{total} objects ({unsettled} being indexed, "
                f"{self.skipped_done} already done, {self.failed} failed), {self.documents:,} docs, "
                f"{self.bytes_in / 1e6:.1f} MB, {rate:.1f} obj/s, {doc_rate:,.0f} docs/s, ETA {eta}")

    def summary(self) -> str:
        state = ("stopped by an error" if self.error else "interrupted" if self.interrupted
                 else "finished with failures" if self.failed else "complete")
        rate, doc_rate = self.rates()
        lines = [
            f"backfill {self.url} {state} in {duration(self.elapsed)}: {self.listed} objects listed, "
            f"{self.ingested} ingested, {self.skipped_done} already done (skipped_done), {self.skipped} skipped "
            f"by routing, {self.failed} failed, {self.listed - self.done} not reached",
            f"  {self.documents:,} documents ({self.dead_lettered:,} dead-lettered), "
            f"{self.bytes_in / 1e6:.1f} MB read, {rate:.1f} objects/s, {doc_rate:,.0f} docs/s",
        ]
        if self.error:
            lines.append(f"  error: {self.error}")
        lines += [f"  failed: {reason}" for reason in self.failures[:10]]
        if len(self.failures) > 10:
            lines.append(f"  ... and {len(self.failures) - 10} more (see the log)")
        if self.failed or self.interrupted or self.error:
            lines.append("  run the same command again to retry what is not done (finished objects are skipped)")
        return "\n".join(lines)


# --- the run ---------------------------------------------------------------------------------------------


class Backfill:
    """Lists, filters and ingests one prefix; `await run()` returns the report."""

    def __init__(self, opts: BackfillOptions, ingester: ObjectIngester, state: BackfillState, s3: Any,
                 stop: asyncio.Event, grace: float, progress: TextIO | None) -> None:
        self.opts = opts
        self.ingester = ingester
        self.state = state
        self.s3 = s3
        self.stop = stop
        self.grace = grace
        self.report = BackfillReport(f"s3://{opts.bucket}/{opts.prefix}")
        self.printer = ProgressPrinter(self.report, progress)
        self._queue: asyncio.Queue[ObjectRef] = asyncio.Queue(maxsize=LIST_AHEAD)
        self._unsettled = asyncio.Semaphore(MAX_UNSETTLED)
        self._settling: set[asyncio.Task[None]] = set()

    async def run(self) -> BackfillReport:
        ticker = asyncio.create_task(self._tick_loop(), name="backfill-progress")
        lister = asyncio.create_task(self._list(), name="backfill-lister")
        readers = [asyncio.create_task(self._read_loop(), name=f"backfill-reader-{i}")
                   for i in range(self.opts.concurrency)]
        stopped = asyncio.create_task(self.stop.wait())
        read_all: asyncio.Task[None] | None = None
        try:
            await asyncio.wait([lister, stopped], return_when=asyncio.FIRST_COMPLETED)
            if not self.stop.is_set():
                lister.result()  # a listing error (no such bucket, access denied) ends the run here
                read_all = asyncio.create_task(self._queue.join())  # every listed object taken and read
                await asyncio.wait([read_all, stopped], return_when=asyncio.FIRST_COMPLETED)
            if self.stop.is_set():
                deadline = time.monotonic() + self.grace
                lister.cancel()
                while not self._queue.empty():  # objects not started stay undone: the next run lists them
                    self._queue.get_nowait()
                    self._queue.task_done()
                read_all = read_all or asyncio.create_task(self._queue.join())
                await asyncio.wait([read_all], timeout=self.grace)  # readers finish the object in hand
                await self._settle_all(deadline)
            else:
                await self._settle_all(None)
        except Exception as exc:
            self.report.error = f"{type(exc).__name__}: {exc}"
            raise BackfillAborted(self.report.error) from exc
        finally:
            tasks = [ticker, stopped, lister, *readers, *self._settling, *([read_all] if read_all else [])]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.state.close()
            report = self.report
            report.interrupted = self.stop.is_set() and (not report.listing_done or report.done < report.listed)
            report.ended = time.monotonic()
            self.printer.finish()
        return self.report

    async def _settle_all(self, deadline: float | None) -> None:
        """Wait until objects already read are settled; once stopped, until the grace period's end at most."""
        while self._settling:
            if deadline is None and self.stop.is_set():
                deadline = time.monotonic() + self.grace
            if deadline is not None and time.monotonic() >= deadline:
                log.warning("backfill_objects_abandoned", objects=len(self._settling),
                            note="not recorded as done; the next run ingests them again")
                return
            await asyncio.wait(set(self._settling), timeout=0.25, return_when=asyncio.FIRST_COMPLETED)

    async def _list(self) -> None:
        opts, report = self.opts, self.report
        async for modified, entry in self._listing():
            if not in_range(modified, opts.since, opts.until):
                continue
            ref = listed_ref(opts.bucket, entry)
            report.listed += 1
            if self.state.is_done(ref.key, ref.version_tag):
                report.skipped_done += 1
                m.BACKFILL_OBJECTS.labels("skipped_done").inc()
                continue
            await self._queue.put(ref)
        report.listing_done = True

    async def _listing(self) -> AsyncIterator[tuple[datetime, Mapping[str, Any]]]:
        """(LastModified, entry) for the current version of every object under the prefix."""
        bucket, prefix = self.opts.bucket, self.opts.prefix
        if await self._versioned():
            pages = self.s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix)
            async for page in pages:
                for entry in page.get("Versions", []):
                    if entry.get("IsLatest"):
                        yield entry["LastModified"], entry
        else:
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            async for page in pages:
                for entry in page.get("Contents", []):
                    yield entry["LastModified"], entry

    async def _versioned(self) -> bool:
        """A bucket with versioning has version ids in its notifications, so its ids are built from them."""
        try:
            resp = await self.s3.get_bucket_versioning(Bucket=self.opts.bucket)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("AccessDenied", "NotImplemented"):
                log.warning("bucket_versioning_unknown", bucket=self.opts.bucket, error=str(exc),
                            note="listing as unversioned: ids use ETags")
                return False
            raise
        return resp.get("Status") in ("Enabled", "Suspended")

    async def _read_loop(self) -> None:
        while True:
            ref = await self._queue.get()
            try:
                if not self.stop.is_set():
                    await self._read(ref)
            finally:
                self._queue.task_done()

    async def _read(self, ref: ObjectRef) -> None:
        """Read one object into the sink; its settling is awaited by a task of its own."""
        await self._unsettled.acquire()
        if self.report.reading_since is None:
            self.report.reading_since = time.monotonic()
        ack = AckSet(f"backfill/{ref.key}")
        try:
            result = await self.ingester.ingest(ref, ack, if_match=True)
        finally:
            ack.seal()
            self.report.read += 1
        if result.skipped:
            self._unsettled.release()
            self.report.skipped += 1
            return
        if result.stats is not None:
            self.report.documents += result.stats.documents
            self.report.bytes_in += result.stats.bytes_in
        task = asyncio.create_task(self._settle(ref, ack))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _settle(self, ref: ObjectRef, ack: AckSet) -> None:
        try:
            ok = await ack.wait()
        finally:
            self._unsettled.release()
        if ok:
            await self.state.record(ref.key, ref.version_tag)
            self.report.ingested += 1
            self.report.dead_lettered += ack.counts[Outcome.DEAD_LETTERED]
            m.BACKFILL_OBJECTS.labels("ingested").inc()
        else:
            self.report.failed += 1
            self.report.failures.append(f"s3://{ref.bucket}/{ref.key}: {ack.failure}")
            m.BACKFILL_OBJECTS.labels("failed").inc()
            log.warning("backfill_object_failed", uri=f"s3://{ref.bucket}/{ref.key}", reason=ack.failure)

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            self.printer.tick()
            await self.state.sync_due()


async def install_templates(sink: OpenSearchSink, stop: asyncio.Event, attempts: int = 6) -> None:
    """Templates must exist before the first document creates an index; OpenSearch may still be starting."""
    delay = 1.0
    for attempt in range(1, attempts + 1):
        try:
            await sink.setup()
            return
        except Exception as exc:
            if attempt == attempts or stop.is_set():
                raise
            log.warning("index_templates_failed", error=str(exc)[:300], retry_in=delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(30.0, delay * 2)


async def backfill(cfg: Config, opts: BackfillOptions, stop: asyncio.Event | None = None,
                   progress: TextIO | None = None) -> BackfillReport:
    """Run one backfill with a sink, dead letters and pipeline built from `cfg`, as the worker builds them."""
    if stop is None:
        stop = asyncio.Event()
    state = BackfillState(opts.state_path, opts.bucket, opts.prefix)
    state.load()
    if state.torn_lines:
        log.warning("backfill_state_torn_lines", path=str(opts.state_path), lines=state.torn_lines)
    enricher = build_enricher(cfg.enrich)
    source, settings = source_settings(cfg, opts.log_type)
    try:
        async with AwsClients(cfg.aws) as aws, DeadLetters(cfg.dead_letters, aws) as dead_letters:
            client = build_client(cfg.opensearch, cfg.aws.region)
            try:
                sink = OpenSearchSink(cfg.opensearch, dead_letters, client, source_indices=source_indices(cfg))
                if cfg.opensearch.install_templates:
                    await install_templates(sink, stop)
                await sink.__aenter__()
                try:
                    pipeline = Pipeline(cfg.pipeline, sink, dead_letters, enricher)
                    ingester = ObjectIngester(source, settings, aws, pipeline, dead_letters)
                    run = Backfill(opts, ingester, state, await aws.client("s3"), stop,
                                   cfg.worker.shutdown_grace, progress)
                    return await run.run()
                finally:
                    # Settled objects left nothing behind; after an interruption, bound the wait for the rest,
                    # and after a second signal (this task cancelled) do not wait at all.
                    current = asyncio.current_task()
                    hurry = current is not None and current.cancelling() > 0
                    await sink.close(timeout=0.5 if hurry else cfg.worker.shutdown_grace if stop.is_set() else None)
            finally:
                await client.close()
    finally:
        if enricher is not None:
            enricher.close()


def run_backfill(cfg: Config, args: argparse.Namespace) -> int:
    """The `sluice backfill` command: 0 all done, 1 some objects failed, 2 bad arguments, 130 interrupted."""
    try:
        opts = options_from_args(args)
    except BackfillUsageError as exc:
        print(f"sluice backfill: {exc}", file=sys.stderr)
        return EXIT_USAGE

    async def body(stop: asyncio.Event) -> int:
        return (await backfill(cfg, opts, stop, sys.stderr)).exit_code

    def known(exc: Exception) -> int | None:
        if isinstance(exc, StateFileError):
            print(f"sluice backfill: {exc}", file=sys.stderr)
            return EXIT_USAGE
        return EXIT_FAILED if isinstance(exc, BackfillAborted) else None

    return run_command("backfill", cfg, body, known)
