"""Where a dead letter came from, as replay needs it: the source that read it and the original object.

A re-driven record must be read the way its source read it the first time (log type, parser options,
`keep_original`, fallback log type), and dated like it when it has no time of its own (the original object's
LastModified), or its index, and so its id's home, would differ from the original's.
"""

from __future__ import annotations

from typing import Any

from worker import telemetry as m
from worker.aws import AwsClients
from worker.config import Config, KinesisSource, SqsS3Source
from worker.dead_letters import DeadLetters
from worker.model import Origin
from worker.parsers import ParseContext
from worker.pipeline import Pipeline
from worker.routing import Route, route_s3_key
from worker.sources.s3_objects import ObjectIngester, ObjectSettings, timestamp_of
from worker.sources.sqs_s3 import settings_of

log = m.get_logger("sluice.replay")

_CACHED_TIMES = 4096
"""Original objects whose LastModified is remembered (cleared when full: it is only a saving of HEADs)."""


class Originals:
    """Per-source `ObjectIngester`s (into replay's own pipeline) and the LastModified of original objects."""

    def __init__(self, config: Config, aws: AwsClients, pipeline: Pipeline, dead_letters: DeadLetters) -> None:
        self.config = config
        self.aws = aws
        self.pipeline = pipeline
        self.dead_letters = dead_letters
        self._ingesters: dict[str, ObjectIngester] = {}
        self._modified: dict[tuple[str, str, str], str | None] = {}

    def ingester(self, source: str) -> ObjectIngester:
        """Reads objects the way the source named `source` does (defaults for a source no longer configured)."""
        found = self._ingesters.get(source)
        if found is None:
            scfg = self.config.sources.get(source)
            settings = (settings_of(scfg, self.config.pipeline) if isinstance(scfg, SqsS3Source | KinesisSource)
                        else ObjectSettings(chunk_size=self.config.pipeline.read_chunk_bytes))
            found = self._ingesters[source] = ObjectIngester(source, settings, self.aws, self.pipeline,
                                                             self.dead_letters)
        return found

    def context(self, origin: Origin) -> ParseContext:
        """The parse context the origin's source gives its objects (options, account and region from the key)."""
        route = route_s3_key(origin.key) if origin.kind == "s3" and origin.key else Route(None)
        return self.ingester(origin.source).parse_context(origin.bucket, origin.key, route)

    async def last_modified(self, origin: Origin) -> str | None:
        """LastModified of the original object (what dated its records without a time of their own), cached."""
        if origin.kind != "s3" or not origin.bucket or not origin.key:
            return None
        cache_key = (origin.bucket, origin.key, origin.version)
        if cache_key in self._modified:
            return self._modified[cache_key]
        kwargs: dict[str, Any] = {"Bucket": origin.bucket, "Key": origin.key}
        if origin.version and not origin.version.startswith("etag:"):
            kwargs["VersionId"] = origin.version
        value: str | None = None
        try:
            head = await (await self.aws.client("s3")).head_object(**kwargs)
            value = timestamp_of(head["LastModified"])
        except Exception as exc:
            log.debug("replay_original_head_failed", uri=origin.uri, error=str(exc)[:200])
        if len(self._modified) > _CACHED_TIMES:
            self._modified.clear()
        self._modified[cache_key] = value
        return value
