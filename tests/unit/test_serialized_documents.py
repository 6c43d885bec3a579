"""Who gets documents a parser serialised itself (`Serialized`): only sinks that take them, and only when
nothing is added to a document after its parser."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from tests.support import CollectingSink
from worker.config import PipelineConfig, ProcessingConfig
from worker.model import AckSet, Origin
from worker.parsers import ParseContext
from worker.pipeline import Pipeline
from worker.sinks.fanout import FanoutSink

LINES = b"".join(
    b"2 123456789010 eni-0123 10.0.0.%d 10.0.0.2 443 50000 6 3 180 1700000000 1700000060 ACCEPT OK\n" % i
    for i in range(1, 6)
)


class _Taking(CollectingSink):
    def takes_serialized(self, source: str) -> bool:
        return True


async def _chunks(*chunks: bytes) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def _bodies(sink: CollectingSink, *chunks: bytes, **ingest: Any) -> list[Any]:
    pipeline = Pipeline(PipelineConfig(), sink, None)  # type: ignore[arg-type]
    await pipeline.ingest(_chunks(*(chunks or (LINES,))), Origin("src", "s3", "b", "k"), "vpc_flow", ParseContext(),
                          AckSet("t"), **ingest)
    return [doc.body for doc in sink.docs]


async def test_a_sink_that_takes_them_gets_the_parsers_json() -> None:
    dicts = await _bodies(CollectingSink())
    formatted = await _bodies(_Taking())
    assert len(dicts) == len(formatted) == 5
    assert all(isinstance(body, dict) for body in dicts)
    assert formatted == [(body["@timestamp"], orjson.dumps(body)) for body in dicts]


async def test_source_fields_or_tags_mean_dicts() -> None:
    def annotate(body: dict[str, Any]) -> None:
        body["labels"] = {"shard": "1"}

    annotated = await _bodies(_Taking(), annotate=annotate)
    assert all(isinstance(b, dict) and b["labels"] == {"shard": "1"} for b in annotated) and len(annotated) == 5
    tagged = await _bodies(_Taking(), processing=ProcessingConfig(tags=["prod"]))
    assert all(isinstance(b, dict) and b["tags"] == ["prod"] for b in tagged) and len(tagged) == 5


def test_fanout_takes_them_only_for_sources_whose_every_sink_does() -> None:
    taking, not_taking = _Taking(), CollectingSink()
    fanout = FanoutSink({"both": [not_taking, taking], "os": [taking]}, [taking])
    assert not fanout.takes_serialized("both")
    assert fanout.takes_serialized("os") and fanout.takes_serialized("unknown")


async def test_a_chunk_with_text_json_must_escape_is_parsed_into_dicts() -> None:
    """The framer looks at each chunk once: a chunk with a quote (or a backslash, a control character) in it
    goes the dict path, whose serialiser escapes; the chunks around it are still formatted by the parser."""
    dirty = LINES.replace(b"eni-0123", b'eni-"0123', 1)
    bodies = await _bodies(_Taking(), LINES, dirty, LINES)
    assert [isinstance(b, tuple) for b in bodies] == [True] * 5 + [False] * 5 + [True] * 5
    assert bodies[5]["aws"]["vpcflow"]["interface_id"] == 'eni-"0123'
    assert bodies[:5] == bodies[10:]
