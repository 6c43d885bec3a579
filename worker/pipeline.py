"""bytes -> decoded chunks -> frames -> parsed documents -> sink, for one input stream of one unit of work.

The loop works a whole decompressed chunk at a time (one framing call, one `submit` per chunk), because
per-line awaits and per-line framing dominate the cost of a Python pipeline.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from worker import telemetry as m
from worker.config import PipelineConfig
from worker.dead_letters import DeadLetters
from worker.decoding import FramingError, JsonRecordsFramer, LineFramer, StreamDecoder
from worker.model import AckSet, DeadLetter, Document, Origin, Serialized
from worker.parsers import Failed, ParseContext
from worker.parsers.stream import EmitFn, StreamParser
from worker.routing import sniff_log_type

if TYPE_CHECKING:
    from worker.config import ProcessingConfig
    from worker.enrich import Enricher
    from worker.processing import Processor

log = m.get_logger("sluice.pipeline")

PARSE_SLICE = 256
"""Records parsed between two backpressure checks (`Sink.ready`) and event-loop yields. Each document goes to the
sink as soon as it is parsed, whatever the slice size; the slice only bounds how long the parse loop keeps the
event loop and how much a full sink can be overrun."""


class Sink(Protocol):
    """Where documents go.

    `add` takes one document at once (a sink serialises or converts it then, while the parser's dict is fresh,
    and must not keep the dict); `ready` is the backpressure, awaited after every slice of added documents;
    `submit` is `add` for each, then `ready`; `idle` says that no input is being parsed any more, so a sink
    that batches sends what it holds."""

    def add(self, doc: Document) -> None: ...

    async def ready(self) -> None: ...

    async def submit(self, docs: list[Document]) -> None: ...

    def idle(self) -> None: ...

    def takes_serialized(self, source: str) -> bool:
        """Whether every sink `source`'s documents go to takes `Serialized` bodies (JSON formatted by the
        parser) as well as dicts."""
        ...


@dataclass(slots=True)
class StreamStats:
    bytes_in: int = 0
    bytes_out: int = 0
    documents: int = 0
    failures: int = 0
    skipped: int = 0
    oversize_lines: int = 0
    """Lines over `pipeline.max_line_bytes`: only their head is in their dead letter, so the object is kept too."""
    log_type: str = ""
    """The type the stream was parsed as (decided by content when the caller did not know)."""
    excluded: int = 0
    """Events dropped on purpose by the source's include / exclude patterns (counted, never dead-lettered)."""


class StreamParsers:
    """Stream parsers kept across many small units of one source (Kinesis records, SQS bodies).

    Building a parser (and, for CloudWatch Logs envelopes, the inner parsers per log group) costs more than
    parsing one small record, so a source that ingests record after record keeps one per log type. Every
    `ingest` still ends with `finish()`, so nothing pending leaks from one unit into the next.
    """

    __slots__ = ("_by_type", "ctx", "join_lines")

    def __init__(self, ctx: ParseContext, *, join_lines: bool = True) -> None:
        self.ctx = ctx
        self.join_lines = join_lines
        self._by_type: dict[str, StreamParser] = {}

    def get(self, log_type: str) -> StreamParser:
        stream = self._by_type.get(log_type)
        if stream is None:
            stream = self._by_type[log_type] = StreamParser(log_type, self.ctx, join_lines=self.join_lines)
        return stream


Annotate = Callable[[dict[str, Any]], None]
"""Adds what the source knows to every document (e.g. `aws.kinesis.*`); called once per document."""


class UnknownLogType(Exception):
    """Neither the key, the source's config nor the content told the log type; nothing was submitted."""

    def __init__(self, head: str) -> None:
        super().__init__("no routing rule matched the key and the content is not a known log format; "
                         "set log_type on the source")
        self.head = head


class Pipeline:
    """Turns streams into documents for a sink; one instance is shared by every source of a worker."""

    def __init__(self, cfg: PipelineConfig, sink: Sink, dead_letters: DeadLetters,
                 enricher: Enricher | None = None) -> None:
        self.cfg = cfg
        self.sink = sink
        self.dead_letters = dead_letters
        self.enrich = enricher.apply if enricher is not None and enricher.enabled else None
        self.active = 0
        """Streams being ingested right now; when it drops to 0 the sink hears that it is idle."""
        self._json_gate = asyncio.Semaphore(cfg.max_json_documents)
        """Whole JSON documents (CloudTrail, Config files) parsed at once: a parsed file takes about 4x its
        size in memory, and several objects in flight each holding their parsed records raised peak RSS past
        300 MB in `sluice bench` (8 MB CloudTrail objects, 10 messages in flight). Parsing is CPU-bound on one
        event loop anyway, so waiting here costs no throughput; reading the next objects goes on meanwhile."""

    def _ended(self) -> None:
        self.active -= 1
        if not self.active:
            # Checked again on the next loop turn: a source that starts its next unit right away is not idle.
            asyncio.get_running_loop().call_soon(self._maybe_idle)

    def _maybe_idle(self) -> None:
        if not self.active:
            self.sink.idle()

    async def ingest(self, chunks: AsyncIterator[bytes], origin: Origin, log_type: str | None, ctx: ParseContext,
                     ack: AckSet, fallback_timestamp: str | None = None,
                     fallback_log_type: str | None = None, parsers: StreamParsers | None = None,
                     annotate: Annotate | None = None, processing: ProcessingConfig | None = None) -> StreamStats:
        """Read `chunks` to the end and hand every record to the sink or the dead letters.

        `log_type` None means "find out from the content" (the first 64 KiB decoded); when that fails too,
        `fallback_log_type` (e.g. `generic`) is used, else UnknownLogType is raised before anything is
        submitted, so the caller can keep the object whole. `fallback_timestamp` (the object's LastModified)
        dates records that carry no time of their own, so their index, like their id, is the same on every
        redelivery. `parsers` (else a fresh parser per call) and `annotate` are for sources of many small units.
        `processing` is the source's include / exclude, multiline, JSON event and tags / fields settings
        (worker/processing); a multi-line event never spans two units.

        Raises DecodeError (after submitting everything decoded before the damage) so the caller can keep
        the whole object in the backup bucket; infrastructure errors from `chunks` propagate unchanged.
        """
        self.active += 1
        try:
            return await self._ingest(chunks, origin, log_type, ctx, ack, fallback_timestamp, fallback_log_type,
                                      parsers, annotate, processing)
        finally:
            self._ended()

    async def _ingest(self, chunks: AsyncIterator[bytes], origin: Origin, log_type: str | None, ctx: ParseContext,
                      ack: AckSet, fallback_timestamp: str | None, fallback_log_type: str | None,
                      parsers: StreamParsers | None, annotate: Annotate | None,
                      processing: ProcessingConfig | None) -> StreamStats:
        stats = StreamStats()
        decoded = _decoded(chunks, StreamDecoder(), stats)
        if log_type is None:
            head, decoded = await _peek(decoded, SNIFF_BYTES)
            text = head[:SNIFF_BYTES].decode("utf-8", "replace")
            log_type = sniff_log_type(text) or fallback_log_type
            if log_type is None:
                raise UnknownLogType(text[:512])
        stats.log_type = log_type
        stream = parsers.get(log_type) if parsers is not None else StreamParser(log_type, ctx)
        proc = _processor(processing)
        if proc is not None and proc.decorates:
            annotate = _then(annotate, proc.decorate)
        emit = _Emitter(self, origin, ack, stats, fallback_timestamp, annotate)
        if proc is not None and proc.handles_json:
            await self._json_events(decoded, proc, stream, emit, log_type)
        elif stream.framing == "lines" and proc is not None and proc.handles_lines:
            await self._processed_lines(decoded, proc, stream, emit, log_type)
        elif stream.framing == "lines":
            framer = LineFramer(self.cfg.max_line_bytes, report_invalid=True,
                                check_plain=emit.serialized and stream.parser.serializes)
            async for data in decoded:
                frames = framer.feed(data)
                emit.invalid_utf8(framer.take_invalid())
                for start in range(0, len(frames), PARSE_SLICE):
                    await emit.parse(stream, frames[start : start + PARSE_SLICE], framer.plain)
                await emit.oversize(framer.take_oversize(), log_type)
                await emit.keep_invalid_utf8(log_type)
            frames = framer.finish()
            emit.invalid_utf8(framer.take_invalid())
            await emit.parse(stream, frames, framer.plain)
            await emit.oversize(framer.take_oversize(), log_type)
            await emit.parse_rest(stream)
            await emit.keep_invalid_utf8(log_type)
        else:
            jframer = JsonRecordsFramer(self.cfg.max_document_bytes)
            async for data in decoded:
                jframer.feed(data)
            async with self._json_gate:
                records, errors = jframer.finish()
                if proc is not None and proc.handles_lines:
                    kept = proc.records(records)
                    stats.excluded += len(records) - len(kept)
                    records = kept
                # Consumed from the end, so each slice's raw records are freed as soon as they are parsed.
                records.reverse()
                while records:
                    part = records[-PARSE_SLICE:]
                    del records[-PARSE_SLICE:]
                    part.reverse()
                    await emit.parse(stream, part)
                    del part
            await emit.parsed(([(off, raw, log_type, f"invalid JSON: {why}") for off, raw, why in errors], 0))
        for lt, n in emit.per_type.items():
            m.DOCUMENTS_PARSED.labels(origin.source, lt).inc(n)
        if proc is not None:
            stats.excluded += proc.excluded
            if stats.excluded:
                m.EVENTS_EXCLUDED.labels(origin.source).inc(stats.excluded)
            if proc.multiline_splits:
                m.MULTILINE_SPLITS.labels(origin.source).inc(proc.multiline_splits)
        return stats

    async def _processed_lines(self, decoded: AsyncIterator[bytes], proc: Processor, stream: StreamParser,
                               emit: _Emitter, log_type: str) -> None:
        """The line loop with the source's multiline and include / exclude between framing and parsing.

        The multiline timeout is checked when a chunk arrives: if no line came for `multiline.timeout`, the
        pending event is emitted on its own instead of being joined with the lines that come after the pause.
        """
        framer = LineFramer(self.cfg.max_line_bytes, report_invalid=True)
        async for data in decoded:
            now = time.monotonic()
            if proc.expired(now):
                await emit.parse(stream, proc.flush())
            frames = proc.lines(framer.feed(data), now)
            emit.invalid_utf8(framer.take_invalid())
            for start in range(0, len(frames), PARSE_SLICE):
                await emit.parse(stream, frames[start : start + PARSE_SLICE])
            await emit.oversize(framer.take_oversize(), log_type)
        frames = proc.lines(framer.finish(), time.monotonic()) + proc.finish()
        emit.invalid_utf8(framer.take_invalid())
        await emit.parse(stream, frames)
        await emit.oversize(framer.take_oversize(), log_type)
        await emit.parse_rest(stream)
        await emit.keep_invalid_utf8(log_type)

    async def _json_events(self, decoded: AsyncIterator[bytes], proc: Processor, stream: StreamParser,
                           emit: _Emitter, log_type: str) -> None:
        """`json_content_type`: the unit's whole text split into JSON events (then expanded) by the source's
        settings instead of the log type's framing; bounded by `pipeline.max_document_bytes`."""
        limit = self.cfg.max_document_bytes
        parts: list[bytes] = []
        size = 0
        async for data in decoded:
            size += len(data)
            if size > limit:
                raise FramingError(f"a JSON unit larger than pipeline.max_document_bytes ({limit})")
            parts.append(data)
        text = b"".join(parts).decode("utf-8", "replace")
        events, failures = proc.events(text, limit)
        if stream.framing == "lines":
            from worker.processing.processor import json_text

            events = [(off, rec if isinstance(rec, str) else json_text(rec)) for off, rec in events]
        for start in range(0, len(events), PARSE_SLICE):
            await emit.parse(stream, events[start : start + PARSE_SLICE])
        await emit.parse_rest(stream)
        await emit.parsed(([(off, raw, log_type, reason) for off, raw, reason in failures], 0))


def _processor(cfg: ProcessingConfig | None) -> Processor | None:
    """A fresh processor per unit (it holds the unit's pending multiline event); None when nothing is set, which
    is checked on the config so that a source with default settings pays nothing per Kinesis record or message."""
    if cfg is None or not cfg.active:
        return None
    from worker.processing import Processor

    return Processor(cfg)


def _then(first: Annotate | None, second: Annotate) -> Annotate:
    if first is None:
        return second

    def both(body: dict[str, Any]) -> None:
        first(body)
        second(body)

    return both


async def single_chunk(data: bytes) -> AsyncIterator[bytes]:
    """A unit that arrived whole (a Kinesis record, an SQS body) as the chunk stream `ingest` reads."""
    yield data


SNIFF_BYTES = 65536
"""Decoded bytes content sniffing looks at."""


async def _decoded(chunks: AsyncIterator[bytes], decoder: StreamDecoder, stats: StreamStats) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        stats.bytes_in += len(chunk)
        for data in decoder.feed(chunk):
            stats.bytes_out += len(data)
            yield data
    for data in decoder.finish():
        stats.bytes_out += len(data)
        yield data


async def _peek(stream: AsyncIterator[bytes], size: int) -> tuple[bytes, AsyncIterator[bytes]]:
    """The first `size` bytes of a stream (or all of a shorter one), and the stream with them put back."""
    head: list[bytes] = []
    have = 0
    async for data in stream:
        head.append(data)
        have += len(data)
        if have >= size:
            break

    async def rejoined() -> AsyncIterator[bytes]:
        for data in head:
            yield data
        async for data in stream:
            yield data

    return b"".join(head), rejoined()


class _Emitter:
    """Per-stream state of the parse loop: ids, counters, and where failures go.

    Nothing the input held may be lost, even when the document is not the input: lines that were not UTF-8
    (indexed with U+FFFD) keep their exact bytes in the backup bucket (an `invalid_utf8` record, or their
    `parse_error` record, with `raw_base64`).
    """

    __slots__ = ("ack", "annotate", "document", "enrich", "fallback_timestamp", "id_prefix", "origin", "per_type",
                 "pipeline", "serialized", "stats", "undecodable")

    def __init__(self, pipeline: Pipeline, origin: Origin, ack: AckSet, stats: StreamStats,
                 fallback_timestamp: str | None, annotate: Annotate | None = None) -> None:
        self.pipeline = pipeline
        self.annotate = annotate
        self.enrich = pipeline.enrich
        self.fallback_timestamp = fallback_timestamp
        self.origin = origin
        self.ack = ack
        self.stats = stats
        self.id_prefix = origin.id_prefix() + "."
        self.per_type: dict[str, int] = {}
        self.undecodable: dict[int, tuple[bytes, list[str]]] = {}
        """Offset -> (original bytes, ids of the documents made from it) of lines that were not UTF-8."""
        self.serialized = self.enrich is None and annotate is None and pipeline.sink.takes_serialized(origin.source)
        """Whether parsers may hand on documents already serialised: nothing here changes a document after its
        parser (no enrichment, no source fields or processor tags) and the source's sinks take them."""
        self.document = self._document_fn()
        """Takes one parsed document (`StreamParser.each` calls it per document, before the next record is
        parsed): finishes it (fallback time, enrichment, the source's fields, its id) and hands it to the sink."""

    def _document_fn(self) -> EmitFn:
        """The per-document step as a closure over this stream's constants (no attribute lookups per call)."""
        fallback, enrich, annotate = self.fallback_timestamp, self.enrich, self.annotate
        prefix, undecodable, per_type = self.id_prefix, self.undecodable, self.per_type
        ack, origin, add = self.ack, self.origin, self.pipeline.sink.add

        def document(offset: int, sub: str, log_type: str, body: dict[str, Any] | Serialized) -> None:
            if isinstance(body, dict):  # a Serialized one has its time, and comes only when nothing is to be added
                if fallback and "@timestamp" not in body:
                    body["@timestamp"] = fallback
                if enrich is not None:
                    enrich(body)
                if annotate is not None:
                    annotate(body)
            doc_id = f"{prefix}{offset}.{sub}" if sub else prefix + str(offset)
            if undecodable:
                entry = undecodable.get(offset)
                if entry is not None:
                    entry[1].append(doc_id)
            per_type[log_type] = per_type.get(log_type, 0) + 1
            add(Document(doc_id, log_type, body, ack, origin, offset))

        return document

    async def parse(self, stream: StreamParser, frames: Iterable[tuple[int, Any]], plain: bool = False) -> None:
        """One slice: its documents straight to the sink as they are parsed, then `parsed`. `plain`: the
        framer found nothing JSON must escape in the slice's tokens (`LineFramer.plain`), so the parser may
        format documents itself where `serialized` allows it."""
        await self.parsed(stream.each(frames, self.document, serialized=self.serialized and plain))

    async def parse_rest(self, stream: StreamParser) -> None:
        """What the stream still holds at its end (a pending continued record)."""
        await self.parsed(stream.finish_each(self.document))

    async def parsed(self, result: tuple[list[Failed], int]) -> None:
        """After a slice: count its documents in the unit's AckSet, its failures to the dead letters, then the
        sink's backpressure (`ready`). Nothing can settle a document before an await, so counting the slice's
        documents here, before the first await, is as safe as counting each one as it is added."""
        failures, skipped = result
        self.stats.skipped += skipped
        added = sum(self.per_type.values()) - self.stats.documents
        if added:
            self.ack.add(added)
            self.stats.documents += added
        for offset, record, log_type, reason in failures:
            await self.failure(offset, record, log_type, reason)
        if added:
            await self.pipeline.sink.ready()
            # `ready` only suspends when the sink is full; while an object's bytes are already buffered the parse
            # loop would otherwise keep the event loop to itself, starving bulk senders (the first request left
            # seconds late in `sluice bench`), visibility heartbeats and health checks. One yield per slice.
            await asyncio.sleep(0)

    async def failure(self, offset: int, record: Any, log_type: str, reason: str) -> None:
        self.stats.failures += 1
        m.PARSE_FAILURES.labels(self.origin.source, log_type).inc()
        raw = record if isinstance(record, str) else None
        dl = DeadLetter("parse_error", reason, self.origin, log_type, offset=offset, raw=raw,
                        document=record if isinstance(record, dict) else None)
        undecodable = self.undecodable.pop(offset, None) if self.undecodable else None
        if undecodable is not None:
            dl.extra["raw_base64"] = base64.b64encode(undecodable[0]).decode()
        self.ack.add(1)
        await self.pipeline.dead_letters.add(dl, self.ack)

    async def oversize(self, items: list[tuple[int, int, str]], log_type: str) -> None:
        limit = self.pipeline.cfg.max_line_bytes
        self.stats.oversize_lines += len(items)
        for offset, length, head in items:
            await self.failure(offset, head, log_type,
                               f"line of {length} bytes exceeds pipeline.max_line_bytes ({limit}); its head is kept")

    def invalid_utf8(self, lines: list[tuple[int, bytes]]) -> None:
        """Remember lines that were not UTF-8 until their documents (or failures) are known."""
        for offset, raw in lines:
            self.undecodable[offset] = (raw, [])

    async def keep_invalid_utf8(self, log_type: str) -> None:
        """Keep the original bytes of lines indexed with U+FFFD; their parse failures already carry them."""
        pending = dict(self.undecodable)
        self.undecodable.clear()  # in place: the per-document closure holds this dict
        for offset, (raw, ids) in pending.items():
            what = ("indexed with U+FFFD in place of the bad bytes" if ids
                    else "not indexed on its own (the parser skipped it or joined it to the record before it)")
            dl = DeadLetter("invalid_utf8", f"line is not valid UTF-8: {what}; raw_base64 holds the original bytes",
                            self.origin, log_type, offset=offset, raw=raw.decode("utf-8", "replace"),
                            doc_id=ids[0] if ids else None, extra={"raw_base64": base64.b64encode(raw).decode()})
            self.ack.add(1)
            await self.pipeline.dead_letters.add(dl, self.ack)
