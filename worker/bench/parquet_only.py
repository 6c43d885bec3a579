"""The Parquet sink alone, in this process: its cost per document without S3, SQS or parsing around it.

The real `ParquetSink` (grouping, partitioning, columnar conversion, encoding, part cuts) writes into an in-memory
stand-in for S3. Documents are handed over as the pipeline does (`add` per document, `ready` per slice), one unit
of work per `unit_rows` documents with an S3 origin each, and the clock stops when every unit is settled, that
is when every file is written. Set next to the OpenSearch sink's figures, it answers "what does the light engine
cost per core".
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from worker.config import ParquetConfig
from worker.model import AckSet, Document, Origin
from worker.pipeline import PARSE_SLICE
from worker.sinks.parquet import ParquetSink

UNIT_ROWS = 10_000
"""Documents per unit of work: about one S3 object of load-balancer or flow logs."""


class MemoryS3:
    """The five S3 calls the sink makes, kept in a dict: `objects[key] = bytes`."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self._uploads: dict[str, list[bytes]] = {}

    async def client(self, service: str) -> MemoryS3:
        return self

    async def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:
        self.objects[Key] = bytes(Body)
        return {"ETag": '"memory"'}

    async def create_multipart_upload(self, *, Bucket: str, Key: str, **_: Any) -> dict[str, Any]:
        upload_id = f"{Key}#{len(self._uploads)}"
        self._uploads[upload_id] = []
        return {"UploadId": upload_id}

    async def upload_part(self, *, UploadId: str, PartNumber: int, Body: bytes, **_: Any) -> dict[str, Any]:
        self._uploads[UploadId].append(bytes(Body))
        return {"ETag": f'"{PartNumber}"'}

    async def complete_multipart_upload(self, *, Key: str, UploadId: str, **_: Any) -> dict[str, Any]:
        self.objects[Key] = b"".join(self._uploads.pop(UploadId))
        return {}

    async def abort_multipart_upload(self, *, UploadId: str, **_: Any) -> dict[str, Any]:
        self._uploads.pop(UploadId, None)
        return {}


async def run_async(log_type: str, documents: Sequence[dict[str, Any]], cfg: ParquetConfig | None = None,
                    unit_rows: int = UNIT_ROWS) -> tuple[float, float, int, int]:
    """(wall seconds, CPU seconds of this process, rows written, Parquet bytes written) for `documents`.

    The documents are only read (a sink takes their values), so one parsed list can be measured again."""
    cfg = cfg or ParquetConfig(bucket="bench")
    s3 = MemoryS3()
    sink = ParquetSink(cfg, s3)
    acks: list[AckSet] = []
    async with sink:
        wall, cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(documents), unit_rows):
            ack = AckSet(f"bench/{start}")
            acks.append(ack)
            origin = Origin("bench", "s3", "bench", f"{log_type}/{start}.log.gz", f"etag:{start}")
            prefix = origin.id_prefix()
            unit = documents[start:start + unit_rows]
            for first in range(0, len(unit), PARSE_SLICE):
                for offset in range(first, min(first + PARSE_SLICE, len(unit))):
                    ack.add(1)
                    sink.add(Document(f"{prefix}.{offset}", log_type, unit[offset], ack, origin, offset))
                await sink.ready()
            ack.seal()
        results = await asyncio.gather(*(ack.wait() for ack in acks))
        seconds, cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu
    if not all(results):
        raise RuntimeError("the Parquet sink failed a unit in memory")
    return seconds, cpu_seconds, len(documents), sum(len(data) for data in s3.objects.values())


def run(log_type: str, documents: Sequence[dict[str, Any]], cfg: ParquetConfig | None = None,
        unit_rows: int = UNIT_ROWS) -> tuple[float, float, int, int]:
    """`run_async` in a loop of its own (for callers outside asyncio)."""
    return asyncio.run(run_async(log_type, documents, cfg, unit_rows))
