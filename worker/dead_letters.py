"""Dead letters: what cannot be delivered for a reason of its own is kept, never dropped.

A dead letter is durable only when both its NDJSON.gz object is in the backup bucket and a pointer message is
on the replay queue; only then is the record settled as DEAD_LETTERED, which lets its unit be acknowledged.
If the backup bucket or the replay queue fails, the records settle as RETRY: the unit is redelivered rather
than acknowledged with data nowhere. Undecodable objects are copied server-side (no bytes through the
worker, whatever their size).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from typing import Any
from urllib.parse import quote

import orjson
from isal import igzip
from tenacity import AsyncRetrying, stop_after_delay, wait_exponential_jitter

from worker import telemetry as m
from worker.aws import AwsClients
from worker.config import DeadLetterConfig
from worker.model import AckSet, DeadLetter, Outcome

log = m.get_logger("sluice.dead_letters")

POINTER_TYPE = "sluice.dead_letters"


class DeadLetters:
    """Buffers dead letters from every unit into shared NDJSON.gz objects, flushed by size or every second."""

    def __init__(self, cfg: DeadLetterConfig, aws: AwsClients, flush_interval: float = 1.0,
                 retry_seconds: float | None = None) -> None:
        self.cfg = cfg
        self.aws = aws
        self.flush_interval = flush_interval
        self.retry_seconds = cfg.retry_seconds if retry_seconds is None else retry_seconds
        self._lines: list[bytes] = []
        self._acks: list[AckSet] = []
        self._reasons: Counter[str] = Counter()
        self._bytes = 0
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> DeadLetters:
        self._task = asyncio.create_task(self._flush_loop(), name="dead-letter-flusher")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()

    def add_nowait(self, dl: DeadLetter, ack: AckSet) -> None:
        """Buffer a dead letter whose record is already counted as pending in `ack`; it is settled later."""
        line = orjson.dumps(dl.as_record(), default=str) + b"\n"
        self._lines.append(line)
        self._acks.append(ack)
        self._reasons[dl.reason] += 1
        self._bytes += len(line)
        m.DOCUMENTS_DEAD_LETTERED.labels(dl.origin.source, dl.log_type or "unknown", dl.reason).inc()
        log.warning("record_dead_lettered", reason=dl.reason, detail=dl.detail[:500], log_type=dl.log_type,
                    origin=dl.origin.uri, offset=dl.offset)

    async def add(self, dl: DeadLetter, ack: AckSet) -> None:
        """As `add_nowait`, but flushes first when the buffer is full, so memory stays bounded."""
        self.add_nowait(dl, ack)
        if self._bytes >= self.cfg.max_object_bytes:
            await self.flush()

    async def flush(self) -> None:
        async with self._lock:
            if not self._lines:
                return
            lines, acks, reasons = self._lines, self._acks, self._reasons
            self._lines, self._acks, self._reasons, self._bytes = [], [], Counter(), 0
            try:
                ok = await self._write(lines, reasons)
            except Exception as exc:  # whatever failed, these records are not durable: their units retry
                log.exception("dead_letter_write_failed", kind="records", records=len(lines), error=str(exc))
                ok = False
            outcome = Outcome.DEAD_LETTERED if ok else Outcome.RETRY
            for ack in acks:
                ack.settle(outcome)

    async def copy_object(self, bucket: str, key: str, version: str, reason: str, detail: str,
                          source: str, ack: AckSet) -> None:
        """Keep a whole object that cannot be read (corrupt, unknown format) in the backup bucket."""
        ack.add(1)
        dest = f"{self.cfg.prefix}objects/{time.strftime('%Y/%m/%d', time.gmtime())}/{bucket}/{key}"
        copy_source: dict[str, str] = {"Bucket": bucket, "Key": key}
        if version and not version.startswith("etag:"):
            copy_source["VersionId"] = version
        s3 = await self.aws.client("s3")
        sqs = await self.aws.client("sqs")
        pointer = {
            "type": POINTER_TYPE, "kind": "object", "bucket": self.cfg.bucket, "key": dest,
            "reason": reason, "detail": detail[:2000], "source": source,
            "origin": {"bucket": bucket, "key": key, "version": version},
        }
        try:
            async for attempt in self._retrying():
                with attempt:
                    await s3.copy_object(
                        Bucket=self.cfg.bucket, Key=dest, CopySource=copy_source,
                        Metadata={"sluice-reason": quote(reason), "sluice-detail": quote(detail[:1000])},
                        MetadataDirective="REPLACE",
                    )
                    await sqs.send_message(QueueUrl=self.cfg.replay_queue_url,
                                           MessageBody=orjson.dumps(pointer).decode())
        except Exception as exc:
            log.error("dead_letter_write_failed", kind="object", error=str(exc), origin=f"s3://{bucket}/{key}")
            ack.settle(Outcome.RETRY)
            return
        m.DEAD_LETTER_OBJECTS.labels("object_copy").inc()
        m.DOCUMENTS_DEAD_LETTERED.labels(source, "unknown", reason).inc()
        log.warning("object_dead_lettered", reason=reason, detail=detail[:500], origin=f"s3://{bucket}/{key}",
                    backup=f"s3://{self.cfg.bucket}/{dest}")
        ack.settle(Outcome.DEAD_LETTERED)

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(stop=stop_after_delay(self.retry_seconds),
                             wait=wait_exponential_jitter(multiplier=0.5, max=10, jitter=0.5), reraise=True)

    async def _write(self, lines: list[bytes], reasons: Counter[str]) -> bool:
        key = f"{self.cfg.prefix}{time.strftime('%Y/%m/%d/%H', time.gmtime())}/{uuid.uuid4().hex}.ndjson.gz"
        body = igzip.compress(b"".join(lines), compresslevel=2)  # isal levels are 0-3
        pointer: dict[str, Any] = {
            "type": POINTER_TYPE, "kind": "records", "bucket": self.cfg.bucket, "key": key,
            "records": len(lines), "reasons": dict(reasons),
        }
        try:
            s3 = await self.aws.client("s3")
            sqs = await self.aws.client("sqs")
            async for attempt in self._retrying():
                with attempt:
                    await s3.put_object(Bucket=self.cfg.bucket, Key=key, Body=body,
                                        ContentType="application/x-ndjson", ContentEncoding="gzip")
                    await sqs.send_message(QueueUrl=self.cfg.replay_queue_url,
                                           MessageBody=orjson.dumps(pointer).decode())
        except Exception as exc:
            log.error("dead_letter_write_failed", kind="records", records=len(lines), error=str(exc))
            return False
        m.DEAD_LETTER_OBJECTS.labels("records").inc()
        log.info("dead_letters_written", bucket=self.cfg.bucket, key=key, records=len(lines),
                 reasons=dict(reasons))
        return True

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            try:
                await self.flush()
            except Exception as exc:  # never let the flusher die: the next tick tries again
                log.exception("dead_letter_flush_crashed", error=str(exc))
