"""The replay engine, shared by `sluice replay` and the `type: replay` source: pointer messages and
dead-letter objects in, documents re-submitted or re-parsed, what cannot be helped parked under `poison/`.

What each record becomes is decided by `plan.plan_record`; whole-object pointers go to `objects.ObjectReplay`.

Acknowledgement: a pointer message is deleted only when every record it names is indexed, already there,
durably dead-lettered again, or parked: each record has its own AckSet, and the pointer waits for all of them.
Before submitting, replay asks OpenSearch which ids are already there (`existing.ExistingIds`), which is how it
tells "re-indexed" from "already there" (the sink settles both as delivered) and how a second replay adds nothing.
"""

from __future__ import annotations

import asyncio
import gzip
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from worker import telemetry as m
from worker.aws import AwsClients
from worker.config import Config
from worker.dead_letters import DeadLetters
from worker.model import AckSet, Document, Outcome, timestamp_of
from worker.pipeline import Pipeline
from worker.replay.counts import ReplayCounts
from worker.replay.existing import SLICE, ExistingIds
from worker.replay.objects import ObjectReplay
from worker.replay.originals import Originals
from worker.replay.plan import Action, attempts_of, decode_lines, origin_of, parse_pointer, plan_record
from worker.replay.poison import PoisonWriter
from worker.replay.rate import RateLimitedSink, TokenBucket
from worker.replay.reparse import Reparser
from worker.setup import source_indices
from worker.sinks.opensearch import IndexNamer

log = m.get_logger("sluice.replay")


@dataclass(frozen=True, slots=True)
class ReplaySettings:
    max_attempts: int = 3
    rate: float = 0.0
    dry_run: bool = False


@dataclass(slots=True)
class _Tracked:
    """One record being re-driven: its AckSet, and how many of its documents were new or already there."""

    ack: AckSet
    new: int = 0
    existing: int = 0


class Replayer:
    """Re-drives dead-letter objects and object pointers into a pipeline; shared by the source and the command."""

    def __init__(self, config: Config, settings: ReplaySettings, aws: AwsClients, pipeline: Pipeline,
                 dead_letters: DeadLetters, existing: ExistingIds | None, counts: ReplayCounts | None = None,
                 name: str = "replay") -> None:
        self.config = config
        self.settings = settings
        self.aws = aws
        self.dead_letters = dead_letters
        self.existing = existing
        self.counts = counts or ReplayCounts()
        self.name = name
        self.index_for = IndexNamer(config.opensearch.index, config.opensearch.lifecycle.mode, source_indices(config))
        # Replayed documents go through their own Pipeline in front of the shared sink, only to pass the rate
        # limit: ids, enrichment and dead letters are those of live ingestion.
        self.pipeline = Pipeline(config.pipeline, RateLimitedSink(pipeline.sink, TokenBucket(settings.rate)),
                                 dead_letters)
        self.pipeline.enrich = pipeline.enrich
        self.poison = PoisonWriter(config, aws)
        originals = Originals(config, aws, self.pipeline, dead_letters)
        self.reparser = Reparser(originals, dead_letters, self.pipeline.enrich)
        self.objects = ObjectReplay(config, aws, originals, self.poison, self.counts,
                                    max_attempts=settings.max_attempts, dry_run=settings.dry_run, name=name)

    # --- entry points ---

    async def replay_pointer(self, body: str) -> bool:
        """Re-drive what one pointer message names; True when the message may be deleted."""
        try:
            pointer = parse_pointer(body)
        except ValueError as exc:
            return await self._park_bad_pointer(body, str(exc))
        if pointer["kind"] == "records":
            announced = pointer.get("records")
            return await self.replay_records(pointer["bucket"], pointer["key"],
                                             announced if isinstance(announced, int) else None)
        return await self.replay_object(pointer)

    async def replay_records(self, bucket: str, key: str, announced: int | None = None) -> bool:
        """Re-drive every record of one NDJSON.gz dead-letter object; True when each is settled for good."""
        where = f"s3://{bucket}/{key}"
        if announced:
            self.counts.records += announced
        try:
            lines = await self._read_lines(bucket, key)
        except _Missing:
            log.error("replay_object_missing", uri=where, note="the pointer names an object that is gone")
            self.counts.missing.append(where)
            self.counts.records -= announced or 0
            return not self.settings.dry_run
        except Exception as exc:
            log.warning("replay_read_failed", uri=where, error=str(exc)[:300])
            self.counts.records -= announced or 0
            self.counts.fail(f"{where}: {exc}")
            return False
        self.counts.pointers += 1
        self.counts.records += len(lines) - (announced or 0)
        tracked: list[_Tracked] = []
        parked_ok = True
        for start in range(0, len(lines), SLICE):
            records, bad = decode_lines(lines[start:start + SLICE], where)
            if self.settings.dry_run:
                self._count_dry_run(records, bad)
                continue
            more, ok = await self._redrive(records, bad, where)
            tracked += more
            parked_ok = parked_ok and ok
        if self.settings.dry_run:
            return False
        all_ok = await self._settle(tracked, where) and parked_ok
        log.info("replay_object_done", uri=where, records=len(lines), ok=all_ok)
        return all_ok

    async def replay_object(self, pointer: Mapping[str, Any]) -> bool:
        """Ingest a whole object kept in the backup bucket under its original origin."""
        return await self.objects.replay(pointer)

    # --- records ---

    async def _redrive(self, records: list[dict[str, Any]], bad: list[dict[str, Any]],
                       where: str) -> tuple[list[_Tracked], bool]:
        """Submit or re-parse one slice; returns the tracked records and whether parking went well."""
        tracked: list[_Tracked] = []
        parked: list[dict[str, Any]] = list(bad)
        pending: list[tuple[_Tracked, Document]] = []
        for rec in records:
            plan = plan_record(rec, self.settings.max_attempts)
            if plan.action is Action.PARK:
                parked.append({**rec, "attempts": attempts_of(rec), "parked": plan.why})
                continue
            if plan.action is Action.LEAVE:
                self.counts.count("skipped")
                continue
            attempts = attempts_of(rec) + 1
            origin = origin_of(rec["origin"], attempts)
            t = _Tracked(AckSet(f"{self.name}:{where}#{len(tracked)}"))
            tracked.append(t)
            if plan.action is Action.RESUBMIT:
                offset = rec.get("offset")
                pending.append((t, Document(rec["id"], rec["log_type"], rec["document"], t.ack, origin,
                                            offset if isinstance(offset, int) else 0)))
            else:
                pending += [(t, doc) for doc in await self.reparser.documents(rec, origin, attempts, t.ack)]
        await self._submit_missing(pending)
        for t in tracked:
            t.ack.seal()
        return tracked, await self._park_records(parked, where)

    async def _submit_missing(self, pending: list[tuple[_Tracked, Document]]) -> None:
        """Submit the documents OpenSearch does not hold yet; count the others as already there."""
        if not pending:
            return
        keys = [(self.index_for(doc.log_type, timestamp_of(doc.body), doc.origin.source), doc.id)
                for _, doc in pending]
        found = await self.existing.find(keys) if self.existing is not None else set()
        submit: list[Document] = []
        for key, (t, doc) in zip(keys, pending, strict=True):
            if key in found:
                t.existing += 1
                continue
            t.new += 1
            t.ack.add(1)
            submit.append(doc)
        await self.pipeline.sink.submit(submit)

    async def _settle(self, tracked: list[_Tracked], where: str) -> bool:
        results = await asyncio.gather(*(t.ack.wait() for t in tracked))
        all_ok = True
        for t, ok in zip(tracked, results, strict=True):
            if not ok:
                all_ok = False
                self.counts.fail(f"{where}: {t.ack.failure}")
            elif t.ack.counts[Outcome.DEAD_LETTERED]:
                self.counts.count("failed_again")
            elif t.new:
                self.counts.count("indexed")
            elif t.existing:
                self.counts.count("exists")
            else:
                self.counts.count("skipped")
        return all_ok

    async def _park_records(self, parked: list[dict[str, Any]], where: str) -> bool:
        if not parked:
            return True
        try:
            key = await self.poison.write_records(parked)
        except Exception as exc:
            log.error("replay_poison_write_failed", uri=where, records=len(parked), error=str(exc)[:300])
            self.counts.fail(f"{where}: parking {len(parked)} record(s) under poison/ failed: {exc}", len(parked))
            return False
        self.counts.poison_keys.append(key)
        self.counts.count("poisoned", len(parked))
        log.warning("replay_records_parked", uri=where, records=len(parked), poison=key,
                    reasons=dict(Counter(str(r.get("parked", "")) for r in parked)))
        return True

    async def _park_bad_pointer(self, body: str, why: str) -> bool:
        self.counts.records += 1
        if self.settings.dry_run:
            self.counts.dry_run[("bad_pointer", "", Action.PARK.value)] += 1
            m.REPLAYED.labels("dry_run").inc()
            return False
        return await self._park_records([{"reason": "bad_pointer", "detail": why, "raw": body[:1 << 20]}],
                                        "the replay queue")

    def _count_dry_run(self, records: list[dict[str, Any]], bad: list[dict[str, Any]]) -> None:
        for rec in records:
            plan = plan_record(rec, self.settings.max_attempts)
            key = (str(rec.get("reason") or ""), str(rec.get("log_type") or ""), plan.action.value)
            self.counts.dry_run[key] += 1
        for _ in bad:
            self.counts.dry_run[("bad_record", "", Action.PARK.value)] += 1
        m.REPLAYED.labels("dry_run").inc(len(records) + len(bad))

    async def _read_lines(self, bucket: str, key: str) -> list[bytes]:
        s3 = await self.aws.client("s3")
        try:
            resp = await s3.get_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                raise _Missing(key) from None
            raise
        body = resp["Body"]
        try:
            data: bytes = await body.read()
        finally:
            body.close()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        return [line for line in data.splitlines() if line.strip()]


class _Missing(Exception):
    """The dead-letter object a pointer names is gone."""
