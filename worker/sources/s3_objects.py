"""One S3 object through the pipeline, with the failure rules every S3 source shares.

Live ingestion (`sqs_s3`: an object named by a notification) and `sluice backfill` (an object named by a
listing) must treat an object identically: same routing, same ids (bucket, key and version tag), same dead
letters for undecodable or unknown objects, same metrics. Both therefore hand objects to `ObjectIngester`,
and only decide where the `ObjectRef` comes from and what to do with the unit's outcome.

`sluice replay` re-ingests whole objects kept in the backup bucket through the same read path
(`ingest_copy`): the bytes come from the copy, everything else (origin, ids, parse context) from the original.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from worker import telemetry as m
from worker.aws import AwsClients
from worker.config import ProcessingConfig
from worker.dead_letters import DeadLetters
from worker.decoding import DecodeError, FramingError
from worker.model import AckSet, DeadLetter, Origin
from worker.parsers import ParseContext
from worker.pipeline import Pipeline, StreamStats, UnknownLogType
from worker.routing import Route, route_s3_key
from worker.sources.s3_events import ObjectRef

log = m.get_logger("sluice.s3_objects")

_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchVersion", "404"})
_CHANGED_CODES = frozenset({"PreconditionFailed", "412"})


class ObjectMissing(Exception):
    """The object no longer exists (deleted or overwritten before we read it)."""


class ObjectChanged(Exception):
    """The object's ETag is no longer the one we were told about (it was overwritten since)."""


@dataclass(frozen=True, slots=True)
class ObjectSettings:
    """How a source reads its objects (the per-object part of `SqsS3Source`)."""

    log_type: str = "auto"
    """`auto` routes by key (then content); else every object is this type."""
    keep_original: bool = False
    parser_options: dict[str, Any] | None = None
    fallback_log_type: str | None = None
    chunk_size: int = 1 << 20
    """Bytes per S3 body read."""
    processing: ProcessingConfig | None = None
    """The source's include / exclude, multiline, JSON event, tags and fields settings."""


@dataclass(frozen=True, slots=True)
class KeptCopy:
    """Where an object's bytes are kept when they are not at its own address (a copy in the backup bucket)."""

    bucket: str
    key: str


@dataclass(slots=True)
class ObjectResult:
    """What became of one object; its documents' fate is in the unit's AckSet, not here."""

    skipped: str | None = None
    """The router's reason to leave the object alone on purpose (e.g. `cloudtrail_digest`)."""
    stats: StreamStats | None = None
    """Read to the end: bytes, documents and parse failures (None when it was not read through)."""
    dead_lettered: str | None = None
    """The reason the whole object went to the backup bucket (`unknown_log_type`, `decode_error`, ...)."""
    error: str | None = None
    """An infrastructure failure: the AckSet is failed and the object must be tried again later."""


class ObjectIngester:
    """Streams objects into a shared `Pipeline` on behalf of one named source."""

    def __init__(self, source: str, settings: ObjectSettings, aws: AwsClients, pipeline: Pipeline,
                 dead_letters: DeadLetters) -> None:
        self.source = source
        self.settings = settings
        self.aws = aws
        self.pipeline = pipeline
        self.dead_letters = dead_letters

    async def ingest(self, ref: ObjectRef, ack: AckSet, if_match: bool = False) -> ObjectResult:
        """Count everything from `ref` into `ack` (the caller seals and waits on it).

        `if_match` reads the object only if its ETag is still `ref.etag`: a lister (backfill) must not index
        newer bytes under ids derived from an older ETag, or the newer version's own ingestion would add
        them a second time. A notification-driven source leaves it off (it reads what is there).
        """
        route = self.route(ref.key)
        origin = Origin(self.source, "s3", ref.bucket, ref.key, ref.version_tag, ref.size)
        if route.skip:
            m.S3_OBJECTS_SKIPPED.labels(self.source, route.skip).inc()
            log.info("s3_object_skipped", source=self.source, reason=route.skip, uri=origin.uri)
            return ObjectResult(skipped=route.skip)
        ctx = self.parse_context(ref.bucket, ref.key, route)
        try:
            resp, key = await self._open(ref, if_match)
            if key != ref.key:
                origin = Origin(self.source, "s3", ref.bucket, key, ref.version_tag, ref.size)
            stats = await self._read(resp, origin, route, ctx, ack)
        except ObjectMissing as exc:
            ack.add(1)
            await self.dead_letters.add(DeadLetter("object_missing", str(exc), origin, route.log_type or ""), ack)
            return ObjectResult(dead_lettered="object_missing")
        except UnknownLogType as exc:
            log.warning("s3_object_unknown_log_type", source=self.source, uri=origin.uri, head=exc.head[:200])
            await self.dead_letters.copy_object(ref.bucket, ref.key, ref.version_tag, "unknown_log_type", str(exc),
                                                self.source, ack)
            return ObjectResult(dead_lettered="unknown_log_type")
        except (DecodeError, FramingError) as exc:
            log.warning("s3_object_undecodable", source=self.source, uri=origin.uri, error=str(exc))
            await self.dead_letters.copy_object(ref.bucket, ref.key, ref.version_tag, "decode_error", str(exc),
                                                self.source, ack)
            return ObjectResult(dead_lettered="decode_error")
        except Exception as exc:  # S3 or network trouble (or a changed object): the unit is retried, never acked
            log.warning("s3_object_read_failed", source=self.source, uri=origin.uri, error=str(exc),
                        error_type=type(exc).__name__)
            reason = f"reading {origin.uri}: {exc}"
            ack.fail(reason)
            return ObjectResult(error=reason)
        if stats.oversize_lines:
            # The dead letters of those lines hold only their heads: keep the whole object, so no byte is lost
            # and `sluice replay` can re-ingest it once max_line_bytes admits the lines (same ids: 409s).
            await self.dead_letters.copy_object(
                ref.bucket, ref.key, ref.version_tag, "oversize_line",
                f"{stats.oversize_lines} line(s) over pipeline.max_line_bytes", self.source, ack)
        m.S3_OBJECTS_READ.labels(self.source, stats.log_type).inc()
        m.S3_BYTES_READ.labels(self.source).inc(stats.bytes_in)
        m.DECOMPRESSED_BYTES.labels(self.source).inc(stats.bytes_out)
        log.info("s3_object_read", source=self.source, uri=origin.uri, log_type=stats.log_type,
                 bytes=stats.bytes_in, decompressed=stats.bytes_out, documents=stats.documents,
                 failures=stats.failures)
        return ObjectResult(stats=stats)

    async def ingest_copy(self, origin: Origin, copy: KeptCopy, ack: AckSet,
                          fallback_timestamp: str | None = None) -> StreamStats:
        """Ingest a kept copy of an object under the ORIGINAL's `origin`, so its documents get the ids (and the
        parse context) the original's would have; used by `sluice replay` for whole-object dead letters.

        Unlike `ingest`, nothing is decided here: ObjectMissing, UnknownLogType, DecodeError, FramingError and
        S3 errors are raised, because what a copy that fails again becomes (another pointer, not another copy)
        is the caller's business, and no `s3_objects_*` metric counts it (it is not a new object).
        `fallback_timestamp` dates records without a time of their own (the original's LastModified); without
        it, the copy's LastModified does. Routing skips are the caller's to check first (`route`).
        """
        route = self.route(origin.key)
        ctx = self.parse_context(origin.bucket, origin.key, route)
        resp, _ = await self._open(ObjectRef(copy.bucket, copy.key), if_match=False)
        return await self._read(resp, origin, route, ctx, ack, fallback_timestamp)

    def route(self, key: str) -> Route:
        """The route of a key under this source's `log_type`."""
        return route_s3_key(key, self.settings.log_type)

    def parse_context(self, bucket: str, key: str, route: Route) -> ParseContext:
        """What the parsers are told about an object of this source (options, account and region from the key)."""
        cfg = self.settings
        return ParseContext(bucket=bucket, key=key, account_id=route.account_id, region=route.region,
                            keep_original=cfg.keep_original, options=cfg.parser_options or {})

    async def _read(self, resp: Any, origin: Origin, route: Route, ctx: ParseContext, ack: AckSet,
                    fallback_timestamp: str | None = None) -> StreamStats:
        """An opened object's body through the pipeline; records without a time get `fallback_timestamp`, else
        the object's LastModified, so their index is the same on every redelivery."""
        body = resp["Body"]
        modified = resp.get("LastModified")
        fallback = fallback_timestamp or (timestamp_of(modified) if modified else None)
        try:
            return await self.pipeline.ingest(_chunks(body, self.settings.chunk_size), origin, route.log_type, ctx,
                                              ack, fallback, self.settings.fallback_log_type,
                                              processing=self.settings.processing)
        finally:
            body.close()

    async def _open(self, ref: ObjectRef, if_match: bool) -> tuple[Any, str]:
        s3 = await self.aws.client("s3")
        keys = [ref.key] + ([ref.alt_key] if ref.alt_key else [])
        for key in keys:
            kwargs: dict[str, Any] = {"Bucket": ref.bucket, "Key": key}
            if ref.version:
                kwargs["VersionId"] = ref.version
            elif if_match and ref.etag:
                kwargs["IfMatch"] = f'"{ref.etag}"'
            try:
                resp = await s3.get_object(**kwargs)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code")
                if code in _MISSING_CODES:
                    continue
                if code in _CHANGED_CODES:
                    raise ObjectChanged(f"s3://{ref.bucket}/{key} changed since it was listed (ETag is no longer "
                                        f"{ref.etag}); it is ingested with its new ETag on the next run") from None
                raise
            return resp, key
        raise ObjectMissing(f"s3://{ref.bucket}/{ref.key} does not exist (deleted before it was read?)")


def timestamp_of(when: datetime) -> str:
    """An S3 LastModified as the `@timestamp` the pipeline gives records that carry no time of their own."""
    w = when.astimezone(UTC)  # formatted by hand: strftime is several times slower, once per object
    return f"{w.year:04d}-{w.month:02d}-{w.day:02d}T{w.hour:02d}:{w.minute:02d}:{w.second:02d}.000Z"


async def _chunks(body: Any, size: int) -> AsyncIterator[bytes]:
    while True:
        chunk = await body.read(size)
        if not chunk:
            return
        yield chunk
