"""A body the cluster took whole (`errors: false`) is settled per run of one unit's documents, not per item."""

from __future__ import annotations

from worker.config import OpenSearchConfig
from worker.model import AckSet, Document, Origin, Outcome
from worker.sinks.opensearch import OpenSearchSink


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
