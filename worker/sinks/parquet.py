"""Parquet sink: documents -> Hive-partitioned Parquet files on S3, one set of files per unit of work.

Why this shape (docs/parquet.md has the long version):
- At-least-once without duplicate rows: a file holds the documents of ONE unit (an S3 object, an SQS message, a
  Kinesis batch) in ONE partition, and its key is derived from the unit's identity (`Origin.id_prefix()`, the
  hash the document ids start with) and a part number. A redelivered unit yields the same documents in the same
  order, so the same keys with the same rows: the PUT overwrites, nothing is added.
- A unit's files are written once its input is finished: the source seals its `AckSet` after the last
  document was submitted; the sink hears it (`AckSet.on_seal`) and writes. The
  documents are settled DELIVERED when their file is in S3 (RETRY if the writes keep failing), so the unit is
  acknowledged only with its rows durable. Files are never rolled across units: holding a unit's ack for
  minutes to fill a bigger file would stall the source (`max_in_flight`); `sluice compact` merges small files.
- A big unit is cut into parts at `max_file_bytes` (after the row group that crosses it: a deterministic point),
  each streamed to S3 as a multipart upload once it passes `multipart_part_bytes`; smaller files are one PUT.
  A crash leaves an incomplete multipart upload (invisible; a bucket lifecycle rule aborts it), never a
  half-written object.
- Memory: a document's values are taken into per-column lists as soon as it arrives (`add`: the dict is not
  kept); per open file there are up to 8192 such rows, up to `row_group_rows` rows as Arrow columns and one
  upload part.

Partitions: `<prefix>log_type=<t>/account_id=<a>/region=<r>/event_hour=YYYYMMDDHH/` from the document's
`@timestamp` (UTC), `cloud.account.id` and `cloud.region`; `unknown` where a document has none.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from tenacity import AsyncRetrying, stop_after_delay, wait_exponential_jitter

from worker import telemetry as m
from worker.config import ParquetConfig
from worker.model import AckSet, Document, Origin, Outcome
from worker.parsers._fields import epoch_ms_to_iso, iso_to_utc_ms
from worker.sinks.arrow_schema import Converter, Rows

log = m.get_logger("sluice.parquet")

CONVERT_ROWS = 8192
"""Rows turned into an Arrow record batch at once: big enough for columnar conversion to pay, small enough that
the Python value lists waiting for it stay small."""
CONTENT_TYPE = "application/vnd.apache.parquet"
UNKNOWN = "unknown"

_SAFE_VALUE = re.compile(r"[A-Za-z0-9_.-]{1,128}")


class S3Clients(Protocol):
    """What the sink needs of `AwsClients` (a stand-in writes to memory in `worker/bench/parquet_only.py`)."""

    async def client(self, service: str) -> Any: ...


def _partition_value(value: Any) -> str:
    """A path-safe partition value; `unknown` when absent. Account ids and regions are safe as they are."""
    if value is None or value == "":
        return UNKNOWN
    text = value if isinstance(value, str) else str(value)
    if _SAFE_VALUE.fullmatch(text):
        return text
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)[:128] or UNKNOWN


def event_hour(timestamp: Any) -> str:
    """`YYYYMMDDHH` (UTC) of a document's `@timestamp`: the normalised `...Z` text parsers write is sliced, any
    other ISO 8601 form or epoch milliseconds is converted; `unknown` when there is no usable time."""
    if isinstance(timestamp, str):
        if len(timestamp) >= 14 and timestamp[-1] == "Z" and timestamp[4] == "-" and timestamp[10] == "T":
            hour = timestamp[0:4] + timestamp[5:7] + timestamp[8:10] + timestamp[11:13]
            if hour.isdigit():
                return hour
        try:
            normal = iso_to_utc_ms(timestamp)
        except ValueError:
            return UNKNOWN
        return normal[0:4] + normal[5:7] + normal[8:10] + normal[11:13]
    if isinstance(timestamp, int | float) and not isinstance(timestamp, bool):
        try:
            normal = epoch_ms_to_iso(int(timestamp))
        except ValueError:
            return UNKNOWN
        return normal[0:4] + normal[5:7] + normal[8:10] + normal[11:13]
    return UNKNOWN


_PARTITIONS: dict[tuple[str, Any, Any, str], str] = {}


def partition_of(log_type: str, body: dict[str, Any]) -> str:
    """The partition directory of one document (relative to the prefix, with a trailing slash); cached by
    (log type, account, region, the first 13 characters of a `...Z` timestamp), as a stream repeats them."""
    cloud = body.get("cloud")
    account = region = None
    if type(cloud) is dict:
        acc = cloud.get("account")
        account = acc.get("id") if type(acc) is dict else None
        region = cloud.get("region")
    ts = body.get("@timestamp")
    hour_key = ts[:13] if type(ts) is str and ts[-1:] == "Z" else ""
    key = (log_type, account, region, hour_key)
    try:
        found = _PARTITIONS.get(key) if hour_key else None
    except TypeError:  # an unhashable account or region (a parser bug): not cached
        found, hour_key = None, ""
    if found is None:
        found = (f"log_type={_partition_value(log_type)}/account_id={_partition_value(account)}/"
                 f"region={_partition_value(region)}/event_hour={event_hour(ts)}/")
        if hour_key:
            if len(_PARTITIONS) > 65536:
                _PARTITIONS.clear()
            _PARTITIONS[key] = found
    return found


FILE_PREFIX = "u-"
"""Every file name starts with it: an id prefix is URL-safe base64 and may start with `_`, and readers (Athena,
Hive, pyarrow) skip files whose names start with `_` or `.`."""


def file_key(prefix: str, partition: str, base: str, part: int) -> str:
    """`<prefix><partition>u-<base>-<part>.parquet`: the same unit, partition and part always give the same key."""
    return f"{prefix}{partition}{FILE_PREFIX}{base}-{part}.parquet"


def normal_prefix(prefix: str) -> str:
    """The dataset prefix as a key prefix: no leading slash, a trailing one unless empty."""
    prefix = prefix.lstrip("/")
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def replay_attempts(origin: Origin) -> str | None:
    """The `attempts` a replayed document's origin carries (worker/replay/plan.py `origin_of`), else None."""
    for name, value in origin.extra:
        if name == "attempts":
            return value
    return None


class _Spool:
    """The file a ParquetWriter writes into: bytes wait here until they are uploaded; `tell` counts them all."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.total = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self.buffer += data
        self.total += len(data)
        return len(data)

    def tell(self) -> int:
        return self.total

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def take(self) -> bytes:
        data = bytes(self.buffer)
        self.buffer.clear()
        return data


class _UploadFailed(Exception):
    """Writing a file to S3 failed for good (retries exhausted)."""


@dataclass(slots=True, eq=False)
class _Group:
    """The documents of one unit that go to the same files: those of one origin (an S3 object, an SQS message),
    or of the whole batch for Kinesis, whose records each have an origin of their own."""

    ack: AckSet
    origin: Origin
    """The origin of the group's first document: its id prefix names the files."""
    first_offset: int
    single_offset: bool = True
    base: str = ""
    """The file name stem, fixed when the first file is written."""
    failed: bool = False
    files: dict[str, _File] = field(default_factory=dict)
    """By partition directory."""

    def name(self) -> str:
        """`<origin id prefix>`; a replayed record (its own unit, one offset) adds `-r<offset>`, so it never
        overwrites the files of the object it came from."""
        if not self.base:
            self.base = self.origin.id_prefix()
            if self.single_offset and replay_attempts(self.origin) is not None:
                self.base += f"-r{self.first_offset}"
        return self.base


@dataclass(slots=True, eq=False)
class _File:
    """The current part of one group's file in one partition."""

    log_type: str
    partition: str
    pending: Rows
    """Documents taken apart into columns, not yet a record batch."""
    part: int = 0
    batches: list[pa.RecordBatch] = field(default_factory=list)
    batch_rows: int = 0
    rows: int = 0
    """Rows of this part (in `pending`, `batches` or encoded); settled together when the part is in S3."""
    writer: pq.ParquetWriter | None = None
    spool: _Spool | None = None
    upload_id: str | None = None
    parts: list[dict[str, Any]] = field(default_factory=list)
    key: str = ""
    due: bool = False
    """Queued for `ready` to encode its full row groups."""
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while encoding or uploading: `ready` of any unit, and the unit's own finish, may reach one file."""


class ParquetSink:
    """Lifecycle: `async with ParquetSink(cfg, aws) as sink:` (or `close(timeout)`), like OpenSearchSink.

    Intake follows the pipeline's `Sink` protocol: `add` takes a document's values into columns at once (the
    dict is not kept), `ready` encodes and uploads what filled up (the backpressure), `submit` is both."""

    def __init__(self, cfg: ParquetConfig, aws: S3Clients) -> None:
        self.cfg = cfg
        self.aws = aws
        self.prefix = normal_prefix(cfg.prefix)
        self._converters: dict[str, Converter] = {}
        self._units: dict[int, tuple[AckSet, dict[Hashable, _Group]]] = {}
        """Open units by `id(ack)`: their groups, until the unit is sealed and handed to a writer task."""
        self._due: list[tuple[_Group, _File]] = []
        self._writing: set[asyncio.Task[None]] = set()
        self._uploads = asyncio.Semaphore(cfg.max_concurrent_uploads)
        self._closing = False
        self._buffered = 0
        self._open_files = 0

    async def __aenter__(self) -> ParquetSink:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- intake --------------------------------------------------------------------------------------------

    def takes_serialized(self, source: str) -> bool:
        return False  # its columns are filled from the dict

    def add(self, doc: Document) -> None:
        """Take one document's values into its file's columns now; never waits (`ready` does)."""
        group = self._group(doc)
        if group.failed:
            doc.ack.settle(Outcome.RETRY)
            return
        if doc.offset != group.first_offset:
            group.single_offset = False
        body = doc.body
        if not isinstance(body, dict):
            raise TypeError("the Parquet sink takes documents as dicts (its takes_serialized is False)")
        partition = partition_of(doc.log_type, body)
        f = group.files.get(partition)
        if f is None:
            f = group.files[partition] = _File(doc.log_type, partition, self._converter(doc.log_type).rows())
            self._open_files += 1
        f.pending.add(body, doc.id)
        f.rows += 1
        self._buffered += 1
        if len(f.pending) >= CONVERT_ROWS:
            self._convert(f)
            if f.batch_rows >= self.cfg.row_group_rows and not f.due:
                f.due = True
                self._due.append((group, f))

    async def ready(self) -> None:
        """Encode the row groups that filled up and upload full parts; awaits S3 when a file is big enough."""
        while self._due:
            group, f = self._due.pop(0)
            f.due = False
            if not group.failed:
                async with f.lock:
                    await self._write_row_groups(group, f)
        m.PARQUET_BUFFERED_ROWS.set(self._buffered)
        m.PARQUET_OPEN_FILES.set(self._open_files)

    async def submit(self, docs: list[Document]) -> None:
        for doc in docs:
            self.add(doc)
        await self.ready()

    def idle(self) -> None:
        """Nothing to do: a unit is written as soon as it is sealed (`AckSet.on_seal`)."""

    def _converter(self, log_type: str) -> Converter:
        converter = self._converters.get(log_type)
        if converter is None:
            converter = self._converters[log_type] = Converter(log_type)
        return converter

    def _group(self, doc: Document) -> _Group:
        ack = doc.ack
        unit = self._units.get(id(ack))  # the id of an ack held here cannot be reused
        if unit is None:
            unit_id = id(ack)
            unit = self._units[unit_id] = (ack, {})
            ack.on_seal(lambda: self._sealed(unit_id))
        origin = doc.origin
        # Kinesis: one group per batch (its records are origins of their own); else one per origin.
        key: Hashable = None if origin.kind == "kinesis" else origin
        group = unit[1].get(key)
        if group is None:
            group = unit[1][key] = _Group(ack, origin, doc.offset)
        return group

    async def flush(self) -> None:
        """Write the units whose input is finished and wait for every write under way. Units still being read
        cannot be written early (their files would not be the same on a redelivery): they stay buffered."""
        await self.ready()
        self._hand_over_sealed()
        while self._writing:
            await asyncio.gather(*list(self._writing), return_exceptions=True)

    async def close(self, timeout: float | None = None) -> None:
        """Write what is complete; documents of units never sealed (abandoned at shutdown) settle RETRY. After
        `timeout` seconds, writes still under way are cancelled: their units are redelivered, not lost."""
        if self._closing:
            return
        self._closing = True
        try:
            await asyncio.wait_for(self.flush(), timeout)
        except TimeoutError:
            log.warning("parquet_writes_abandoned", files=self._open_files, note="units will be redelivered")
            for task in list(self._writing):
                task.cancel()
            await asyncio.gather(*list(self._writing), return_exceptions=True)
        for _ack, groups in list(self._units.values()):
            for group in groups.values():
                self._give_up(group, abort=False)
        self._units.clear()

    # --- units finished -------------------------------------------------------------------------------------

    def _sealed(self, unit_id: int) -> None:
        """A unit's input is finished: write its files (a task of its own). At close, `flush` takes them."""
        if not self._closing:
            self._start_writing(unit_id)

    def _start_writing(self, unit_id: int) -> None:
        unit = self._units.pop(unit_id, None)
        if unit is None:
            return
        ack, groups = unit
        task = asyncio.create_task(self._finish_unit(ack, list(groups.values())), name=f"parquet-{ack.name}")
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)

    def _hand_over_sealed(self) -> None:
        for unit_id, (ack, _groups) in list(self._units.items()):
            if ack.sealed:
                self._start_writing(unit_id)

    async def _finish_unit(self, ack: AckSet, groups: list[_Group]) -> None:
        if ack.failed:  # the unit is redelivered anyway: writing its files now would be wasted
            for group in groups:
                self._give_up(group)
            return
        try:
            await asyncio.gather(*(self._finish_file(group, f) for group in groups for f in list(group.files.values())))
        except BaseException:
            for group in groups:
                self._give_up(group)
            raise

    async def _finish_file(self, group: _Group, f: _File) -> None:
        async with f.lock:
            if group.failed:
                return
            if len(f.pending):
                self._convert(f)
            await self._write_row_groups(group, f, final=True)
            if f.rows and not group.failed:
                await self._complete(group, f)
            if group.failed:  # `_give_up` dropped the group's files
                return
            group.files.pop(f.partition, None)
            self._open_files -= 1
        m.PARQUET_OPEN_FILES.set(self._open_files)

    def _give_up(self, group: _Group, abort: bool = True) -> None:
        """Settle every row still held for the group as RETRY (its unit is redelivered) and drop its files."""
        group.failed = True
        for f in group.files.values():
            if f.rows:
                group.ack.settle(Outcome.RETRY, f.rows)
                self._buffered -= len(f.pending) + f.batch_rows
            if f.upload_id is not None and abort:
                upload_id, f.upload_id = f.upload_id, None
                task = asyncio.create_task(self._abort(f.key, upload_id))
                self._writing.add(task)
                task.add_done_callback(self._writing.discard)
            f.rows = f.batch_rows = 0
            f.batches = []
            f.pending = self._converter(f.log_type).rows()
            self._open_files -= 1
        group.files.clear()
        m.PARQUET_BUFFERED_ROWS.set(self._buffered)
        m.PARQUET_OPEN_FILES.set(self._open_files)

    # --- encoding -------------------------------------------------------------------------------------------

    def _convert(self, f: _File) -> None:
        converter = self._converter(f.log_type)
        before = converter.misfits
        rows = len(f.pending)
        f.batches.append(f.pending.take())
        if converter.misfits != before:
            m.PARQUET_MISFITS.labels(f.log_type).inc(converter.misfits - before)
        f.batch_rows += rows

    async def _write_row_groups(self, group: _Group, f: _File, final: bool = False) -> None:
        """Encode full row groups (and, when `final`, the rest); upload full parts; cut the file at the size
        target. Every cut depends only on the unit's documents, so a redelivery cuts at the same rows."""
        size = self.cfg.row_group_rows
        while f.batch_rows >= size or (final and f.batch_rows):
            table = pa.Table.from_batches(f.batches)
            take = min(size, f.batch_rows)
            rest = table.slice(take)
            f.batches = rest.to_batches() if rest.num_rows else []
            f.batch_rows -= take
            self._buffered -= take
            if f.writer is None:
                f.spool = _Spool()
                f.writer = pq.ParquetWriter(f.spool, table.schema, compression=self.cfg.compression,
                                            compression_level=self.cfg.compression_level)
            chunk = table.slice(0, take)
            if take >= 4096:  # encoding releases the GIL: let it run beside the parsers
                await asyncio.to_thread(f.writer.write_table, chunk, row_group_size=size)
            else:
                f.writer.write_table(chunk, row_group_size=size)
            if group.failed:
                return
            assert f.spool is not None
            if len(f.spool.buffer) >= self.cfg.multipart_part_bytes:
                await self._upload_part(group, f, f.spool.take())
                if group.failed:
                    return
            if f.spool.total >= self.cfg.max_file_bytes and (f.batch_rows or len(f.pending) or not final):
                await self._complete(group, f)
                if group.failed:
                    return

    # --- S3 -------------------------------------------------------------------------------------------------

    def _retrying(self) -> AsyncRetrying:
        return AsyncRetrying(stop=stop_after_delay(self.cfg.retry_seconds),
                             wait=wait_exponential_jitter(multiplier=0.5, max=10, jitter=0.5), reraise=True)

    async def _s3_call(self, what: str, f: _File, **kwargs: Any) -> Any:
        s3 = await self.aws.client("s3")
        method = getattr(s3, what)
        async with self._uploads:
            start = time.perf_counter()
            try:
                async for attempt in self._retrying():
                    with attempt:
                        return await method(Bucket=self.cfg.bucket, Key=f.key, **kwargs)
            except Exception as exc:
                m.PARQUET_WRITE_FAILURES.labels(f.log_type).inc()
                log.error("parquet_write_failed", call=what, key=f.key, error=str(exc)[:300])
                raise _UploadFailed(f"{what} s3://{self.cfg.bucket}/{f.key}: {exc}") from exc
            finally:
                m.PARQUET_S3_LATENCY.observe(time.perf_counter() - start)
        raise AssertionError("unreachable")

    async def _upload_part(self, group: _Group, f: _File, data: bytes) -> None:
        if not f.key:
            f.key = file_key(self.prefix, f.partition, group.name(), f.part)
        try:
            if f.upload_id is None:
                resp = await self._s3_call("create_multipart_upload", f, ContentType=CONTENT_TYPE)
                f.upload_id = resp["UploadId"]
            number = len(f.parts) + 1
            resp = await self._s3_call("upload_part", f, UploadId=f.upload_id, PartNumber=number, Body=data)
            f.parts.append({"ETag": resp["ETag"], "PartNumber": number})
        except _UploadFailed:
            self._give_up(group)

    async def _complete(self, group: _Group, f: _File) -> None:
        """Close the writer, put the file (or finish its multipart upload), settle its rows, start the next part."""
        assert f.writer is not None and f.spool is not None
        f.writer.close()  # writes the footer: the row groups are in the spool (or uploaded) already
        if not f.key:
            f.key = file_key(self.prefix, f.partition, group.name(), f.part)
        rest = f.spool.take()
        size = f.spool.total
        rows = f.rows - f.batch_rows - len(f.pending)
        try:
            if f.upload_id is None:
                await self._s3_call("put_object", f, Body=rest, ContentType=CONTENT_TYPE)
                kind = "put"
            else:
                if rest:
                    number = len(f.parts) + 1
                    resp = await self._s3_call("upload_part", f, UploadId=f.upload_id, PartNumber=number, Body=rest)
                    f.parts.append({"ETag": resp["ETag"], "PartNumber": number})
                await self._s3_call("complete_multipart_upload", f, UploadId=f.upload_id,
                                    MultipartUpload={"Parts": f.parts})
                kind = "multipart"
        except _UploadFailed:
            self._give_up(group)
            return
        if group.failed:  # another file of the group failed meanwhile: these rows were settled RETRY with it
            return
        group.ack.settle(Outcome.DELIVERED, rows)
        m.PARQUET_ROWS.labels(f.log_type).inc(rows)
        m.PARQUET_FILES.labels(f.log_type, kind).inc()
        m.PARQUET_BYTES.labels(f.log_type).inc(size)
        log.debug("parquet_file_written", key=f.key, rows=rows, bytes=size, upload=kind)
        f.rows -= rows
        f.part += 1
        f.writer, f.spool, f.upload_id, f.parts, f.key = None, None, None, [], ""

    async def _abort(self, key: str, upload_id: str) -> None:
        """Best effort: a multipart upload left behind is invisible and a lifecycle rule removes it."""
        try:
            s3 = await self.aws.client("s3")
            await s3.abort_multipart_upload(Bucket=self.cfg.bucket, Key=key, UploadId=upload_id)
        except Exception as exc:
            log.warning("parquet_abort_failed", key=key, error=str(exc)[:300])
