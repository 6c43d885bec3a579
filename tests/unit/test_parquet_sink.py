"""The Parquet sink without a network: partitions, file names, part cuts, acknowledgements, failures, fan-out.

S3 is `MemoryS3` (worker/bench/parquet_only.py), the stand-in the benchmark uses; the integration tests run the
same sink against moto over sockets.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from worker.bench.parquet_only import MemoryS3
from worker.bench.parquet_only import run as bench_run
from worker.config import ParquetConfig
from worker.model import AckSet, Document, Origin, Outcome
from worker.sinks.fanout import FanoutSink
from worker.sinks.parquet import ParquetSink, event_hour, file_key, normal_prefix, partition_of

CLOUD = {"account": {"id": "123456789012"}, "region": "eu-west-1"}


class CountingS3(MemoryS3):
    def __init__(self, fail: str | None = None) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.fail = fail

    async def put_object(self, **kw: Any) -> dict[str, Any]:
        self.calls.append("put")
        if self.fail == "put":
            raise OSError("S3 is down")
        return await super().put_object(**kw)

    async def create_multipart_upload(self, **kw: Any) -> dict[str, Any]:
        self.calls.append("create")
        return await super().create_multipart_upload(**kw)

    async def upload_part(self, **kw: Any) -> dict[str, Any]:
        self.calls.append("part")
        if self.fail == "part":
            raise OSError("S3 is down")
        return await super().upload_part(**kw)

    async def complete_multipart_upload(self, **kw: Any) -> dict[str, Any]:
        self.calls.append("complete")
        return await super().complete_multipart_upload(**kw)

    async def abort_multipart_upload(self, **kw: Any) -> dict[str, Any]:
        self.calls.append("abort")
        return await super().abort_multipart_upload(**kw)


def _cfg(**over: Any) -> ParquetConfig:
    return ParquetConfig(**{"bucket": "lake", "prefix": "parquet", "retry_seconds": 0.3, **over})


def _body(i: int, hour: int = 10, message: str | None = None) -> dict[str, Any]:
    return {"@timestamp": f"2026-11-22T{hour:02d}:{i % 60:02d}:00.000Z", "message": message or f"line {i}",
            "log": {"level": "info"}, "cloud": dict(CLOUD)}


async def _ingest(sink: ParquetSink, origin: Origin, bodies: list[dict[str, Any]], log_type: str = "generic",
                  seal: bool = True) -> AckSet:
    ack = AckSet(origin.uri)
    prefix = origin.id_prefix()
    for offset, body in enumerate(bodies):
        ack.add(1)
        sink.add(Document(f"{prefix}.{offset}", log_type, body, ack, origin, offset))
        if offset % 256 == 255:
            await sink.ready()
    await sink.ready()
    if seal:
        ack.seal()
    return ack


def _origin(key: str = "app/1.log", **kw: Any) -> Origin:
    return Origin("logs", "s3", "in", key, "etag:abc", **kw)


def _rows(s3: MemoryS3) -> dict[str, pa.Table]:
    return {k: pq.read_table(pa.BufferReader(v)) for k, v in sorted(s3.objects.items())}


def test_partition_and_names() -> None:
    body = {"@timestamp": "2026-11-22T05:59:59.999Z", "cloud": CLOUD}
    assert partition_of("alb", body) == "log_type=alb/account_id=123456789012/region=eu-west-1/event_hour=2026112205/"
    assert partition_of("alb", {}) == "log_type=alb/account_id=unknown/region=unknown/event_hour=unknown/"
    assert partition_of("waf", {"@timestamp": "2026-11-22T01:00:00+02:00", "cloud": {"account": {"id": "a/b"}}}) \
        == "log_type=waf/account_id=a_b/region=unknown/event_hour=2026112123/"
    assert event_hour("2026-11-22T23:00:00.123456Z") == "2026112223"
    assert event_hour(1795392000000) == "2026112300"
    assert event_hour("not a time") == event_hour(None) == "unknown"
    assert normal_prefix("/parquet") == "parquet/" and normal_prefix("") == ""
    assert file_key("p/", "log_type=x/", "_bC", 2) == "p/log_type=x/u-_bC-2.parquet"  # never a leading `_`


async def test_a_unit_is_written_when_sealed_and_acked_after_the_write() -> None:
    s3 = CountingS3()
    async with ParquetSink(_cfg(), s3) as sink:
        origin = _origin()
        bodies = [_body(i, hour=10 + i % 2) for i in range(500)]
        ack = await _ingest(sink, origin, bodies, seal=False)
        await asyncio.sleep(0.05)
        assert s3.objects == {} and not ack.done  # the input is not finished: nothing may be written yet
        ack.seal()
        assert await asyncio.wait_for(ack.wait(), 10)
    assert ack.counts[Outcome.DELIVERED] == 500
    prefix = origin.id_prefix()
    assert sorted(s3.objects) == [
        f"parquet/log_type=generic/account_id=123456789012/region=eu-west-1/event_hour=20261122{h}/u-{prefix}-0.parquet"
        for h in ("10", "11")]
    tables = _rows(s3)
    ids = sorted(i for t in tables.values() for i in t.column("sluice_id").to_pylist())
    assert ids == sorted(f"{prefix}.{i}" for i in range(500))
    first = next(iter(tables.values()))
    assert first.schema.field("timestamp").type == pa.timestamp("ms", tz="UTC")
    assert first.column("log").to_pylist()[0] == {"level": "info"}
    assert pq.ParquetFile(pa.BufferReader(next(iter(s3.objects.values())))).metadata.row_group(0).column(0) \
        .compression == "ZSTD"


async def test_a_redelivered_unit_rewrites_the_same_keys_with_the_same_rows() -> None:
    bodies = [_body(i, hour=i % 3) for i in range(3000)]
    stores = []
    for _ in range(2):
        s3 = MemoryS3()
        async with ParquetSink(_cfg(row_group_rows=1000), s3) as sink:
            ack = await _ingest(sink, _origin(), bodies)
            assert await asyncio.wait_for(ack.wait(), 10)
        stores.append(s3.objects)
    assert stores[0].keys() == stores[1].keys() and len(stores[0]) == 3
    for key in stores[0]:
        assert pq.read_table(pa.BufferReader(stores[0][key])).equals(pq.read_table(pa.BufferReader(stores[1][key])))


async def test_a_big_unit_is_cut_into_parts_at_the_same_rows_every_time() -> None:
    # Incompressible messages: ~1.3 MB of Parquet per 1000 rows, files cut at 1 MiB, row groups of 1000 rows.
    bodies = [_body(i, message=os.urandom(600).hex()) for i in range(4500)]
    layouts = []
    for _ in range(2):
        s3 = CountingS3()
        async with ParquetSink(_cfg(row_group_rows=1000, max_file_bytes=1 << 20), s3) as sink:
            ack = await _ingest(sink, _origin(), bodies)
            assert await asyncio.wait_for(ack.wait(), 20)
        tables = _rows(s3)
        layouts.append({k.rsplit("/", 1)[1]: t.num_rows for k, t in tables.items()})
        assert sum(t.num_rows for t in tables.values()) == 4500
    assert layouts[0] == layouts[1]
    assert len(layouts[0]) >= 3 and all(n % 1000 == 0 for n in list(layouts[0].values())[:-1])
    assert sorted(layouts[0]) == sorted(f"u-{_origin().id_prefix()}-{n}.parquet" for n in range(len(layouts[0])))


async def test_a_file_past_the_part_size_is_a_multipart_upload() -> None:
    bodies = [_body(i, message=os.urandom(1500).hex()) for i in range(6000)]  # ~9 MB of Parquet
    s3 = CountingS3()
    async with ParquetSink(_cfg(row_group_rows=1000, multipart_part_bytes=5 << 20), s3) as sink:
        ack = await _ingest(sink, _origin(), bodies)
        assert await asyncio.wait_for(ack.wait(), 20)
    assert s3.calls.count("create") == 1 and s3.calls.count("complete") == 1 and "put" not in s3.calls
    assert s3.calls.count("part") == 2
    (table,) = _rows(s3).values()
    assert table.num_rows == 6000 and table.column("message").to_pylist()[7] == bodies[7]["message"]


@pytest.mark.parametrize("fail", ["put", "part"])
async def test_a_failing_write_hands_the_unit_back(fail: str) -> None:
    s3 = CountingS3(fail=fail)
    n = 6000 if fail == "part" else 10
    bodies = [_body(i, message=os.urandom(1500).hex() if fail == "part" else None) for i in range(n)]
    async with ParquetSink(_cfg(row_group_rows=1000, multipart_part_bytes=5 << 20), s3) as sink:
        ack = await _ingest(sink, _origin(), bodies)
        assert await asyncio.wait_for(ack.wait(), 20) is False
    assert ack.counts[Outcome.RETRY] == n and ack.pending == 0
    assert s3.objects == {}
    if fail == "part":
        await asyncio.sleep(0.05)
        assert "abort" in s3.calls


async def test_kinesis_batches_share_one_file_named_by_their_first_record() -> None:
    s3 = MemoryS3()
    async with ParquetSink(_cfg(), s3) as sink:
        ack = AckSet("shard-1/100-102")
        origins = [Origin("stream", "kinesis", key="s/shard-1", version=str(seq)) for seq in (100, 101, 102)]
        for origin in origins:
            ack.add(1)
            sink.add(Document(origin.id_prefix() + ".0", "generic", _body(1), ack, origin, 0))
        await sink.ready()
        ack.seal()
        assert await asyncio.wait_for(ack.wait(), 10)
    (key,) = s3.objects
    assert key.endswith(f"/u-{origins[0].id_prefix()}-0.parquet")


async def test_a_replayed_record_never_overwrites_its_objects_file() -> None:
    s3 = MemoryS3()
    async with ParquetSink(_cfg(), s3) as sink:
        first = await _ingest(sink, _origin(), [_body(i) for i in range(5)])
        replayed = _origin(extra=(("attempts", "1"),))
        ack = AckSet("replay#0")
        ack.add(1)
        sink.add(Document(f"{_origin().id_prefix()}.7", "generic", _body(7), ack, replayed, 7))
        ack.seal()
        assert await asyncio.wait_for(first.wait(), 10) and await asyncio.wait_for(ack.wait(), 10)
    names = sorted(k.rsplit("/", 1)[1] for k in s3.objects)
    prefix = replayed.id_prefix()
    assert names == sorted([f"u-{prefix}-0.parquet", f"u-{prefix}-r7-0.parquet"])


async def test_units_never_sealed_are_handed_back_at_close() -> None:
    s3 = MemoryS3()
    sink = ParquetSink(_cfg(), s3)
    await sink.__aenter__()
    ack = await _ingest(sink, _origin(), [_body(i) for i in range(3)], seal=False)
    await sink.close(timeout=5)
    assert ack.counts[Outcome.RETRY] == 3 and ack.pending == 0 and s3.objects == {}


async def test_a_failed_unit_is_not_written() -> None:
    s3 = MemoryS3()
    async with ParquetSink(_cfg(), s3) as sink:
        ack = await _ingest(sink, _origin(), [_body(i) for i in range(3)], seal=False)
        ack.fail("reading the object failed")
        ack.seal()
        assert await asyncio.wait_for(ack.wait(), 10) is False
    assert s3.objects == {}


class _Recorder:
    def __init__(self) -> None:
        self.docs: list[Document] = []
        self.bodies: list[dict[str, Any]] = []

    def add(self, doc: Document) -> None:
        self.docs.append(doc)
        assert isinstance(doc.body, dict)
        self.bodies.append(doc.body)
        doc.body = {}  # as the OpenSearch sink does once it has serialised the document

    def takes_serialized(self, source: str) -> bool:
        return False

    async def ready(self) -> None:
        pass

    async def submit(self, docs: list[Document]) -> None:
        for doc in docs:
            self.add(doc)

    def idle(self) -> None:
        pass


async def test_fanout_counts_a_document_once_per_sink_and_parquet_sees_the_dict() -> None:
    s3 = MemoryS3()
    opensearch = _Recorder()
    async with ParquetSink(_cfg(), s3) as parquet:
        fan = FanoutSink({"both": [parquet, opensearch], "search": [opensearch], "lake": [parquet]}, [opensearch])
        acks = {}
        for source in ("both", "search", "lake", "gone"):
            origin = Origin(source, "s3", "in", f"{source}.log", "etag:1")
            ack = acks[source] = AckSet(source)
            docs = []
            for i in range(4):
                ack.add(1)
                docs.append(Document(f"{origin.id_prefix()}.{i}", "generic", _body(i), ack, origin, i))
            await fan.submit(docs)
            ack.seal()
            fan.idle()
        assert acks["both"].pending == 8 and acks["search"].pending == 4 and acks["gone"].pending == 4
        for doc in opensearch.docs:
            doc.ack.settle(Outcome.DELIVERED)
        assert await asyncio.wait_for(acks["search"].wait(), 5) and await asyncio.wait_for(acks["gone"].wait(), 5)
        assert await asyncio.wait_for(acks["both"].wait(), 5) and await asyncio.wait_for(acks["lake"].wait(), 5)
    assert acks["both"].counts[Outcome.DELIVERED] == 8
    tables = _rows(s3)
    assert len(tables) == 2 and all(t.num_rows == 4 for t in tables.values())
    assert all(t.column("message").to_pylist() == [f"line {i}" for i in range(4)] for t in tables.values())
    assert len(opensearch.docs) == 12


def test_bench_function_measures_the_sink() -> None:
    bodies = [_body(i) for i in range(3000)]
    seconds, cpu, rows, size = bench_run("generic", bodies, unit_rows=1000)
    assert rows == 3000 and seconds > 0 and cpu > 0 and size > 1000
