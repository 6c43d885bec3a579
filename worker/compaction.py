"""`sluice compact`: merge the small Parquet files of closed hours into large ones, dropping duplicate rows.

The sink writes one file per unit of work and partition, so an hour of a busy partition can hold thousands of
small files, which Athena reads slowly. Compaction rewrites such an hour (every file in it: the merge is also
where rows that reached two files are deduplicated, by `sluice_id`) into files of `parquet.max_file_bytes`.

An hour is compacted when it is closed (it ended `--grace` hours ago, so the worker is not writing into it any
more, save for late redeliveries) and holds at least two files, one of which is small and not itself the output
of a compaction. Outputs are named from a digest of the inputs (keys and ETags), so a rerun over the same inputs
writes the same keys. Each hour goes through a manifest, which is what makes an interrupted run converge:

1. write `_compaction-<digest>.json` (inputs and outputs) into the hour's directory (readers skip `_` files);
2. write the outputs; 3. delete the inputs; 4. delete the manifest.

A run first finishes every manifest it finds: if all of its inputs still exist it writes the outputs again (same
keys, same rows) and goes on; if some are gone, the outputs were complete before the first delete, so it only
deletes the rest. Between steps 2 and 3 (and until an interrupted run is resumed) readers see the hour's rows
twice. Run one compaction at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import orjson
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from worker import telemetry as m
from worker.aws import AwsClients
from worker.config import Config, ParquetConfig
from worker.parsers import log_types
from worker.progress import ProgressPrinter, duration
from worker.sinks.arrow_schema import ID_COLUMN, schema_for
from worker.sinks.parquet import CONTENT_TYPE, normal_prefix

log = m.get_logger("sluice.compaction")

OUTPUT_PREFIX = "c-"
"""Names of compaction outputs start with this; other files are the sink's."""
MANIFEST_PREFIX = "_compaction-"
DEFAULT_GRACE_HOURS = 2.0


@dataclass(frozen=True, slots=True)
class S3File:
    key: str
    size: int
    etag: str

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


@dataclass(slots=True)
class Hour:
    """One partition directory (`.../event_hour=YYYYMMDDHH/`) and what it holds."""

    directory: str
    log_type: str
    hour: str
    files: list[S3File] = field(default_factory=list)
    manifests: list[S3File] = field(default_factory=list)


@dataclass(slots=True)
class CompactionReport:
    hours_seen: int = 0
    hours_compacted: int = 0
    manifests_resumed: int = 0
    files_in: int = 0
    files_out: int = 0
    rows: int = 0
    duplicates: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    started: float = field(default_factory=time.monotonic)
    planned: list[str] = field(default_factory=list)
    """With --dry-run: the hours that would be compacted."""

    def progress_line(self) -> str:
        return (f"compact: {self.hours_compacted} hour(s) compacted of {self.hours_seen} seen, {self.files_in} "
                f"files -> {self.files_out}, {self.rows} rows ({self.duplicates} duplicates dropped), "
                f"{duration(time.monotonic() - self.started)}")

    def summary(self) -> str:
        return (f"compacted {self.hours_compacted} hour(s) of {self.hours_seen}: {self.files_in} files "
                f"({self.bytes_in} bytes) -> {self.files_out} files ({self.bytes_out} bytes), {self.rows} rows, "
                f"{self.duplicates} duplicate rows dropped, {self.manifests_resumed} interrupted run(s) finished, "
                f"in {duration(time.monotonic() - self.started)}")


def parse_hour(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%d%H").replace(tzinfo=UTC)


def closed(hour: str, now: datetime, grace_hours: float) -> bool:
    """Whether an `event_hour` ended at least `grace_hours` ago (`unknown` never closes)."""
    try:
        start = parse_hour(hour)
    except ValueError:
        return False
    return start + timedelta(hours=1 + grace_hours) <= now


def digest(files: Iterable[S3File]) -> str:
    """A short name for a set of input files (keys and ETags): the same inputs give the same output keys."""
    raw = "\n".join(f"{f.key}\x00{f.etag}" for f in sorted(files, key=lambda f: f.key)).encode()
    return base64.urlsafe_b64encode(hashlib.blake2b(raw, digest_size=15).digest()).decode()


def needs_compaction(files: list[S3File], small_bytes: int) -> bool:
    """At least two files, one of them small and not a compaction output: a finished hour is left alone."""
    return len(files) >= 2 and any(f.size < small_bytes and not f.name.startswith(OUTPUT_PREFIX) for f in files)


def _hour_of(key: str, prefix: str) -> tuple[str, str, str] | None:
    """(directory, log type, hour) of a dataset key, or None for a key outside the layout."""
    rest = key[len(prefix):]
    parts = rest.split("/")
    if len(parts) != 5 or not parts[0].startswith("log_type=") or not parts[3].startswith("event_hour="):
        return None
    directory = prefix + "/".join(parts[:4]) + "/"
    return directory, parts[0][len("log_type="):], parts[3][len("event_hour="):]


def _is_data(item: S3File) -> bool:
    """A Parquet file readers see (Athena and pyarrow skip names starting with `_` or `.`)."""
    return item.name.endswith(".parquet") and not item.name.startswith(("_", "."))


def conform(array: pa.Array, target: pa.DataType) -> pa.Array:
    """An input column in the output's type: struct fields matched by name (missing ones null), lists element
    by element; a file written by an older schema joins the newer one."""
    if array.type == target:
        return array
    if pa.types.is_struct(target) and pa.types.is_struct(array.type):
        names = {array.type.field(i).name for i in range(array.type.num_fields)}
        children = [conform(array.field(target.field(i).name), target.field(i).type) if target.field(i).name in names
                    else pa.nulls(len(array), target.field(i).type) for i in range(target.num_fields)]
        return pa.StructArray.from_arrays(children, fields=[target.field(i) for i in range(target.num_fields)],
                                          mask=array.is_null())
    if pa.types.is_list(target) and pa.types.is_list(array.type):
        # `values` is the whole child array and `offsets` index into it, even for a slice.
        return pa.ListArray.from_arrays(array.offsets, conform(array.values, target.value_type), type=target,
                                        mask=array.is_null())
    return array.cast(target)


def _conform_table(table: pa.Table, schema: pa.Schema) -> pa.Table:
    names = set(table.column_names)
    columns = []
    for fld in schema:
        if fld.name in names:
            columns.append(conform(table.column(fld.name).combine_chunks(), fld.type))
        else:
            columns.append(pa.nulls(table.num_rows, fld.type))
    return pa.Table.from_arrays(columns, schema=schema)


class Compactor:
    """Compacts one dataset; `await run()` walks it (optionally narrowed to log types and an hour range)."""

    def __init__(self, cfg: ParquetConfig, aws: AwsClients, *, small_bytes: int | None = None,
                 grace_hours: float = DEFAULT_GRACE_HOURS, now: datetime | None = None, dry_run: bool = False,
                 out: TextIO | None = None, stop: asyncio.Event | None = None) -> None:
        self.cfg = cfg
        self.aws = aws
        self.prefix = normal_prefix(cfg.prefix)
        self.small_bytes = small_bytes if small_bytes is not None else cfg.max_file_bytes // 4
        self.grace_hours = grace_hours
        self.now = now or datetime.now(UTC)
        self.dry_run = dry_run
        self.stop = stop or asyncio.Event()
        self.report = CompactionReport()
        self.progress = ProgressPrinter(self.report, out)

    async def run(self, types: Iterable[str] | None = None, since: str | None = None,
                  until: str | None = None) -> CompactionReport:
        for log_type in sorted(types or log_types()):
            for hour in await self.list_hours(log_type):
                if self.stop.is_set():
                    break
                if (since and hour.hour < since) or (until and hour.hour >= until):
                    continue
                self.report.hours_seen += 1
                if not closed(hour.hour, self.now, self.grace_hours):
                    continue
                await self.compact_hour(hour)
                self.progress.tick()
        self.progress.finish()
        return self.report

    async def list_hours(self, log_type: str) -> list[Hour]:
        s3 = await self.aws.client("s3")
        hours: dict[str, Hour] = {}
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.cfg.bucket, Prefix=f"{self.prefix}log_type={log_type}/"):
            for obj in page.get("Contents", []):
                where = _hour_of(obj["Key"], self.prefix)
                if where is None:
                    continue
                directory, lt, hour_text = where
                hour = hours.setdefault(directory, Hour(directory, lt, hour_text))
                item = S3File(obj["Key"], int(obj["Size"]), str(obj.get("ETag", "")).strip('"'))
                if item.name.startswith(MANIFEST_PREFIX):
                    hour.manifests.append(item)
                elif _is_data(item):
                    hour.files.append(item)
        return [hours[d] for d in sorted(hours)]

    async def compact_hour(self, hour: Hour) -> None:
        if hour.manifests:
            for manifest in hour.manifests:
                await self._resume(hour, manifest)
            if not self.dry_run:
                hour = await self._relist(hour)
        if not needs_compaction(hour.files, self.small_bytes):
            return
        if self.dry_run:
            self.report.planned.append(hour.directory)
            return
        inputs = sorted(hour.files, key=lambda f: f.key)
        name = digest(inputs)
        manifest_key = f"{hour.directory}{MANIFEST_PREFIX}{name}.json"
        body = orjson.dumps({"inputs": [f.key for f in inputs], "outputs": f"{OUTPUT_PREFIX}{name}-<n>.parquet",
                             "created": self.now.isoformat()})
        s3 = await self.aws.client("s3")
        await s3.put_object(Bucket=self.cfg.bucket, Key=manifest_key, Body=body, ContentType="application/json")
        outputs = await self._merge(hour, inputs, name)
        await self._delete([f.key for f in inputs])
        await s3.delete_object(Bucket=self.cfg.bucket, Key=manifest_key)
        self.report.hours_compacted += 1
        self.report.files_in += len(inputs)
        self.report.bytes_in += sum(f.size for f in inputs)
        log.info("parquet_hour_compacted", directory=hour.directory, inputs=len(inputs), outputs=len(outputs))

    async def _relist(self, hour: Hour) -> Hour:
        s3 = await self.aws.client("s3")
        fresh = Hour(hour.directory, hour.log_type, hour.hour)
        paginator = s3.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.cfg.bucket, Prefix=hour.directory):
            for obj in page.get("Contents", []):
                item = S3File(obj["Key"], int(obj["Size"]), str(obj.get("ETag", "")).strip('"'))
                if "/" not in obj["Key"][len(hour.directory):] and _is_data(item):
                    fresh.files.append(item)
        return fresh

    async def _resume(self, hour: Hour, manifest: S3File) -> None:
        """Finish a compaction that was interrupted (see the module docstring)."""
        if self.dry_run:
            self.report.planned.append(f"{hour.directory} (finish {manifest.name})")
            return
        s3 = await self.aws.client("s3")
        plan = orjson.loads(await self._read(manifest.key))
        input_keys: list[str] = plan["inputs"]
        present = {f.key: f for f in hour.files}
        if all(k in present for k in input_keys):  # interrupted before any delete: outputs may be partial
            await self._merge(hour, [present[k] for k in input_keys], manifest.name[len(MANIFEST_PREFIX):-5])
        await self._delete([k for k in input_keys if k in present])
        await s3.delete_object(Bucket=self.cfg.bucket, Key=manifest.key)
        self.report.manifests_resumed += 1
        log.info("parquet_compaction_resumed", directory=hour.directory, manifest=manifest.name)

    async def _merge(self, hour: Hour, inputs: list[S3File], name: str) -> list[str]:
        """Write `inputs` (their rows in input order, each `sluice_id` once) as `c-<name>-<n>.parquet` files of
        about `max_file_bytes`; returns their keys."""
        schema = schema_for(hour.log_type)
        seen: set[str] = set()
        writer: pq.ParquetWriter | None = None
        out: pa.BufferOutputStream | None = None
        keys: list[str] = []

        async def finish() -> None:
            nonlocal writer, out
            assert writer is not None and out is not None
            writer.close()
            data = out.getvalue().to_pybytes()
            key = f"{hour.directory}{OUTPUT_PREFIX}{name}-{len(keys)}.parquet"
            keys.append(key)
            await self._put(key, data)
            self.report.files_out += 1
            self.report.bytes_out += len(data)
            writer, out = None, None

        for f in inputs:
            data = await self._read(f.key)
            table = pq.read_table(pa.BufferReader(data))
            keep: list[bool] = []
            for row_id in table.column(ID_COLUMN).to_pylist():
                keep.append(row_id not in seen)
                seen.add(row_id)
            dropped = len(keep) - sum(keep)
            if dropped:
                table = table.filter(pa.array(keep, pa.bool_()))
            self.report.duplicates += dropped
            self.report.rows += table.num_rows
            if not table.num_rows:
                continue
            if table.schema != schema:
                schema = pa.unify_schemas([schema, table.schema], promote_options="permissive")
            table = _conform_table(table, schema)
            if writer is not None and writer.schema != schema:
                await finish()
            if writer is None:
                out = pa.BufferOutputStream()
                writer = pq.ParquetWriter(out, schema, compression=self.cfg.compression,
                                          compression_level=self.cfg.compression_level)
            writer.write_table(table, row_group_size=self.cfg.row_group_rows)
            assert out is not None
            if out.tell() >= self.cfg.max_file_bytes:
                await finish()
        if writer is not None:
            await finish()
        return keys

    async def _read(self, key: str) -> bytes:
        s3 = await self.aws.client("s3")
        resp = await s3.get_object(Bucket=self.cfg.bucket, Key=key)
        body = resp["Body"]
        try:
            data: bytes = await body.read()
        finally:
            body.close()
        return data

    async def _put(self, key: str, data: bytes) -> None:
        s3 = await self.aws.client("s3")
        part = self.cfg.multipart_part_bytes
        if len(data) <= part:
            await s3.put_object(Bucket=self.cfg.bucket, Key=key, Body=data, ContentType=CONTENT_TYPE)
            return
        upload = await s3.create_multipart_upload(Bucket=self.cfg.bucket, Key=key, ContentType=CONTENT_TYPE)
        upload_id = upload["UploadId"]
        try:
            parts = []
            for number, start in enumerate(range(0, len(data), part), start=1):
                resp = await s3.upload_part(Bucket=self.cfg.bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                            Body=data[start:start + part])
                parts.append({"ETag": resp["ETag"], "PartNumber": number})
            await s3.complete_multipart_upload(Bucket=self.cfg.bucket, Key=key, UploadId=upload_id,
                                               MultipartUpload={"Parts": parts})
        except BaseException:
            await s3.abort_multipart_upload(Bucket=self.cfg.bucket, Key=key, UploadId=upload_id)
            raise

    async def _delete(self, keys: list[str]) -> None:
        s3 = await self.aws.client("s3")
        for start in range(0, len(keys), 1000):
            chunk = keys[start:start + 1000]
            resp = await s3.delete_objects(Bucket=self.cfg.bucket,
                                           Delete={"Objects": [{"Key": k} for k in chunk], "Quiet": True})
            errors = resp.get("Errors") or []
            if errors:
                raise RuntimeError(f"deleting compacted inputs failed: {errors[:3]}")


async def compact(cfg: Config, types: Iterable[str] | None = None, since: str | None = None, until: str | None = None,
                  stop: asyncio.Event | None = None, **options: Any) -> CompactionReport:
    """Compact the configured dataset (see `Compactor` for the options); `stop` ends the run between hours."""
    async with AwsClients(cfg.aws) as aws:
        return await Compactor(cfg.parquet, aws, stop=stop, **options).run(types, since, until)


def run_compact(cfg: Config, args: argparse.Namespace) -> int:
    """The command: progress on stderr, a summary at the end. Ctrl-C stops after the hour at hand (a second one
    at once: the next run finishes an interrupted hour first)."""
    from worker.command import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, run_command

    if not cfg.parquet.bucket:
        print("sluice compact: parquet.bucket is not set in the config", file=sys.stderr)
        return EXIT_USAGE
    unknown = sorted(set(args.log_type or ()) - set(log_types()))
    if unknown:
        print(f"sluice compact: unknown log type(s) {', '.join(unknown)}", file=sys.stderr)
        return EXIT_USAGE

    async def body(stop: asyncio.Event) -> int:
        report = await compact(cfg, args.log_type or None, args.since, args.until, stop=stop, grace_hours=args.grace,
                               small_bytes=args.small_bytes, dry_run=args.dry_run, out=sys.stderr)
        for directory in report.planned:
            print(directory)
        if stop.is_set():
            return EXIT_INTERRUPTED
        return EXIT_OK

    def known(exc: Exception) -> int | None:
        print(f"sluice compact: failed: {exc} (run it again: interrupted hours are finished first)", file=sys.stderr)
        return EXIT_FAILED

    return run_command("compact", cfg, body, known)
