"""`<dead_letters.prefix>poison/`: what replay gives up on, kept for a person to look at (no pointer)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson
from isal import igzip
from tenacity import AsyncRetrying, stop_after_delay, wait_exponential_jitter

from worker import telemetry as m
from worker.aws import AwsClients
from worker.config import Config
from worker.replay.plan import attempts_of

log = m.get_logger("sluice.replay")


def retrying() -> AsyncRetrying:
    """How replay's own writes (poison objects, pointers sent again) ride out a short S3 or SQS outage."""
    return AsyncRetrying(stop=stop_after_delay(30), wait=wait_exponential_jitter(multiplier=0.5, max=5, jitter=0.5),
                         reraise=True)


class PoisonWriter:
    """Writes what replay gives up on under `<dead_letters.prefix>poison/`, with no pointer (it is for people)."""

    def __init__(self, config: Config, aws: AwsClients) -> None:
        self.bucket = config.dead_letters.bucket
        self.prefix = f"{config.dead_letters.prefix}poison/"
        self.objects_prefix = f"{config.dead_letters.prefix}objects/"
        self.aws = aws

    async def write_records(self, records: list[dict[str, Any]]) -> str:
        """One NDJSON.gz object of parked records; its key, once it is durable (raises otherwise)."""
        now = time.gmtime()
        parked_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", now)
        body = igzip.compress(b"".join(orjson.dumps({**r, "parked_at": parked_at}, default=str) + b"\n"
                                       for r in records), compresslevel=2)
        key = f"{self.prefix}{time.strftime('%Y/%m/%d/%H', now)}/{uuid.uuid4().hex}.ndjson.gz"
        s3 = await self.aws.client("s3")
        async for attempt in retrying():
            with attempt:
                await s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/x-ndjson",
                                    ContentEncoding="gzip")
        return key

    async def park_object(self, pointer: Mapping[str, Any], why: str) -> str:
        """Copy a kept object under `poison/objects/` (server-side), its origin and attempts in the metadata."""
        src_key = str(pointer["key"])
        rest = src_key[len(self.objects_prefix):] if src_key.startswith(self.objects_prefix) else src_key
        key = f"{self.prefix}objects/{rest}"
        origin = pointer.get("origin") if isinstance(pointer.get("origin"), Mapping) else {}
        metadata = {
            "sluice-reason": quote(str(pointer.get("reason") or "")),
            "sluice-parked": quote(why),
            "sluice-attempts": str(attempts_of(pointer)),
            "sluice-source": quote(str(pointer.get("source") or "")),
            "sluice-origin": quote(orjson.dumps(origin).decode()[:1500]),
        }
        s3 = await self.aws.client("s3")
        async for attempt in retrying():
            with attempt:
                await s3.copy_object(Bucket=self.bucket, Key=key, CopySource={"Bucket": pointer["bucket"],
                                                                              "Key": src_key},
                                     Metadata=metadata, MetadataDirective="REPLACE")
        log.warning("replay_object_parked", backup=f"s3://{pointer['bucket']}/{src_key}", poison=key, why=why)
        return key
