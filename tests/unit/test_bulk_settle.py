"""A body the cluster took whole (`errors: false`) is settled per run of one unit's documents, not per item."""

from __future__ import annotations

import orjson
import pytest

from worker.config import OpenSearchConfig
from worker.model import AckSet, Document, Origin, Outcome
from worker.sinks.opensearch import OpenSearchSink, RetryableBulkError, _FastJSON


def _sink() -> OpenSearchSink:
    return OpenSearchSink(OpenSearchConfig(hosts=["http://127.0.0.1:9"]), None, None)  # type: ignore[arg-type]


def _doc(i: int, ack: AckSet, log_type: str = "generic") -> Document:
    return Document(f"id{i}", log_type, {"@timestamp": "2026-01-01T00:00:00Z", "n": i}, ack, Origin("s", "s3"))


async def test_runs_follow_units_and_log_types_in_body_order() -> None:
    sink = _sink()
    a, b = AckSet("a"), AckSet("b")
    for doc in (_doc(0, a), _doc(1, a), _doc(2, b), _doc(3, b, "alb"), _doc(4, a)):
        sink.add(doc)
    runs = [(ack.name, log_type, n) for ack, log_type, n in sink._batch.runs]
    assert runs == [("a", "generic", 2), ("b", "generic", 1), ("b", "alb", 1), ("a", "generic", 1)]


async def test_errors_false_settles_every_document_once() -> None:
    sink = _sink()
    a, b = AckSet("a"), AckSet("b")
    a.add(3)
    b.add(2)
    for doc in (_doc(0, a), _doc(1, b), _doc(2, b), _doc(3, a), _doc(4, a)):
        sink.add(doc)
    batch = sink._batch
    assert not sink._all_delivered(batch, {"errors": True, "items": [{}] * 5})
    assert not sink._all_delivered(batch, {"errors": False, "items": [{}] * 4})  # an item missing: look closer
    assert a.counts[Outcome.DELIVERED] == b.counts[Outcome.DELIVERED] == 0
    assert sink._all_delivered(batch, {"errors": False, "items": [{"create": {"status": 201}}] * 5})
    assert a.counts[Outcome.DELIVERED] == 3
    assert b.counts[Outcome.DELIVERED] == 2


def test_a_response_without_failures_is_counted_not_decoded() -> None:
    """`errors: false` under the worker's filter_path: the items are counted (one status each), never decoded;
    anything else is decoded in full."""
    fast = _FastJSON()
    created = {"errors": False, "items": [{"create": {"status": 201}}] * 3}
    assert fast.loads(orjson.dumps(created).decode()) == {"errors": False, "item_count": 3}
    mixed = {"errors": True, "items": [{"create": {"status": 201}}, {"create": {"status": 409}}]}
    assert fast.loads(orjson.dumps(mixed).decode()) == mixed
    spaced = '{"errors": false, "items": [{"create": {"status": 201}}]}'  # another spelling: decoded
    assert fast.loads(spaced) == orjson.loads(spaced)
    took = {"took": 3, "errors": False, "items": [{"create": {"status": 201}}]}
    assert fast.loads(orjson.dumps(took).decode()) == took
    assert fast.loads('{"acknowledged":true}') == {"acknowledged": True}


async def test_counted_responses_settle_whole_bodies_and_retried_parts() -> None:
    sink = _sink()
    a = AckSet("a")
    a.add(4)
    for i in range(4):
        sink.add(_doc(i, a))
    batch = sink._batch
    assert not sink._all_delivered(batch, {"errors": False, "item_count": 3})  # one short: look closer
    with pytest.raises(RetryableBulkError):
        sink._outcomes(batch, [0, 1, 2, 3], {"errors": False, "item_count": 3})
    assert a.counts[Outcome.DELIVERED] == 0
    assert sink._outcomes(batch, [1, 3], {"errors": False, "item_count": 2}) == ([], 0)  # a retried part
    assert a.counts[Outcome.DELIVERED] == 2
    assert sink._all_delivered(batch, {"errors": False, "item_count": 4})
    assert a.counts[Outcome.DELIVERED] == 6  # (a real unit settles each document once; this one is a probe)


async def test_serialized_bodies_go_into_the_bulk_body_as_they_are() -> None:
    """A `Serialized` document (a parser's own JSON) is written as given, under the index of its timestamp."""
    sink = _sink()
    a = AckSet("a")
    json = b'{"@timestamp":"2026-03-04T05:06:07.000Z","n":1}'
    doc = Document("id0", "vpc_flow", ("2026-03-04T05:06:07.000Z", json), a, Origin("s", "s3"))
    sink.add(doc)
    assert doc.body == {}  # the batch holds the bytes once, in the body; the document lets go of its copy
    sink.add(_doc(1, a))
    lines = bytes(sink._batch.body).split(b"\n")
    assert orjson.loads(lines[0]) == {"create": {"_index": "sluice-vpc_flow-2026.03.04", "_id": "id0"}}
    assert lines[1] == json
    assert orjson.loads(lines[3]) == {"@timestamp": "2026-01-01T00:00:00Z", "n": 1}
    assert sink.takes_serialized("s")


async def test_action_lines_follow_each_documents_day_type_and_source() -> None:
    """The last action head is reused only while source, log type and day all repeat."""
    sink = OpenSearchSink(OpenSearchConfig(hosts=["http://127.0.0.1:9"]), None, None,  # type: ignore[arg-type]
                          source_indices={"s2": "other-{log_type}-{yyyy}.{MM}.{dd}"})
    a = AckSet("a")
    cases = [("s", "alb", "2026-01-01"), ("s", "alb", "2026-01-01"), ("s", "alb", "2026-01-02"),
             ("s", "vpc_flow", "2026-01-02"), ("s2", "vpc_flow", "2026-01-02"), ("s", "alb", "2026-01-01"),
             ("s", "alb", None), ("s", "alb", None)]
    for i, (source, log_type, day) in enumerate(cases):
        body: dict[str, object] = {"n": i} if day is None else {"@timestamp": f"{day}T00:00:00Z", "n": i}
        sink.add(Document(f"id{i}", log_type, body, a, Origin(source, "s3")))
    lines = bytes(sink._batch.body).split(b"\n")
    indices = [orjson.loads(lines[2 * i])["create"]["_index"] for i in range(len(cases))]
    today = sink.index_for("alb", None, "s")
    assert indices == ["sluice-alb-2026.01.01", "sluice-alb-2026.01.01", "sluice-alb-2026.01.02",
                       "sluice-vpc_flow-2026.01.02", "other-vpc_flow-2026.01.02", "sluice-alb-2026.01.01",
                       today, today]
