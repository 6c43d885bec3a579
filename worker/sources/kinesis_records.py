"""Kinesis records -> the pipeline: de-aggregation, ids, the source's fields, and what to do with bad records.

Each record (or each user record of a KPL-aggregated one) is a small stream of its own: it is decompressed by
its magic bytes (gzip, as CloudWatch Logs subscriptions send, zstd, bzip2 or plain), its log type is the
source's or sniffed from its content (a CloudWatch Logs envelope, then routed per log group), and its
documents get ids from the stream, shard and sequence number (plus the user record's index), so that reading a
record again after a rewind or a takeover indexes nothing twice.

A record that cannot be decoded or whose format nobody knows is dead-lettered whole (`raw_base64` keeps its
exact bytes); it never holds the shard back.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from worker import telemetry as m
from worker.config import KinesisSource
from worker.dead_letters import DeadLetters
from worker.decoding import DecodeError, FramingError
from worker.model import AckSet, DeadLetter, Origin
from worker.parsers import ParseContext
from worker.pipeline import Pipeline, StreamParsers, UnknownLogType, single_chunk
from worker.sources.kinesis_kpl import KplError, deaggregate, is_aggregated

log = m.get_logger("sluice.kinesis.records")


class RecordIngester:
    """Turns the records of one shard's GetRecords batches into documents for the pipeline."""

    def __init__(self, source: str, cfg: KinesisSource, shard_id: str, region: str, pipeline: Pipeline,
                 dead_letters: DeadLetters) -> None:
        self.source = source
        self.stream = cfg.stream_name
        self.shard_id = shard_id
        self.log_type = None if cfg.log_type == "auto" else cfg.log_type
        self.fallback_log_type = cfg.fallback_log_type
        self.pipeline = pipeline
        self.dead_letters = dead_letters
        self.ctx = ParseContext(region=region, keep_original=cfg.keep_original, options=dict(cfg.parser_options))
        self.parsers = StreamParsers(self.ctx)
        self.key = f"{self.stream}/{shard_id}"
        self.processing = cfg.processing

    async def ingest(self, records: list[dict[str, Any]], ack: AckSet) -> int:
        """Submit the documents of `records` under `ack` (not sealed here); returns the bytes read."""
        ingested = _iso(datetime.now(UTC))
        size = 0
        for record in records:
            data: bytes = record["Data"]
            size += len(data)
            sequence: str = record["SequenceNumber"]
            partition_key: str = record.get("PartitionKey", "")
            arrival = record.get("ApproximateArrivalTimestamp")
            arrived = _iso(arrival) if isinstance(arrival, datetime) else None
            if is_aggregated(data):
                try:
                    users = deaggregate(data)
                except KplError as exc:
                    origin, _ = self._origin(sequence, partition_key)
                    await self._dead_letter("decode_error", f"KPL aggregated record: {exc}", origin, data, ack)
                    continue
                for user in users:
                    origin, fields = self._origin(sequence, user.partition_key or partition_key, user.index)
                    await self._one(user.data, origin, fields, ack, arrived, ingested)
            else:
                origin, fields = self._origin(sequence, partition_key)
                await self._one(data, origin, fields, ack, arrived, ingested)
        return size

    def _origin(self, sequence: str, partition_key: str, sub: int | None = None) -> tuple[Origin, dict[str, Any]]:
        """The record's origin (ids: stream/shard, sequence number and the KPL sub-index) and its `aws.kinesis`."""
        fields: dict[str, Any] = {"name": self.stream, "shard_id": self.shard_id, "sequence_number": sequence,
                                  "partition_key": partition_key}
        extra = [("partition_key", partition_key), ("sequence_number", sequence), ("shard_id", self.shard_id)]
        version = sequence
        if sub is not None:
            fields["subsequence_number"] = sub
            extra.append(("subsequence_number", str(sub)))
            version = f"{sequence}:{sub}"
        return Origin(self.source, "kinesis", key=self.key, version=version, extra=tuple(extra)), fields

    async def _one(self, data: bytes, origin: Origin, fields: dict[str, Any], ack: AckSet, arrived: str | None,
                   ingested: str) -> None:
        def annotate(body: dict[str, Any]) -> None:
            aws = body.get("aws")
            if not isinstance(aws, dict):
                aws = body["aws"] = {}
            aws["kinesis"] = dict(fields)
            event = body.get("event")
            if not isinstance(event, dict):
                event = body["event"] = {}
            event["ingested"] = ingested

        try:
            await self.pipeline.ingest(single_chunk(data), origin, self.log_type, self.ctx, ack,
                                       fallback_timestamp=arrived, fallback_log_type=self.fallback_log_type,
                                       parsers=self.parsers, annotate=annotate, processing=self.processing)
        except (DecodeError, FramingError) as exc:
            await self._dead_letter("decode_error", f"record cannot be decoded: {exc}", origin, data, ack)
        except UnknownLogType as exc:
            await self._dead_letter("unknown_log_type", str(exc), origin, data, ack)

    async def _dead_letter(self, reason: str, detail: str, origin: Origin, data: bytes, ack: AckSet) -> None:
        log.warning("kinesis_record_dead_lettered", source=self.source, shard=self.shard_id, reason=reason,
                    sequence=origin.version, detail=detail[:300])
        ack.add(1)
        await self.dead_letters.add(DeadLetter(
            reason, detail, origin, raw=data[:1 << 20].decode("utf-8", "replace"),
            extra={"raw_base64": base64.b64encode(data).decode()}), ack)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
