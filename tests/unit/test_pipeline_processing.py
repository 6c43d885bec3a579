"""A source's `processing` settings applied by the pipeline: what reaches the sink, with which ids."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson

from tests.support import CollectingSink
from worker.config import MultilineConfig, PipelineConfig, ProcessingConfig
from worker.model import AckSet, DeadLetter, Origin
from worker.parsers import ParseContext
from worker.pipeline import Pipeline

JAVA = """2026-11-22 10:00:00 INFO started
2026-11-22 10:00:01 ERROR request failed
java.lang.IllegalStateException: boom
    at com.example.Orders.place(Orders.java:42)
    at com.example.Api.handle(Api.java:7)
Caused by: java.io.IOException: closed
    ... 2 more
2026-11-22 10:00:02 DEBUG noisy
2026-11-22 10:00:03 INFO done
"""


class _Collect(CollectingSink):
    """The documents, and the dead letters (`dead_letters.add`)."""

    def __init__(self) -> None:
        super().__init__()
        self.dead: list[DeadLetter] = []


class _Dead:
    def __init__(self, out: _Collect) -> None:
        self.out = out

    async def add(self, dl: DeadLetter, ack: AckSet) -> None:
        self.out.dead.append(dl)


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _run(processing: ProcessingConfig, *parts: bytes, log_type: str = "generic") -> _Collect:
    out = _Collect()
    pipeline = Pipeline(PipelineConfig(), out, _Dead(out))  # type: ignore[arg-type]
    await pipeline.ingest(_chunks(*parts), Origin("src", "s3", "b", "k"), log_type, ParseContext(), AckSet("t"),
                          processing=processing)
    return out


async def test_multiline_java_stack_trace_then_exclude() -> None:
    continuation = r"^(\s+at |\s+\.\.\. \d+ more|Caused by:|\w+\.[\w.]+Exception)"
    cfg = ProcessingConfig(multiline=MultilineConfig(pattern=continuation), exclude=["DEBUG"], tags=["java"],
                           fields={"service.name": "orders"})
    # Split the text mid-event across two chunks: the pending event survives the chunk boundary.
    data = JAVA.encode()
    out = await _run(cfg, data[:120], data[120:])
    messages = [d.body["message"] for d in out.docs]
    assert len(messages) == 3
    assert messages[1].startswith("2026-11-22 10:00:01 ERROR") and messages[1].endswith("... 2 more")
    assert messages[1].count("\n") == 5
    assert all("DEBUG" not in m for m in messages)
    assert all(d.body["tags"] == ["java"] and d.body["service"]["name"] == "orders" for d in out.docs)
    # The event's id is its first line's offset: the same on every redelivery.
    assert out.docs[1].id.endswith("." + str(JAVA.index("2026-11-22 10:00:01")))
    assert not out.dead


async def test_include_keeps_only_matching_lines() -> None:
    out = await _run(ProcessingConfig(include=["ERROR", "WARN"]), b"a INFO\nb ERROR\nc WARN\nd INFO\n")
    assert [d.body["message"] for d in out.docs] == ["b ERROR", "c WARN"]


async def test_json_single_with_expansion_and_root_fields() -> None:
    body = {"owner": "123456789012", "region": "eu-west-1",
            "Records": [{"eventName": "PutObject"}, {"eventName": "GetObject"}, {"eventName": "DeleteObject"}]}
    cfg = ProcessingConfig(json_content_type="single", expand_event_list_from_field="Records",
                           root_fields_to_add_to_expanded_event=["owner"])
    out = await _run(cfg, orjson.dumps(body, option=orjson.OPT_INDENT_2))
    events = [d.body["json"] for d in out.docs]
    assert [e["eventName"] for e in events] == ["PutObject", "GetObject", "DeleteObject"]
    assert all(e["owner"] == "123456789012" and "region" not in e for e in events)
    assert len({d.id for d in out.docs}) == 3


async def test_json_auto_pretty_printed_and_concatenated() -> None:
    text = b'{\n  "msg": "one",\n  "level": "info"\n}\n{"msg": "two"}{"msg":"three"}\n'
    out = await _run(ProcessingConfig(json_content_type="auto"), text)
    assert [d.body["message"] for d in out.docs] == ["one", "two", "three"]


async def test_ndjson_bad_line_is_dead_lettered_the_rest_indexed() -> None:
    out = await _run(ProcessingConfig(json_content_type="ndjson"), b'{"msg":"a"}\n{not json\n{"msg":"b"}\n')
    assert [d.body["message"] for d in out.docs] == ["a", "b"]
    assert [dl.reason for dl in out.dead] == ["parse_error"]
    assert out.dead[0].raw == "{not json"


async def test_defaults_change_nothing() -> None:
    from worker.processing import Processor

    assert not ProcessingConfig().active  # no processor is built per unit for a source without options
    for cfg in (ProcessingConfig(tags=["t"]), ProcessingConfig(exclude=["x"]),
                ProcessingConfig(json_content_type="auto"), ProcessingConfig(multiline=MultilineConfig(pattern="^ "))):
        assert cfg.active and Processor(cfg).active
    plain = await _run(ProcessingConfig(), JAVA.encode())
    assert len(plain.docs) == JAVA.count("\n")


async def _slow_chunks(first: bytes, pause: float, second: bytes) -> AsyncIterator[bytes]:
    yield first
    await asyncio.sleep(pause)
    yield second


async def test_multiline_timeout_emits_the_pending_event_after_a_pause() -> None:
    def run(timeout: float) -> ProcessingConfig:
        return ProcessingConfig(multiline=MultilineConfig(pattern=r"^\s", match="after", timeout=timeout))

    async def messages(cfg: ProcessingConfig) -> list[str]:
        out = _Collect()
        pipeline = Pipeline(PipelineConfig(), out, _Dead(out))  # type: ignore[arg-type]
        await pipeline.ingest(_slow_chunks(b"A start\n  one\n", 0.3, b"  two\nB\n"), Origin("src", "s3", "b", "k"),
                              "generic", ParseContext(), AckSet("t"), processing=cfg)
        return [d.body["message"] for d in out.docs]

    assert await messages(run(60.0)) == ["A start\n  one\n  two", "B"]
    assert await messages(run(0.1)) == ["A start\n  one", "  two", "B"]
