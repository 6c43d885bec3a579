"""Replaying `object` pointers: whole objects kept in the backup bucket (unknown format, undecodable, a line
too long), re-ingested through `ObjectIngester.ingest_copy` under the ORIGINAL origin (bucket, key, version
tag), so their documents get the ids they would have had and a second replay adds nothing.

A copy that fails again is not copied again: a new pointer to the same copy carries the attempt count, and
after `max_attempts` the copy is parked under `poison/objects/`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from worker import telemetry as m
from worker.aws import AwsClients
from worker.config import Config
from worker.decoding import DecodeError, FramingError
from worker.model import AckSet, Outcome
from worker.pipeline import UnknownLogType
from worker.replay.counts import ReplayCounts
from worker.replay.originals import Originals
from worker.replay.plan import Action, attempts_of, line_still_too_long, origin_of
from worker.replay.poison import PoisonWriter, retrying
from worker.sources.s3_objects import KeptCopy, ObjectMissing

log = m.get_logger("sluice.replay")


class ObjectReplay:
    """Re-drives one `object` pointer at a time; counts into the replay's `ReplayCounts`."""

    def __init__(self, config: Config, aws: AwsClients, originals: Originals, poison: PoisonWriter,
                 counts: ReplayCounts, *, max_attempts: int, dry_run: bool, name: str) -> None:
        self.config = config
        self.aws = aws
        self.originals = originals
        self.poison = poison
        self.counts = counts
        self.max_attempts = max_attempts
        self.dry_run = dry_run
        self.name = name

    async def replay(self, pointer: Mapping[str, Any]) -> bool:
        """Ingest a whole object kept in the backup bucket under its original origin; True when settled."""
        attempts = attempts_of(pointer)
        where = f"s3://{pointer['bucket']}/{pointer['key']}"
        self.counts.records += 1
        self.counts.pointers += 1
        exhausted = attempts >= self.max_attempts
        if self.dry_run:
            action = Action.PARK.value if exhausted else "re-ingest"
            self.counts.dry_run[(str(pointer.get("reason") or "object"), "object", action)] += 1
            m.REPLAYED.labels("dry_run").inc()
            return False
        if exhausted:
            try:
                key = await self.poison.park_object(pointer, f"failed {attempts} replay(s); max_attempts is "
                                                             f"{self.max_attempts}")
            except Exception as exc:
                self.counts.fail(f"{where}: parking under poison/ failed: {exc}")
                return False
            self.counts.poison_keys.append(key)
            self.counts.count("poisoned")
            return True
        if line_still_too_long(pointer, self.config.pipeline.max_line_bytes):
            ack = AckSet(f"{self.name}:{where}")
            await self._send_pointer(pointer, attempts + 1, "oversize_line", str(pointer.get("detail")), ack)
            ack.seal()
            if not await ack.wait():
                self.counts.fail(f"{where}: {ack.failure}")
                return False
            self.counts.count("failed_again")
            return True
        return await self._ingest(pointer, attempts, where)

    async def _ingest(self, pointer: Mapping[str, Any], attempts: int, where: str) -> bool:
        found = pointer.get("origin")
        original: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        origin = origin_of({"source": str(pointer.get("source") or ""), "kind": "s3", **original}, attempts + 1)
        ingester = self.originals.ingester(origin.source)
        route = ingester.route(origin.key)
        if route.skip:
            log.info("replay_object_skipped", uri=where, reason=route.skip)
            self.counts.count("skipped")
            return True
        ack = AckSet(f"{self.name}:{where}")
        failed_again = False
        try:
            stats = await ingester.ingest_copy(origin, KeptCopy(str(pointer["bucket"]), str(pointer["key"])), ack,
                                               await self.originals.last_modified(origin))
            self.counts.documents += stats.documents
        except ObjectMissing:
            log.error("replay_object_missing", uri=where)
            self.counts.missing.append(where)
            return True
        except (UnknownLogType, DecodeError, FramingError) as exc:
            failed_again = True
            reason = "unknown_log_type" if isinstance(exc, UnknownLogType) else "decode_error"
            await self._send_pointer(pointer, attempts + 1, reason, str(exc), ack)
        except Exception as exc:  # S3 trouble: the pointer stays and is replayed later
            ack.fail(f"reading {where}: {exc}")
        ack.seal()
        if not await ack.wait():
            self.counts.fail(f"{where}: {ack.failure}")
            return False
        self.counts.count("failed_again" if failed_again else "indexed")
        log.info("replay_object_ingested", uri=where, origin=origin.uri, failed_again=failed_again)
        return True

    async def _send_pointer(self, pointer: Mapping[str, Any], attempts: int, reason: str, detail: str,
                            ack: AckSet) -> None:
        """The object failed again: a new pointer to the same copy, with the attempt count (no second copy)."""
        ack.add(1)
        again = {**pointer, "reason": reason, "detail": detail[:2000], "attempts": attempts}
        try:
            sqs = await self.aws.client("sqs")
            async for attempt in retrying():
                with attempt:
                    await sqs.send_message(QueueUrl=self.config.dead_letters.replay_queue_url,
                                           MessageBody=orjson.dumps(again).decode())
        except Exception as exc:
            log.error("replay_pointer_write_failed", key=pointer.get("key"), error=str(exc)[:300])
            ack.settle(Outcome.RETRY)
            return
        m.DOCUMENTS_DEAD_LETTERED.labels(str(pointer.get("source") or ""), "unknown", reason).inc()
        ack.settle(Outcome.DEAD_LETTERED)
