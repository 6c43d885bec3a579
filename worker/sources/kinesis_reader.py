"""One shard, read while this worker holds its lease: GetRecords, the pipeline, and checkpoints after the sink.

The loop: get an iterator from the checkpoint (AFTER_SEQUENCE_NUMBER) or the start position, read a batch,
hand its records to the pipeline under one AckSet, and go on while fewer than `max_pending_batches` batches
are unsettled (a slow sink therefore slows the reads). Every `checkpoint_interval` the end of the settled
prefix (`ShardProgress`) is written to the lease, conditionally on still owning it. A failed batch rewinds the
reader to that prefix. At SHARD_END the reader waits for everything to settle and checkpoints `SHARD_END`,
which is what lets the shard's children be read.

Two ways to stop: `stop()` (shutdown) ends reading, gives pending batches until the deadline, checkpoints
what settled; `abandon()` (the lease is gone) cancels at once and writes nothing, since the shard is someone
else's now.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from worker import telemetry as m
from worker.config import KinesisSource
from worker.model import AckSet
from worker.sources.kinesis_checkpoints import ShardProgress
from worker.sources.kinesis_leases import SHARD_END, Lease, LeaseLost, LeaseTable
from worker.sources.kinesis_records import RecordIngester

log = m.get_logger("sluice.kinesis.reader")

MIN_READ_INTERVAL = 0.2
"""Kinesis allows five GetRecords calls a second per shard (shared by every consumer of the stream)."""
_THROTTLED = frozenset({"ProvisionedThroughputExceededException", "KMSThrottlingException", "LimitExceededException"})
_START_POSITIONS = frozenset({"TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"})


class ShardReader:
    """Reads one leased shard until it ends, the worker stops, or the lease is lost."""

    def __init__(self, source: str, cfg: KinesisSource, lease: Lease, kinesis: Any, table: LeaseTable,
                 ingester: RecordIngester, on_lost: Callable[[str], None]) -> None:
        self.source = source
        self.cfg = cfg
        self.lease = lease
        self.kinesis = kinesis
        self.table = table
        self.ingester = ingester
        self.on_lost = on_lost
        self.progress = ShardProgress()
        self.checkpointed = lease.checkpoint
        self.ended = False
        """The shard was read to its end and `SHARD_END` checkpointed."""
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._checkpointer: asyncio.Task[None] | None = None
        self._rewinds = 0

    @property
    def shard_id(self) -> str:
        return self.lease.shard_id

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"{self.source}-{self.shard_id}")
        self._checkpointer = asyncio.create_task(self._checkpoint_loop(), name=f"{self.source}-{self.shard_id}-cp")

    @property
    def done(self) -> bool:
        return self._task is not None and self._task.done()

    def exception(self) -> BaseException | None:
        """What a reader that finished on its own died of (None if it ended normally or was cancelled)."""
        if self._task is None or not self._task.done() or self._task.cancelled():
            return None
        return self._task.exception()

    async def wait(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def abandon(self) -> None:
        """The lease is lost: stop reading now, write nothing more."""
        for task in (self._task, self._checkpointer):
            if task is not None:
                task.cancel()
        m.forget(m.KINESIS_MILLIS_BEHIND, self.source, self.shard_id)

    async def stop(self, deadline: float | None) -> None:
        """Stop reading; give pending batches until `deadline` (monotonic); checkpoint the settled prefix."""
        self._stopping.set()
        task = self._task
        if task is not None and not task.done():
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if self._checkpointer is not None:
            self._checkpointer.cancel()
            await asyncio.gather(self._checkpointer, return_exceptions=True)
        if not self.ended:
            self.progress.advance()
            with contextlib.suppress(LeaseLost):
                await self._write_checkpoint()
        m.forget(m.KINESIS_MILLIS_BEHIND, self.source, self.shard_id)

    # --- reading ---------------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._read()
        except LeaseLost:
            self.on_lost(self.lease.key)

    async def _read(self) -> None:
        if self.lease.finished:
            self.ended = True
            return
        iterator = await self._iterator(self.lease.checkpoint)
        last_read: str | None = None
        last_call = 0.0
        while not self._stopping.is_set():
            await self._wait_for_room()
            if self._stopping.is_set():
                return
            if self.progress.failed:
                iterator = await self._rewind()
                last_read = None
                continue
            wait = MIN_READ_INTERVAL - (time.monotonic() - last_call)
            if wait > 0:
                await asyncio.sleep(wait)
            last_call = time.monotonic()
            try:
                resp = await self.kinesis.get_records(ShardIterator=iterator, Limit=self.cfg.max_records)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code == "ExpiredIteratorException":
                    m.KINESIS_READ_ERRORS.labels(self.source, "expired_iterator").inc()
                    iterator = await self._iterator(last_read or self.progress.settled or self.checkpointed)
                    continue
                reason = "throttled" if code in _THROTTLED else "error"
                await self._backoff(reason, str(exc))
                continue
            except (TimeoutError, BotoCoreError, OSError) as exc:
                await self._backoff("error", str(exc))
                continue
            self._errors = 0
            records = resp.get("Records") or []
            behind = resp.get("MillisBehindLatest")
            if behind is not None:
                m.KINESIS_MILLIS_BEHIND.labels(self.source, self.shard_id).set(behind)
            if records:
                await self._submit(records)
                last_read = records[-1]["SequenceNumber"]
            self.progress.advance()
            next_iterator = resp.get("NextShardIterator")
            if next_iterator is None:
                if await self._finish_shard():
                    return
                iterator = await self._rewind()
                last_read = None
                continue
            iterator = next_iterator
            if not records or behind == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.cfg.idle_interval)

    async def _submit(self, records: list[dict[str, Any]]) -> None:
        first, last = records[0]["SequenceNumber"], records[-1]["SequenceNumber"]
        ack = AckSet(f"{self.source}/{self.shard_id}/{first}-{last}")
        try:
            size = await self.ingester.ingest(records, ack)
        finally:
            ack.seal()
            self.progress.add(last, ack)
        m.KINESIS_RECORDS_READ.labels(self.source).inc(len(records))
        m.KINESIS_BYTES_READ.labels(self.source).inc(size)

    async def _wait_for_room(self) -> None:
        while self.progress.pending >= self.cfg.max_pending_batches and not self.progress.failed:
            oldest = asyncio.create_task(self.progress.wait_oldest())
            stopping = asyncio.create_task(self._stopping.wait())
            await asyncio.wait({oldest, stopping}, return_when=asyncio.FIRST_COMPLETED)
            for task in (oldest, stopping):
                task.cancel()
            self.progress.advance()
            if self._stopping.is_set():
                return

    async def _finish_shard(self) -> bool:
        """The shard is closed and read to its end: once everything settled, checkpoint SHARD_END."""
        await self.progress.wait_all()
        if self.progress.failed:
            return False
        while True:
            try:
                await self._write_checkpoint(SHARD_END)
                break
            except LeaseLost:
                raise
            except Exception as exc:  # the table is unreachable: the children wait until this is written
                await self._backoff("checkpoint", str(exc))
        self.ended = True
        log.info("kinesis_shard_ended", source=self.source, shard=self.shard_id)
        return True

    async def _rewind(self) -> str:
        """A batch failed (the sink gave up): read again from the end of the settled prefix, after a pause."""
        self._rewinds += 1
        position = self.progress.rewind() or self.checkpointed
        m.KINESIS_REWINDS.labels(self.source).inc()
        delay = min(30.0, 2.0 ** min(self._rewinds, 5)) * random.uniform(0.5, 1.0)
        log.warning("kinesis_shard_rewound", source=self.source, shard=self.shard_id, position=position,
                    retry_in=round(delay, 1))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)
        return await self._iterator(position)

    async def _iterator(self, position: str) -> str:
        """An iterator just after `position` (a sequence number) or at a start position; retried until it works."""
        kwargs: dict[str, Any] = {"StreamName": self.cfg.stream_name, "ShardId": self.shard_id}
        if position in _START_POSITIONS:
            kwargs["ShardIteratorType"] = position
            if position == "AT_TIMESTAMP":
                kwargs["Timestamp"] = self.cfg.initial_timestamp
        else:
            kwargs["ShardIteratorType"] = "AFTER_SEQUENCE_NUMBER"
            kwargs["StartingSequenceNumber"] = position
        while True:
            try:
                resp = await self.kinesis.get_shard_iterator(**kwargs)
                self._errors = 0
                return str(resp["ShardIterator"])
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                await self._backoff("throttled" if code in _THROTTLED else "error", str(exc))
            except (TimeoutError, BotoCoreError, OSError) as exc:
                await self._backoff("error", str(exc))

    _errors = 0

    async def _backoff(self, reason: str, detail: str) -> None:
        self._errors += 1
        m.KINESIS_READ_ERRORS.labels(self.source, reason).inc()
        delay = min(10.0, 0.25 * 2 ** min(self._errors, 6)) * random.uniform(0.5, 1.0)
        log.warning("kinesis_read_failed", source=self.source, shard=self.shard_id, reason=reason,
                    error=detail[:300], retry_in=round(delay, 2))
        await asyncio.sleep(delay)

    # --- checkpoints -----------------------------------------------------------------------------------

    async def _checkpoint_loop(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.checkpoint_interval)
            self.progress.advance()
            try:
                await self._write_checkpoint()
            except LeaseLost:
                self.on_lost(self.lease.key)
                return

    async def _write_checkpoint(self, position: str | None = None) -> None:
        """Write `position` (default: the settled prefix) if it moved. LeaseLost propagates; other errors are
        counted and left for the next interval (the position is kept, nothing is lost by writing it later)."""
        position = position or self.progress.settled
        if position is None or position == self.checkpointed:
            return
        try:
            await self.table.checkpoint(self.lease, position)
        except LeaseLost:
            m.KINESIS_CHECKPOINTS.labels(self.source, "refused").inc()
            log.warning("kinesis_checkpoint_refused", source=self.source, shard=self.shard_id, position=position)
            raise
        except (TimeoutError, ClientError, BotoCoreError, OSError) as exc:
            m.KINESIS_CHECKPOINTS.labels(self.source, "failed").inc()
            log.warning("kinesis_checkpoint_failed", source=self.source, shard=self.shard_id, error=str(exc)[:300])
            if position == SHARD_END:
                raise
            return
        m.KINESIS_CHECKPOINTS.labels(self.source, "written").inc()
        self.checkpointed = position
