"""`opensearch.bulk.flush_when_idle`: a partly filled body leaves as soon as no input is being parsed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from tests.support import CollectingSink
from worker.config import OpenSearchConfig, PipelineConfig
from worker.model import AckSet, Document, Origin
from worker.parsers import ParseContext
from worker.pipeline import Pipeline
from worker.sinks.opensearch import OpenSearchSink


class _IdleCounting(CollectingSink):
    def __init__(self) -> None:
        super().__init__()
        self.idle_calls = 0

    def idle(self) -> None:
        self.idle_calls += 1


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        await asyncio.sleep(0.01)
        yield part


async def test_pipeline_says_idle_once_no_stream_is_being_ingested() -> None:
    sink = _IdleCounting()
    pipeline = Pipeline(PipelineConfig(), sink, None)  # type: ignore[arg-type]
    ctx = ParseContext()

    async def one(name: str) -> None:
        await pipeline.ingest(_chunks(b"a\n", b"b\n"), Origin("s", "s3", "b", name), "generic", ctx, AckSet(name))

    await asyncio.gather(one("k1"), one("k2"))  # overlapping streams: idle only after the second ends
    await asyncio.sleep(0)
    assert len(sink.docs) == 4
    assert sink.idle_calls == 1
    await one("k3")
    await asyncio.sleep(0)
    assert sink.idle_calls == 2


def _doc(i: int) -> Document:
    return Document(f"id{i}", "generic", {"@timestamp": "2026-01-01T00:00:00Z", "message": "x"}, AckSet("u"),
                    Origin("s", "s3"))


async def test_idle_cuts_the_open_body_and_only_when_enabled() -> None:
    for enabled in (True, False):
        cfg = OpenSearchConfig(hosts=["http://127.0.0.1:9"], bulk={"flush_when_idle": enabled})
        sink = OpenSearchSink(cfg, None, None)  # type: ignore[arg-type]  # no senders: bodies stay queued
        for i in range(3):
            sink.add(_doc(i))
        await sink.ready()
        assert sink._queue.qsize() == 0  # three documents do not fill a body
        sink.idle()
        await asyncio.sleep(0)
        assert sink._queue.qsize() == (1 if enabled else 0)
        assert len(sink._batch.docs) == (0 if enabled else 3)
