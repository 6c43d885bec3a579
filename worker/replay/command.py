"""`sluice replay`: re-drive dead letters once, from the replay queue or straight from the backup bucket.

What happens to each record (re-submitted with its original id, re-parsed with today's parser, parked under
`poison/`) is the engine's business (`worker/replay/engine.py`, shared with the `type: replay` source); this
module decides where the dead letters come from and how the run is reported.

- `--from-queue` (default): pointer messages are consumed until the queue is empty (short long polls). Pointers
  sent while this replay runs (records that failed again, or new dead letters from live workers) are left for
  the next run: otherwise one run would use up every attempt of a record that keeps failing within seconds.
  A pointer is deleted once every record it names is settled for good; the others are made visible again.
- `--from-bucket`: the NDJSON.gz dead-letter objects under `dead_letters.prefix` + `--prefix` whose
  LastModified is in [`--since`, `--until`), oldest first. Nothing is deleted (the bucket is the archive, and
  the pointers of these objects, if still queued, replay as "already there" later). Whole objects under
  `objects/` are replayed from the queue only (their pointer holds the origin); `poison/` is skipped unless
  `--prefix` starts with `poison/`.
- `--dry-run`: reads and counts by reason, log type and action; writes nothing, deletes nothing.
- `--rate`: documents per second at most; `--max-attempts`: replays of a record before it is parked.

Other settings (`max_in_flight`, `visibility_timeout`, `queue_url`) come from the config's first `type: replay`
source, if any. Progress goes to stderr (in place on a terminal, a line every few seconds otherwise), then a
summary. Exit 0: every record re-indexed, already there, or deliberately parked (or a dry run); 1: some failed
again or could not be finished (run again later); 2: bad arguments; 130: interrupted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from datetime import datetime
from typing import TextIO

from worker import telemetry as m
from worker.app import build_enricher
from worker.aws import AwsClients
from worker.command import EXIT_USAGE, run_command
from worker.config import Config
from worker.dead_letters import DeadLetters
from worker.pipeline import Pipeline
from worker.progress import ProgressPrinter
from worker.replay.engine import Replayer, ReplaySettings
from worker.replay.existing import existing_ids_for
from worker.replay.options import (
    ReplayOptions,
    ReplayUsageError,
    dead_letter_keys,
    options_from_args,
    replay_source_config,
)
from worker.replay.pointers import PointerQueue
from worker.replay.report import ReplayReport
from worker.setup import source_indices
from worker.sinks.opensearch import OpenSearchSink, build_client

log = m.get_logger("sluice.replay")

QUEUE_WAIT_SECONDS = 1
"""Long poll of the one-off replay: the queue counts as empty after one empty poll with nothing outstanding."""
KEEP_INVISIBLE = 900
"""Visibility given to pointers this run leaves alone (made visible again when it ends)."""


async def _from_queue(cfg: Config, replayer: Replayer, aws: AwsClients, report: ReplayReport,
                      stop: asyncio.Event) -> None:
    scfg = replay_source_config(cfg)
    started = time.time()
    queue = PointerQueue(
        "replay", await aws.client("sqs"), report.where, replayer, max_in_flight=scfg.max_in_flight,
        wait_time=QUEUE_WAIT_SECONDS, visibility_timeout=scfg.visibility_timeout, retry_visibility=KEEP_INVISIBLE,
        ready=lambda sent: sent is None or sent < started, release_kept=True)
    await queue.run_until_drained(stop, cfg.worker.shutdown_grace)


async def _from_bucket(cfg: Config, opts: ReplayOptions, replayer: Replayer, aws: AwsClients,
                       report: ReplayReport, stop: asyncio.Event) -> None:
    s3 = await aws.client("s3")
    bucket, base = cfg.dead_letters.bucket, cfg.dead_letters.prefix
    listing: list[tuple[str, datetime]] = []
    async for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base + opts.prefix):
        listing += [(obj["Key"], obj["LastModified"]) for obj in page.get("Contents", [])]
    keys = dead_letter_keys(listing, base, opts.prefix, opts.since, opts.until)
    report.objects_listed = len(keys)
    slots = asyncio.Semaphore(replay_source_config(cfg).max_in_flight)

    async def one(key: str) -> None:
        async with slots:
            if not stop.is_set():
                await replayer.replay_records(bucket, key)

    await asyncio.gather(*(one(key) for key in keys))


async def _install_templates(sink: OpenSearchSink, stop: asyncio.Event, attempts: int = 5) -> None:
    """Re-driven documents may create indices: the templates must be there first (OpenSearch may be starting)."""
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
            delay *= 2


async def replay(cfg: Config, opts: ReplayOptions, stop: asyncio.Event | None = None,
                 progress: TextIO | None = None) -> ReplayReport:
    """One replay with a sink, dead letters and pipeline built from `cfg`, as the worker builds them."""
    stop = stop or asyncio.Event()
    if opts.from_bucket:
        where = f"s3://{cfg.dead_letters.bucket}/{cfg.dead_letters.prefix}{opts.prefix}"
    else:
        where = replay_source_config(cfg).queue_url or cfg.dead_letters.replay_queue_url
    report = ReplayReport(where, opts.dry_run)
    printer = ProgressPrinter(report, progress)
    enricher = build_enricher(cfg.enrich)
    settings = ReplaySettings(max_attempts=opts.max_attempts, rate=opts.rate, dry_run=opts.dry_run)
    try:
        async with AwsClients(cfg.aws) as aws, DeadLetters(cfg.dead_letters, aws) as dead_letters:
            client = build_client(cfg.opensearch, cfg.aws.region)
            try:
                sink = OpenSearchSink(cfg.opensearch, dead_letters, client, source_indices=source_indices(cfg))
                if cfg.opensearch.install_templates and not opts.dry_run:
                    await _install_templates(sink, stop)
                async with sink:
                    pipeline = Pipeline(cfg.pipeline, sink, dead_letters, enricher)
                    replayer = Replayer(cfg, settings, aws, pipeline, dead_letters, existing_ids_for(sink),
                                        report.counts)
                    ticker = asyncio.create_task(printer.loop(), name="replay-progress")
                    try:
                        if opts.from_bucket:
                            await _from_bucket(cfg, opts, replayer, aws, report, stop)
                        else:
                            await _from_queue(cfg, replayer, aws, report, stop)
                    finally:
                        ticker.cancel()
                        await asyncio.gather(ticker, return_exceptions=True)
            finally:
                await client.close()
    finally:
        if enricher is not None:
            enricher.close()
    report.interrupted = stop.is_set()
    report.ended = time.monotonic()
    printer.finish()
    log.info("replay_finished", where=where, records=report.counts.records, indexed=report.counts.indexed,
             exists=report.counts.exists, failed_again=report.counts.failed_again,
             poisoned=report.counts.poisoned, errors=report.counts.errors)
    return report


def run_replay(cfg: Config, args: argparse.Namespace) -> int:
    """The `sluice replay` command: 0 all settled, 1 some failed, 2 bad arguments, 130 interrupted."""
    try:
        opts = options_from_args(args)
    except ReplayUsageError as exc:
        print(f"sluice replay: {exc}", file=sys.stderr)
        return EXIT_USAGE

    async def body(stop: asyncio.Event) -> int:
        return (await replay(cfg, opts, stop, sys.stderr)).exit_code

    return run_command("replay", cfg, body)
