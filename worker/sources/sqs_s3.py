"""`type: sqs_s3` — S3 ObjectCreated notifications on SQS; each object streamed through the pipeline.

Failure rules (DESIGN.md): a bad object (corrupt compression, unknown format) is copied to the backup
bucket and the message still acknowledged; an infrastructure failure (S3 errors, the sink giving up) fails
the message, which SQS redelivers; a body that is not an S3 notification is dead-lettered as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC
from typing import Any

from botocore.exceptions import ClientError

from worker import telemetry as m
from worker.aws import AwsClients
from worker.config import PipelineConfig, SqsS3Source
from worker.dead_letters import DeadLetters
from worker.decoding import DecodeError, FramingError
from worker.model import AckSet, DeadLetter, Origin
from worker.parsers import ParseContext
from worker.pipeline import Pipeline, UnknownLogType
from worker.routing import route_s3_key
from worker.sources.s3_events import NotificationError, ObjectRef, parse_notification
from worker.sources.sqs_consumer import SqsConsumer, SqsMessage

log = m.get_logger("sluice.sqs_s3")


class ObjectMissing(Exception):
    """The notified object no longer exists (deleted or overwritten before we read it)."""


class SqsS3SourceRunner:
    def __init__(self, name: str, cfg: SqsS3Source, aws: AwsClients, pipeline: Pipeline,
                 dead_letters: DeadLetters, pipeline_cfg: PipelineConfig) -> None:
        self.name = name
        self.cfg = cfg
        self.aws = aws
        self.pipeline = pipeline
        self.dead_letters = dead_letters
        self.chunk_size = pipeline_cfg.read_chunk_bytes
        self.consumer: SqsConsumer | None = None

    async def run(self, stop: asyncio.Event, drain_deadline: list[float]) -> None:
        sqs = await self.aws.client("sqs")
        self.consumer = SqsConsumer(
            sqs, self.cfg.queue_url, self.name, self.handle, max_in_flight=self.cfg.max_in_flight,
            wait_time=self.cfg.wait_time, visibility_timeout=self.cfg.visibility_timeout,
            retry_visibility=self.cfg.retry_visibility,
        )
        self.consumer.deadline = lambda: drain_deadline[0] if drain_deadline else None
        await self.consumer.run(stop)

    async def handle(self, msg: SqsMessage) -> bool:
        """Process one message; True when every document from it is settled and it may be deleted."""
        ack = AckSet(f"{self.name}/{msg.id}")
        try:
            note = parse_notification(msg.body)
        except NotificationError as exc:
            await self.dead_letters.add(DeadLetter(
                "bad_notification", str(exc), Origin(self.name, "sqs", key=msg.id), raw=msg.body[:1 << 20]
            ), _counted(ack))
            ack.seal()
            return await ack.wait()
        if note.test_event:
            log.info("s3_test_event_skipped", source=self.name, message_id=msg.id)
        for ref in note.objects:
            if ack.failed:
                break
            await self._ingest_object(ref, ack)
        ack.seal()
        ok = await ack.wait()
        if not ok:
            log.warning("sqs_message_failed", source=self.name, message_id=msg.id, reason=ack.failure,
                        receive_count=msg.receive_count)
        return ok

    async def _ingest_object(self, ref: ObjectRef, ack: AckSet) -> None:
        route = route_s3_key(ref.key, self.cfg.log_type)
        origin = Origin(self.name, "s3", ref.bucket, ref.key, ref.version_tag, ref.size)
        if route.skip:
            m.S3_OBJECTS_SKIPPED.labels(self.name, route.skip).inc()
            log.info("s3_object_skipped", source=self.name, reason=route.skip, uri=origin.uri)
            return
        ctx = ParseContext(bucket=ref.bucket, key=ref.key, account_id=route.account_id, region=route.region,
                           keep_original=self.cfg.keep_original, options=self.cfg.parser_options)
        try:
            resp, key = await self._open(ref)
            if key != ref.key:
                origin = Origin(self.name, "s3", ref.bucket, key, ref.version_tag, ref.size)
            body = resp["Body"]
            modified = resp.get("LastModified")
            fallback = modified.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z") if modified else None
            try:
                stats = await self.pipeline.ingest(_chunks(body, self.chunk_size), origin, route.log_type, ctx, ack,
                                                   fallback, self.cfg.fallback_log_type)
            finally:
                body.close()
        except ObjectMissing as exc:
            ack.add(1)
            await self.dead_letters.add(DeadLetter("object_missing", str(exc), origin, route.log_type or ""), ack)
            return
        except UnknownLogType as exc:
            log.warning("s3_object_unknown_log_type", source=self.name, uri=origin.uri, head=exc.head[:200])
            await self.dead_letters.copy_object(ref.bucket, ref.key, ref.version_tag, "unknown_log_type", str(exc),
                                                self.name, ack)
            return
        except (DecodeError, FramingError) as exc:
            log.warning("s3_object_undecodable", source=self.name, uri=origin.uri, error=str(exc))
            await self.dead_letters.copy_object(ref.bucket, ref.key, ref.version_tag, "decode_error", str(exc),
                                                self.name, ack)
            return
        except Exception as exc:  # S3 or network trouble: the unit is redelivered, never acknowledged
            log.warning("s3_object_read_failed", source=self.name, uri=origin.uri, error=str(exc),
                        error_type=type(exc).__name__)
            ack.fail(f"reading {origin.uri}: {exc}")
            return
        m.S3_OBJECTS_READ.labels(self.name, stats.log_type).inc()
        m.S3_BYTES_READ.labels(self.name).inc(stats.bytes_in)
        m.DECOMPRESSED_BYTES.labels(self.name).inc(stats.bytes_out)
        log.info("s3_object_read", source=self.name, uri=origin.uri, log_type=stats.log_type,
                 bytes=stats.bytes_in, decompressed=stats.bytes_out, documents=stats.documents,
                 failures=stats.failures)

    async def _open(self, ref: ObjectRef) -> tuple[Any, str]:
        s3 = await self.aws.client("s3")
        keys = [ref.key] + ([ref.alt_key] if ref.alt_key else [])
        for key in keys:
            kwargs: dict[str, Any] = {"Bucket": ref.bucket, "Key": key}
            if ref.version:
                kwargs["VersionId"] = ref.version
            try:
                resp = await s3.get_object(**kwargs)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "NoSuchVersion", "404"):
                    continue
                raise
            return resp, key
        raise ObjectMissing(f"s3://{ref.bucket}/{ref.key} does not exist (deleted before it was read?)")


def _counted(ack: AckSet) -> AckSet:
    ack.add(1)
    return ack


async def _chunks(body: Any, size: int) -> AsyncIterator[bytes]:
    while True:
        chunk = await body.read(size)
        if not chunk:
            return
        yield chunk
