"""`type: sqs_s3` — S3 ObjectCreated notifications on SQS; each object streamed through the pipeline.

Failure rules (docs/architecture.md; applied per object by `s3_objects.ObjectIngester`): a bad object
(corrupt compression, unknown format) is copied to the backup bucket and the message still acknowledged; an
infrastructure failure (S3 errors, the sink giving up) fails the message, which SQS redelivers; a body that is
not an S3 notification is dead-lettered as it is.
"""

from __future__ import annotations

import asyncio

from worker import telemetry as m
from worker.aws import AwsClients
from worker.config import KinesisSource, PipelineConfig, SqsS3Source
from worker.dead_letters import DeadLetters
from worker.model import AckSet, DeadLetter, Origin
from worker.pipeline import Pipeline
from worker.sources.s3_events import NotificationError, parse_notification
from worker.sources.s3_objects import ObjectIngester, ObjectSettings
from worker.sources.sqs_consumer import SqsConsumer, SqsMessage, message_settled

log = m.get_logger("sluice.sqs_s3")


class SqsS3SourceRunner:
    """Receives notifications and acknowledges each message once every object it names is settled; the
    objects themselves go through `ObjectIngester`, shared with `sluice backfill`."""

    def __init__(self, name: str, cfg: SqsS3Source, aws: AwsClients, pipeline: Pipeline,
                 dead_letters: DeadLetters, pipeline_cfg: PipelineConfig) -> None:
        self.name = name
        self.cfg = cfg
        self.aws = aws
        self.pipeline = pipeline
        self.dead_letters = dead_letters
        self.objects = ObjectIngester(name, settings_of(cfg, pipeline_cfg), aws, pipeline, dead_letters)
        self.consumer: SqsConsumer | None = None

    async def run(self, stop: asyncio.Event, drain_deadline: list[float]) -> None:
        sqs = await self.aws.client("sqs")
        # The S3 client too, now rather than on the first object: creating one loads its service model and
        # endpoint rules (~0.1 s of CPU), which would otherwise fall on the first notification's latency.
        await self.aws.client("s3")
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
            await self.objects.ingest(ref, ack)
        return await message_settled(self.name, msg, ack)

def settings_of(cfg: SqsS3Source | KinesisSource, pipeline_cfg: PipelineConfig) -> ObjectSettings:
    """The per-object part of a source's config (also what `sluice backfill` reads objects with, and what
    `sluice replay` parses a source's dead-lettered records with)."""
    return ObjectSettings(log_type=cfg.log_type, keep_original=cfg.keep_original, parser_options=cfg.parser_options,
                          fallback_log_type=cfg.fallback_log_type, chunk_size=pipeline_cfg.read_chunk_bytes,
                          processing=cfg.processing)


def _counted(ack: AckSet) -> AckSet:
    ack.add(1)
    return ack

