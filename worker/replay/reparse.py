"""Re-parsing a kept record with today's parser: how a `parse_error` (or a rejected record without its
document) becomes documents again, under the ids the original would have had."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from worker import telemetry as m
from worker.dead_letters import DeadLetters
from worker.model import AckSet, DeadLetter, Document, Origin
from worker.parsers.stream import StreamParser
from worker.replay.originals import Originals
from worker.replay.plan import document_id


class Reparser:
    """Today's parser, the source's options and the original's dating, applied to one kept record."""

    def __init__(self, originals: Originals, dead_letters: DeadLetters,
                 enrich: Callable[[dict[str, Any]], None] | None) -> None:
        self.originals = originals
        self.dead_letters = dead_letters
        self.enrich = enrich

    async def documents(self, rec: Mapping[str, Any], origin: Origin, attempts: int, ack: AckSet) -> list[Document]:
        """The record's documents; failures go back as dead letters (counted into `ack`) with `attempts`."""
        log_type: str = rec["log_type"]
        offset: int = rec["offset"]
        raw = rec.get("raw")
        record: Any = raw if isinstance(raw, str) else rec.get("document")
        try:
            stream = StreamParser(log_type, self.originals.context(origin), join_lines=False)
            if stream.framing != "lines" and isinstance(record, str):
                record = orjson.loads(record)
            emitted, failures, _ = stream.process([(offset, record)])
            more, more_failed, _ = stream.finish()
            emitted, failures = emitted + more, failures + more_failed
        except Exception as exc:  # a bad option or a record that is no longer JSON: it failed again
            emitted, failures = [], [(offset, record, log_type, f"{type(exc).__name__}: {exc}")]
        docs: list[Document] = []
        for off, sub, lt, body in emitted:
            if "@timestamp" not in body:
                fallback = await self.originals.last_modified(origin)
                if fallback:
                    body["@timestamp"] = fallback
            if self.enrich is not None:
                self.enrich(body)
            docs.append(Document(document_id(origin, off, sub), lt, body, ack, origin, off))
        for off, failed, lt, reason in failures:
            m.PARSE_FAILURES.labels(origin.source, lt).inc()
            ack.add(1)
            await self.dead_letters.add(DeadLetter(
                "parse_error", reason, origin, lt, offset=off, raw=failed if isinstance(failed, str) else None,
                document=failed if isinstance(failed, dict) else None, extra={"attempts": attempts}), ack)
        return docs
