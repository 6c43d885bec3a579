"""bytes -> decoded chunks -> frames -> parsed documents -> sink, for one input stream of one unit of work.

The loop works a whole decompressed chunk at a time (one framing call, one `submit` per chunk), because
per-line awaits and per-line framing dominate the cost of a Python pipeline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from worker import telemetry as m
from worker.config import PipelineConfig
from worker.dead_letters import DeadLetters
from worker.decoding import JsonRecordsFramer, LineFramer, StreamDecoder
from worker.model import AckSet, DeadLetter, Document, Origin
from worker.parsers import LogParser, ParseContext, get_parser

log = m.get_logger("sluice.pipeline")

_SUBMIT_EVERY = 2048
"""Documents handed to the sink at a time: bounds the parsed-but-unserialised dicts in memory."""


class Sink(Protocol):
    async def submit(self, docs: list[Document]) -> None: ...


@dataclass(slots=True)
class StreamStats:
    bytes_in: int = 0
    bytes_out: int = 0
    documents: int = 0
    failures: int = 0
    skipped: int = 0


class Pipeline:
    """Turns streams into documents for a sink; one instance is shared by every source of a worker."""

    def __init__(self, cfg: PipelineConfig, sink: Sink, dead_letters: DeadLetters) -> None:
        self.cfg = cfg
        self.sink = sink
        self.dead_letters = dead_letters

    async def ingest(self, chunks: AsyncIterator[bytes], origin: Origin, log_type: str, ctx: ParseContext,
                     ack: AckSet, fallback_timestamp: str | None = None) -> StreamStats:
        """Read `chunks` to the end and hand every record to the sink or the dead letters.

        `fallback_timestamp` (the object's LastModified) dates records that carry no time of their own, so
        their index, like their id, is the same on every redelivery.

        Raises DecodeError (after submitting everything decoded before the damage) so the caller can keep
        the whole object in the backup bucket; infrastructure errors from `chunks` propagate unchanged.
        """
        parser = get_parser(log_type)(ctx)
        decoder = StreamDecoder()
        stats = StreamStats()
        emit = _Emitter(self, parser, origin, log_type, ack, stats, fallback_timestamp)
        if parser.framing == "lines":
            framer = LineFramer(self.cfg.max_line_bytes)
            async for chunk in chunks:
                stats.bytes_in += len(chunk)
                for data in decoder.feed(chunk):
                    stats.bytes_out += len(data)
                    await emit.records(framer.feed(data))
                    await emit.oversize(framer.take_oversize())
            for data in decoder.finish():
                stats.bytes_out += len(data)
                await emit.records(framer.feed(data))
            await emit.records(framer.finish())
            await emit.oversize(framer.take_oversize())
        else:
            jframer = JsonRecordsFramer(self.cfg.max_document_bytes)
            async for chunk in chunks:
                stats.bytes_in += len(chunk)
                for data in decoder.feed(chunk):
                    stats.bytes_out += len(data)
                    jframer.feed(data)
            for data in decoder.finish():
                stats.bytes_out += len(data)
                jframer.feed(data)
            records, errors = jframer.finish()
            await emit.records(records)
            for offset, raw, reason in errors:
                await emit.failure(offset, raw, f"invalid JSON: {reason}")
        m.DOCUMENTS_PARSED.labels(origin.source, log_type).inc(stats.documents)
        return stats


class _Emitter:
    """Per-stream state of the parse loop: ids, counters, and where failures go."""

    __slots__ = ("ack", "fallback_timestamp", "id_prefix", "log_type", "origin", "parse", "pipeline", "stats")

    def __init__(self, pipeline: Pipeline, parser: LogParser, origin: Origin, log_type: str, ack: AckSet,
                 stats: StreamStats, fallback_timestamp: str | None) -> None:
        self.pipeline = pipeline
        self.fallback_timestamp = fallback_timestamp
        self.parse = parser.parse
        self.origin = origin
        self.log_type = log_type
        self.ack = ack
        self.stats = stats
        self.id_prefix = origin.id_prefix() + "."

    async def records(self, frames: Iterable[tuple[int, Any]]) -> None:
        docs: list[Document] = []
        failures: list[tuple[int, Any, str]] = []
        parse, ack, origin, log_type, prefix = self.parse, self.ack, self.origin, self.log_type, self.id_prefix
        for offset, record in frames:
            try:
                body = parse(record)
            except Exception as exc:  # a parser bug is a parse failure of this record, never a lost unit
                failures.append((offset, record, f"{type(exc).__name__}: {exc}"))
                continue
            if body is None:
                self.stats.skipped += 1
                continue
            if "@timestamp" not in body and self.fallback_timestamp:
                body["@timestamp"] = self.fallback_timestamp
            docs.append(Document(prefix + str(offset), log_type, body, ack, origin, offset))
            if len(docs) >= _SUBMIT_EVERY:
                await self._submit(docs)
                docs = []
        await self._submit(docs)
        for offset, record, reason in failures:
            await self.failure(offset, record, reason)

    async def _submit(self, docs: list[Document]) -> None:
        if docs:
            self.ack.add(len(docs))
            self.stats.documents += len(docs)
            await self.pipeline.sink.submit(docs)

    async def failure(self, offset: int, record: Any, reason: str) -> None:
        self.stats.failures += 1
        m.PARSE_FAILURES.labels(self.origin.source, self.log_type).inc()
        raw = record if isinstance(record, str) else None
        dl = DeadLetter("parse_error", reason, self.origin, self.log_type, offset=offset, raw=raw,
                        document=record if isinstance(record, dict) else None)
        self.ack.add(1)
        await self.pipeline.dead_letters.add(dl, self.ack)

    async def oversize(self, items: list[tuple[int, int, str]]) -> None:
        for offset, length, head in items:
            await self.failure(offset, head, f"line of {length} bytes exceeds pipeline.max_line_bytes")

