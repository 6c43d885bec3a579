"""`type: kinesis` — a stream's shards shared by a fleet of workers through a lease table (docs/kinesis.md).

Three loops per worker and source, all in this event loop:
- renew (every third of `lease_duration`): bump the counter of each held lease; a lease whose renewal is
  refused, or that could not be renewed for a whole lease duration, is dropped and its reader abandoned at once;
- take (every quarter of `lease_duration`, so a dead worker's shards move within about 1.5 lease durations):
  list the shards now and then (new leases for new shards), then claim free or expired leases up to this
  worker's share (`ceil(leases / live workers)`), or, when none is free and the fleet is uneven, steal one
  lease from the most loaded worker (`plan_takes`);
- one reader per held lease (`ShardReader`). A shard becomes eligible only when every parent shard's lease
  is checkpointed at SHARD_END (or is gone), so records of one partition key are read in order across splits
  and merges.
On shutdown the readers get until the grace period's end to settle, checkpoint, and the leases are released,
so the rest of the fleet takes them over without waiting for them to expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import secrets
import socket
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from worker import telemetry as m
from worker.aws import AwsClients
from worker.config import KinesisSource
from worker.dead_letters import DeadLetters
from worker.pipeline import Pipeline
from worker.sources.kinesis_leases import ExpiryClock, Lease, LeaseLost, LeaseTable, plan_takes
from worker.sources.kinesis_reader import ShardReader
from worker.sources.kinesis_records import RecordIngester

log = m.get_logger("sluice.kinesis")

_AWS_ERRORS = (ClientError, BotoCoreError, OSError, asyncio.TimeoutError)


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class KinesisSourceRunner:
    """Holds this worker's leases of one stream and runs a reader per lease."""

    def __init__(self, name: str, cfg: KinesisSource, aws: AwsClients, pipeline: Pipeline,
                 dead_letters: DeadLetters) -> None:
        self.name = name
        self.cfg = cfg
        self.aws = aws
        self.pipeline = pipeline
        self.dead_letters = dead_letters
        self.worker_id = cfg.worker_id or default_worker_id()
        self.clock = ExpiryClock(cfg.lease_duration)
        self.readers: dict[str, ShardReader] = {}
        """By lease key: the leases this worker holds, each with its reader."""
        self._renewed_at: dict[str, float] = {}
        self._sync_due = 0.0
        self._table: LeaseTable | None = None
        self._kinesis: Any = None
        self._background: set[asyncio.Task[None]] = set()
        self.region = cfg.region or aws.cfg.region

    @property
    def table(self) -> LeaseTable:
        assert self._table is not None, "run() first"
        return self._table

    async def run(self, stop: asyncio.Event, drain_deadline: list[float]) -> None:
        async with contextlib.AsyncExitStack() as stack:
            stream_aws = self.aws
            if self.cfg.role_arn or (self.cfg.region and self.cfg.region != self.aws.cfg.region):
                # The stream may live in another account or region; the lease table stays in ours.
                cfg = self.aws.cfg.model_copy(update={"role_arn": self.cfg.role_arn or self.aws.cfg.role_arn,
                                                      "region": self.region})
                stream_aws = await stack.enter_async_context(AwsClients(cfg))
            self._kinesis = await stream_aws.client("kinesis")
            self._table = LeaseTable(await self.aws.client("dynamodb"), self.cfg.lease_table, self.cfg.stream_name)
            if not await self._until_done(self.table.ensure_table, stop):
                return
            log.info("kinesis_source_started", source=self.name, stream=self.cfg.stream_name,
                     worker_id=self.worker_id, lease_table=self.cfg.lease_table)
            renewer = asyncio.create_task(self._every(self.cfg.lease_duration / 3, self._renew_all, stop),
                                          name=f"{self.name}-renew")
            taker = asyncio.create_task(self._every(self.cfg.lease_duration / 4, self._take_round, stop),
                                        name=f"{self.name}-take")
            try:
                await stop.wait()
            finally:
                taker.cancel()
                await asyncio.gather(taker, return_exceptions=True)
                deadline = drain_deadline[0] if drain_deadline else None
                await self._shutdown(deadline)
                renewer.cancel()
                await asyncio.gather(renewer, return_exceptions=True)
                m.KINESIS_LEASES_HELD.labels(self.name).set(0)

    async def _until_done(self, call: Any, stop: asyncio.Event) -> bool:
        delay = 1.0
        while not stop.is_set():
            try:
                await call()
                return True
            except _AWS_ERRORS as exc:
                log.warning("kinesis_setup_failed", source=self.name, error=str(exc)[:300], retry_in=delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(30.0, delay * 2)
        return False

    async def _every(self, interval: float, step: Any, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                await step()
            except _AWS_ERRORS as exc:
                log.warning("kinesis_lease_round_failed", source=self.name, step=step.__name__, error=str(exc)[:300])
            except Exception:
                log.exception("kinesis_lease_round_crashed", source=self.name, step=step.__name__)
            await asyncio.sleep(max(0.05, interval * random.uniform(0.9, 1.1) - (time.monotonic() - started)))

    # --- renewing --------------------------------------------------------------------------------------

    async def _renew_all(self) -> None:
        await asyncio.gather(*(self._renew(reader) for reader in list(self.readers.values())))
        self._reap()

    async def _renew(self, reader: ShardReader) -> None:
        lease = reader.lease
        try:
            await self.table.renew(lease)
            self._renewed_at[lease.key] = time.monotonic()
        except LeaseLost:
            self.lost(lease.key)
        except _AWS_ERRORS as exc:
            # Not renewed for a whole lease duration: others may already have taken it; stop reading.
            if time.monotonic() - self._renewed_at.get(lease.key, 0.0) >= self.cfg.lease_duration:
                log.warning("kinesis_lease_expired_locally", source=self.name, shard=lease.shard_id,
                            error=str(exc)[:300])
                self.lost(lease.key)

    def lost(self, key: str) -> None:
        """The lease was taken from us (or expired): abandon its reader at once; its checkpoints would be refused."""
        reader = self.readers.pop(key, None)
        self._renewed_at.pop(key, None)
        if reader is None:
            return
        reader.abandon()
        m.KINESIS_LEASE_EVENTS.labels(self.name, "lost").inc()
        m.KINESIS_LEASES_HELD.labels(self.name).set(len(self.readers))
        log.warning("kinesis_lease_lost", source=self.name, shard=reader.shard_id, worker_id=self.worker_id)

    def _reap(self) -> None:
        """Readers that finished on their own: a shard read to its end frees its lease and calls for a shard
        listing (its children are new); a reader that crashed is restarted by the next take round."""
        for key, reader in list(self.readers.items()):
            if not reader.done or key not in self.readers:
                continue
            del self.readers[key]
            self._renewed_at.pop(key, None)
            m.KINESIS_LEASES_HELD.labels(self.name).set(len(self.readers))
            if reader.ended:
                self._sync_due = 0.0
            elif (exc := reader.exception()) is not None:
                log.error("kinesis_reader_crashed", source=self.name, shard=reader.shard_id, error=repr(exc)[:500])
            task = asyncio.create_task(self._release(reader.lease))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _release(self, lease: Lease) -> None:
        try:
            await self.table.release(lease)
            m.KINESIS_LEASE_EVENTS.labels(self.name, "released").inc()
        except (LeaseLost, *_AWS_ERRORS) as exc:
            log.info("kinesis_lease_release_failed", source=self.name, shard=lease.shard_id, error=str(exc)[:200])

    # --- taking ----------------------------------------------------------------------------------------

    async def _take_round(self) -> None:
        self._reap()
        leases = await self.table.list()
        now = time.monotonic()
        if now >= self._sync_due:
            if await self._sync_shards(leases):
                leases = await self.table.list()
            self._sync_due = now + self.cfg.shard_sync_interval
        now = time.monotonic()
        self.clock.observe(leases, now)
        plan = plan_takes(leases, set(self.readers), self.worker_id, lambda lease: self.clock.expired(lease, now))
        for lease in plan:
            taken = await self.table.take(lease, self.worker_id)
            if taken is None:
                continue
            event = "stolen" if lease.owner not in (None, self.worker_id) and not self.clock.expired(lease, now) \
                else "taken"
            m.KINESIS_LEASE_EVENTS.labels(self.name, event).inc()
            log.info("kinesis_lease_taken", source=self.name, shard=taken.shard_id, how=event,
                     previous_owner=lease.owner, checkpoint=taken.checkpoint)
            self._start_reader(taken)

    def _start_reader(self, lease: Lease) -> None:
        ingester = RecordIngester(self.name, self.cfg, lease.shard_id, self.region, self.pipeline,
                                  self.dead_letters)
        reader = ShardReader(self.name, self.cfg, lease, self._kinesis, self.table, ingester, self.lost)
        self.readers[lease.key] = reader
        self._renewed_at[lease.key] = time.monotonic()
        m.KINESIS_LEASES_HELD.labels(self.name).set(len(self.readers))
        reader.start()

    async def _sync_shards(self, leases: list[Lease]) -> bool:
        """Create leases for shards that have none; True if any was created.

        The first listing gives every shard the configured start position. Shards that appear later are
        children of a split or merge: they are read from their first record (TRIM_HORIZON), whatever the start
        position, or the records written to them before they were first read would be skipped.
        """
        shards = await self._list_shards()
        known = {lease.shard_id for lease in leases}
        first = not leases
        created = False
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id in known:
                continue
            parents = tuple(p for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p)
            position = self.cfg.initial_position if first or not parents else "TRIM_HORIZON"
            if await self.table.create(shard_id, parents, position):
                created = True
                log.info("kinesis_lease_created", source=self.name, shard=shard_id, parents=list(parents),
                         checkpoint=position)
        return created

    async def _list_shards(self) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        resp = await self._kinesis.list_shards(StreamName=self.cfg.stream_name)
        while True:
            shards.extend(resp.get("Shards", []))
            token = resp.get("NextToken")
            if not token:
                return shards
            resp = await self._kinesis.list_shards(NextToken=token)

    # --- stopping --------------------------------------------------------------------------------------

    async def _shutdown(self, deadline: float | None) -> None:
        readers = list(self.readers.values())
        await asyncio.gather(*(reader.stop(deadline) for reader in readers), return_exceptions=True)
        for reader in readers:
            if self.readers.pop(reader.lease.key, None) is not None:
                await self._release(reader.lease)
        log.info("kinesis_source_stopped", source=self.name, released=len(readers))


