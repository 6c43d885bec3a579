"""`type: sqs` — log lines carried in SQS message bodies, one or more lines per message.

A body is text: the lines themselves, or base64 of compressed (gzip, zstd, bzip2) or plain bytes, as producers
that must fit binary into SQS send it. Which one is told from the body itself (`decode_body`), never from a
setting, so one queue can carry both. Each message is a unit: its documents get ids from the message id and
the line's offset, and the message is deleted only once every document is indexed or dead-lettered (the rules
of `SqsConsumer`). A body that cannot be decoded or whose format no parser knows is dead-lettered whole.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re

from worker.aws import AwsClients
from worker.config import SqsSource
from worker.dead_letters import DeadLetters
from worker.decoding import DecodeError, FramingError
from worker.model import AckSet, DeadLetter, Origin
from worker.parsers import ParseContext
from worker.parsers._fields import epoch_ms_to_iso
from worker.pipeline import Pipeline, StreamParsers, UnknownLogType, single_chunk
from worker.sources.sqs_consumer import SqsConsumer, SqsMessage, message_settled

_BASE64 = re.compile(rb"[A-Za-z0-9+/\r\n]+={0,2}\s*")
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"BZh")


def decode_body(body: str) -> tuple[bytes, str]:
    """The bytes a message carries and how they were sent: `base64` or `text`.

    A body is taken as base64 only when it is nothing but base64 (no spaces: a log line nearly always has
    some), decodes cleanly, and yields compressed data or UTF-8 text; so `Hello` or a word that happens to be
    valid base64 stays text.
    """
    raw = body.encode("utf-8")
    if len(raw) >= 8 and _BASE64.fullmatch(raw):
        try:
            data = base64.b64decode(raw, validate=False)
        except (binascii.Error, ValueError):
            return raw, "text"
        if data.startswith(_COMPRESSED_MAGIC):
            return data, "base64"
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return raw, "text"
        if text and all(c.isprintable() or c in "\t\r\n" for c in text[:4096]):
            return data, "base64"
    return raw, "text"


class SqsSourceRunner:
    """Receives messages and ingests each body as one unit of work."""

    def __init__(self, name: str, cfg: SqsSource, aws: AwsClients, pipeline: Pipeline,
                 dead_letters: DeadLetters) -> None:
        self.name = name
        self.cfg = cfg
        self.aws = aws
        self.pipeline = pipeline
        self.dead_letters = dead_letters
        self.ctx = ParseContext(region=aws.cfg.region, keep_original=cfg.keep_original,
                                options=dict(cfg.parser_options))
        self.parsers = StreamParsers(self.ctx)
        self.log_type = None if cfg.log_type == "auto" else cfg.log_type
        self.queue = cfg.queue_url.rstrip("/").rsplit("/", 1)[-1]
        self.consumer: SqsConsumer | None = None

    async def run(self, stop: asyncio.Event, drain_deadline: list[float]) -> None:
        self.consumer = SqsConsumer(
            await self.aws.client("sqs"), self.cfg.queue_url, self.name, self.handle,
            max_in_flight=self.cfg.max_in_flight, wait_time=self.cfg.wait_time,
            visibility_timeout=self.cfg.visibility_timeout, retry_visibility=self.cfg.retry_visibility)
        self.consumer.deadline = lambda: drain_deadline[0] if drain_deadline else None
        await self.consumer.run(stop)

    async def handle(self, msg: SqsMessage) -> bool:
        """Ingest one message body; True when every document from it is settled and it may be deleted."""
        ack = AckSet(f"{self.name}/{msg.id}")
        data, encoding = decode_body(msg.body)
        origin = Origin(self.name, "sqs", key=self.queue, version=msg.id, size=len(data),
                        extra=(("message_id", msg.id), ("encoding", encoding)))
        sent = epoch_ms_to_iso(msg.sent_at_ms) if msg.sent_at_ms is not None else None
        try:
            await self.pipeline.ingest(single_chunk(data), origin, self.log_type, self.ctx, ack,
                                       fallback_timestamp=sent, fallback_log_type=self.cfg.fallback_log_type,
                                       parsers=self.parsers, processing=self.cfg.processing)
        except (DecodeError, FramingError) as exc:
            await self._dead_letter("decode_error", f"message body cannot be decoded: {exc}", origin, msg, ack)
        except UnknownLogType as exc:
            await self._dead_letter("unknown_log_type", str(exc), origin, msg, ack)
        return await message_settled(self.name, msg, ack)

    async def _dead_letter(self, reason: str, detail: str, origin: Origin, msg: SqsMessage, ack: AckSet) -> None:
        ack.add(1)
        await self.dead_letters.add(DeadLetter(reason, detail, origin, raw=msg.body[:1 << 20]), ack)
