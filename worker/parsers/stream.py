"""One input stream's records -> documents and failures: the parse loop the worker and `sluice parse` share.

It adds three things to a bare `LogParser.parse` call, so that no caller has to know about them:
- joining continuation lines (a multi-line PostgreSQL statement in a file) for parsers that declare a
  `continuation` pattern, holding the pending record across chunks until `finish`;
- re-parsing a record with a sibling parser when the parser raises `Reroute` (an NLB line in an ALB file),
  so mixed files land each line under its own type;
- expanding container records (CloudWatch Logs subscription payloads) into documents of their inner types.

Results come back as plain lists per call, one call per decoded chunk, because a generator or a callback per
line costs more than the parse itself on the fast formats.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from worker.model import Serialized
from worker.parsers import Emitted, Failed, LogParser, ParseContext, ParseError, Reroute, get_parser

EmitFn = Callable[[int, str, str, "dict[str, Any] | Serialized"], None]
"""Takes one document: (offset, sub-record id or "", log type, body); the body is a dict unless `each` was told
`serialized`."""

MAX_JOINED_LINES = 1000
"""A continued record longer than this many lines is cut: one runaway record must not grow without bound."""
MAX_JOINED_CHARS = 1 << 20


class StreamParser:
    """Parses the records of one stream (an S3 object, a Kinesis record, a local file) as `log_type`."""

    __slots__ = ("_continuation", "_pending", "_pending_chars", "_siblings", "ctx", "joined", "log_type", "parser",
                 "skipped_records")

    def __init__(self, log_type: str, ctx: ParseContext, *, join_lines: bool = True) -> None:
        self.log_type = log_type
        self.ctx = ctx
        self.parser: LogParser = get_parser(log_type)(ctx)
        self._siblings: dict[str, LogParser] = {}
        # Records that arrive whole (CloudWatch Logs events) are never joined, whatever the parser declares.
        self._continuation: re.Pattern[str] | None = type(self.parser).continuation if join_lines else None
        self._pending: tuple[int, list[str]] | None = None
        self._pending_chars = 0
        self.joined = 0
        """Lines folded into the record before them (they are part of a document, not lost)."""
        self.skipped_records: list[tuple[int, Any]] | None = None
        """Set to a list to collect the records the parser declared non-events (tests prove none is an event)."""

    @property
    def framing(self) -> str:
        return self.parser.framing

    def process(self, frames: Iterable[tuple[int, Any]]) -> tuple[list[Emitted], list[Failed], int]:
        """Parse `(offset, record)` frames: (documents, failures, records skipped as non-events)."""
        docs: list[Emitted] = []
        failures, skipped = self.each(frames, _collector(docs))
        return docs, failures, skipped

    def each(self, frames: Iterable[tuple[int, Any]], emit: EmitFn, *,
             serialized: bool = False) -> tuple[list[Failed], int]:
        """Parse `(offset, record)` frames, handing each document to `emit(offset, sub, log_type, body)` as soon
        as it is built; returns (failures, records skipped as non-events). With `serialized`, the parser's
        `parse_serialized` is used, so a body may be a `Serialized` instead of a dict.

        The worker serialises a document inside `emit`, while its dict is still in the CPU cache and before the
        next one is built: parsing a slice into a list first and serialising afterwards cost about a third
        more (the dicts of a slice no longer fit in the cache, and are freed cold)."""
        if self._continuation is not None:
            frames = self._join(frames)
        if self.parser.expands:
            return self._expand(frames, emit)
        failures: list[Failed] = []
        skipped = 0
        parser = self.parser
        parse = parser.parse_serialized if serialized and parser.serializes else parser.parse
        log_type = self.log_type
        for offset, record in frames:
            try:
                body = parse(record)
            except Reroute as exc:
                skipped += self._reroute(exc.log_type, offset, record, emit, failures)
                continue
            except Exception as exc:  # a parser bug is a parse failure of this record, never a lost unit
                failures.append((offset, record, log_type, _reason(exc)))
                continue
            if body is None:
                skipped += 1
                if self.skipped_records is not None:
                    self.skipped_records.append((offset, record))
            else:
                emit(offset, "", log_type, body)
        return failures, skipped

    def finish(self) -> tuple[list[Emitted], list[Failed], int]:
        """Whatever the stream still holds (the last continued record)."""
        docs: list[Emitted] = []
        failures, skipped = self.finish_each(_collector(docs))
        return docs, failures, skipped

    def finish_each(self, emit: EmitFn) -> tuple[list[Failed], int]:
        """`finish`, handing documents to `emit` as `each` does."""
        if self._pending is None:
            return [], 0
        offset, lines = self._pending
        self._pending = None
        saved, self._continuation = self._continuation, None
        try:
            return self.each([(offset, "\n".join(lines))], emit)
        finally:
            self._continuation = saved

    def _reroute(self, log_type: str, offset: int, record: Any, emit: EmitFn, failures: list[Failed]) -> int:
        """Parse with the sibling type's parser; 1 when that parser declares the record a non-event."""
        parser = self._siblings.get(log_type)
        if parser is None:
            try:
                parser = get_parser(log_type)(self.ctx)
            except KeyError as exc:
                failures.append((offset, record, self.log_type, f"parser rerouted to {exc.args[0]}"))
                return 0
            self._siblings[log_type] = parser
        try:
            body = parser.parse(record)
        except Reroute as exc:  # a second hop would mean two parsers disagree: report, never loop
            failures.append((offset, record, log_type, f"{self.log_type} -> {log_type} -> {exc.log_type}: no parser "
                                                       "claims the record"))
            return 0
        except Exception as exc:
            failures.append((offset, record, log_type, _reason(exc)))
            return 0
        if body is None:
            if self.skipped_records is not None:
                self.skipped_records.append((offset, record))
            return 1
        emit(offset, "", log_type, body)
        return 0

    def _expand(self, frames: Iterable[tuple[int, Any]], emit: EmitFn) -> tuple[list[Failed], int]:
        failures: list[Failed] = []
        skipped = 0
        for offset, record in frames:
            try:
                more, failed = self.parser.expand(record, offset)
            except Exception as exc:
                failures.append((offset, record, self.log_type, _reason(exc)))
                continue
            if not more and not failed:
                skipped += 1
                if self.skipped_records is not None:
                    self.skipped_records.append((offset, record))
            for item in more:
                emit(*item)
            failures.extend(failed)
        return failures, skipped

    def _join(self, frames: Iterable[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
        """Frames with continuation lines folded into the record they continue; the last record is held back
        until a line that starts a new one arrives (possibly in the next chunk) or `finish`."""
        match = self._continuation.match if self._continuation is not None else None
        assert match is not None
        for offset, line in frames:
            pending = self._pending
            if pending is not None and match(line):
                lines = pending[1]
                if len(lines) < MAX_JOINED_LINES and self._pending_chars + len(line) < MAX_JOINED_CHARS:
                    lines.append(line)
                    self._pending_chars += len(line) + 1
                    self.joined += 1
                    continue
            if pending is not None:
                yield pending[0], "\n".join(pending[1])
            self._pending = (offset, [line])
            self._pending_chars = len(line)


def _reason(exc: Exception) -> str:
    return str(exc) if isinstance(exc, ParseError) else f"{type(exc).__name__}: {exc}"


def _collector(docs: list[Emitted]) -> EmitFn:
    """An `emit` that appends to `docs` (for `each` without `serialized`, so every body is a dict)."""
    append = docs.append

    def collect(offset: int, sub: str, log_type: str, body: dict[str, Any] | Serialized) -> None:
        assert isinstance(body, dict), "serialized documents reach only the sinks"
        append((offset, sub, log_type, body))

    return collect
