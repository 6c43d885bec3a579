"""Enrichment wired into the pipeline: off by default at no cost, on through config."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from tests.corpus import read_lines
from tests.support import CollectingSink
from worker.app import build_enricher
from worker.config import EnrichConfig, PipelineConfig
from worker.model import AckSet, Origin
from worker.parsers import ParseContext
from worker.pipeline import Pipeline

_Collect = CollectingSink


class _NoDeadLetters:
    async def add(self, *args: Any) -> None:
        raise AssertionError(f"unexpected dead letter: {args}")


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _ingest(enrich: EnrichConfig) -> dict[str, Any]:
    sink = _Collect()
    pipeline = Pipeline(PipelineConfig(), sink, _NoDeadLetters(), build_enricher(enrich))  # type: ignore[arg-type]
    line = read_lines("elb/elastic-integrations_test-alb.log")[0]
    await pipeline.ingest(_chunks(line.encode() + b"\n"), Origin("t", "s3", "b", "k"), "alb", ParseContext(),
                          AckSet("t"))
    assert len(sink.docs) == 1
    return sink.docs[0].body


def test_enrichment_is_off_by_default() -> None:
    assert build_enricher(EnrichConfig()) is None


async def test_user_agent_enrichment_through_config() -> None:
    plain = await _ingest(EnrichConfig())
    assert set(plain["user_agent"]) == {"original"}
    enriched = await _ingest(EnrichConfig(user_agent=True))
    assert enriched["user_agent"]["original"] == plain["user_agent"]["original"]
    assert enriched["user_agent"]["name"] == "curl"
