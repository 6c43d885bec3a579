"""Logging set-up and every Prometheus metric, declared once.

Label sets are bounded (source, log_type, reason, outcome): never an id, a key or a queue URL, so the metric
cardinality of a worker does not grow with its input.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from typing import Any

import structlog
from prometheus_client import Counter, Gauge, Histogram

NS = "sluice"

# --- sources -------------------------------------------------------------------------------------------
SQS_MESSAGES_RECEIVED = Counter(
    f"{NS}_sqs_messages_received_total", "SQS messages received.", ["source"])
SQS_MESSAGES_DELETED = Counter(
    f"{NS}_sqs_messages_deleted_total", "SQS messages deleted after every document was settled.", ["source"])
SQS_MESSAGES_NACKED = Counter(
    f"{NS}_sqs_messages_nacked_total",
    "SQS messages made visible again because processing failed for an infrastructure reason.",
    ["source", "reason"])
SQS_VISIBILITY_EXTENSIONS = Counter(
    f"{NS}_sqs_visibility_extensions_total", "Visibility timeouts extended for messages still in flight.",
    ["source"])
MESSAGES_IN_FLIGHT = Gauge(
    f"{NS}_messages_in_flight", "Messages received and not yet acknowledged or nacked.", ["source"],
    multiprocess_mode="livesum")
S3_OBJECTS_READ = Counter(
    f"{NS}_s3_objects_read_total", "S3 objects read to the end.", ["source", "log_type"])
S3_OBJECTS_SKIPPED = Counter(
    f"{NS}_s3_objects_skipped_total", "S3 objects deliberately not ingested (e.g. CloudTrail digests).",
    ["source", "reason"])
S3_BYTES_READ = Counter(
    f"{NS}_s3_bytes_read_total", "Bytes read from S3 object bodies (as stored, before decompression).",
    ["source"])
DECOMPRESSED_BYTES = Counter(
    f"{NS}_decompressed_bytes_total", "Bytes after decompression.", ["source"])

KINESIS_RECORDS_READ = Counter(
    f"{NS}_kinesis_records_read_total", "Kinesis records read by GetRecords (before KPL de-aggregation).",
    ["source"])
KINESIS_BYTES_READ = Counter(
    f"{NS}_kinesis_bytes_read_total", "Bytes of Kinesis record data read (as stored, before decompression).",
    ["source"])
KINESIS_MILLIS_BEHIND = Gauge(
    f"{NS}_kinesis_millis_behind_latest",
    "How far a shard's reader is behind the tip of the stream (GetRecords MillisBehindLatest), per shard held "
    "by this worker. The one metric labelled by an id: shards are few and their number is the stream's.",
    ["source", "shard"], multiprocess_mode="livemostrecent")
KINESIS_LEASES_HELD = Gauge(
    f"{NS}_kinesis_leases_held", "Shard leases this worker holds (and reads).", ["source"],
    multiprocess_mode="livesum")
KINESIS_LEASE_EVENTS = Counter(
    f"{NS}_kinesis_lease_events_total",
    "Lease changes seen by this worker: taken (free or expired), stolen (to balance), lost (taken by another "
    "worker or not renewed in time), released (shutdown or shard end).", ["source", "event"])
KINESIS_CHECKPOINTS = Counter(
    f"{NS}_kinesis_checkpoints_total",
    "Checkpoint writes by outcome: written, refused (the lease was taken by another worker), failed (the "
    "lease table could not be reached; retried at the next interval).", ["source", "outcome"])
KINESIS_READ_ERRORS = Counter(
    f"{NS}_kinesis_read_errors_total",
    "Failed GetRecords / GetShardIterator calls by reason (throttled, expired_iterator, error, checkpoint); "
    "the reader backs off and retries.", ["source", "reason"])
KINESIS_REWINDS = Counter(
    f"{NS}_kinesis_rewinds_total",
    "Shard readers sent back to their last settled position because a batch could not be delivered.",
    ["source"])

# --- parsing -------------------------------------------------------------------------------------------
DOCUMENTS_PARSED = Counter(
    f"{NS}_documents_parsed_total", "Documents produced by parsers.", ["source", "log_type"])
EVENTS_EXCLUDED = Counter(
    f"{NS}_events_excluded_total",
    "Events dropped on purpose by a source's include / exclude patterns (never dead-lettered).", ["source"])
MULTILINE_SPLITS = Counter(
    f"{NS}_multiline_splits_total",
    "Multi-line events cut at multiline.max_lines / max_bytes (the rest starts a new event; nothing dropped).",
    ["source"])
PARSE_FAILURES = Counter(
    f"{NS}_parse_failures_total", "Records that could not be parsed (dead-lettered).", ["source", "log_type"])

# --- sink ----------------------------------------------------------------------------------------------
DOCUMENTS_INDEXED = Counter(
    f"{NS}_documents_indexed_total",
    "Documents accepted by OpenSearch (created, or already present: 409 on create).",
    ["log_type", "result"])
DOCUMENTS_RETRIED = Counter(
    f"{NS}_documents_retried_total", "Bulk items retried after a retryable status (429, 5xx).", ["log_type"])
BULK_REQUESTS = Counter(
    f"{NS}_bulk_requests_total", "Bulk requests sent, by outcome.", ["outcome"])
BULK_LATENCY = Histogram(
    f"{NS}_bulk_request_duration_seconds", "Latency of one bulk request.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
BULK_BYTES = Counter(
    f"{NS}_bulk_bytes_total", "Uncompressed bytes of bulk request bodies sent.", [])
BULK_IN_FLIGHT = Gauge(
    f"{NS}_bulk_requests_in_flight", "Bulk requests currently awaiting a response.", [],
    multiprocess_mode="livesum")
SINK_BUFFER_DOCUMENTS = Gauge(
    f"{NS}_sink_buffer_documents", "Documents buffered in the sink, not yet in a sent bulk request.", [],
    multiprocess_mode="livesum")
SINK_BUFFER_FILL = Gauge(
    f"{NS}_sink_buffer_fill_ratio",
    "Filled share of the sink's bounded queue of ready bulk requests (1 = sources are being held back).", [],
    multiprocess_mode="livemax")

BULK_CONCURRENCY_LIMIT = Gauge(
    f"{NS}_bulk_concurrency_limit",
    "Bulk requests allowed in flight right now: grows while latency is steady, halves on 429/503/timeouts.", [],
    multiprocess_mode="livesum")
BULK_THROTTLED = Counter(
    f"{NS}_bulk_throttled_total",
    "Bulk requests or items OpenSearch pushed back on (429, 503, timeouts), by kind.", ["kind"])

# --- dead letters ----------------------------------------------------------------------------------------
DOCUMENTS_DEAD_LETTERED = Counter(
    f"{NS}_documents_dead_lettered_total",
    "Records stored in the backup bucket with a reason (parse errors, rejected documents, bad objects).",
    ["source", "log_type", "reason"])
DEAD_LETTER_OBJECTS = Counter(
    f"{NS}_dead_letter_objects_written_total",
    "Objects written to the backup bucket (NDJSON.gz batches and copies of undecodable objects).", ["kind"])

# --- replay and backfill -------------------------------------------------------------------------------
REPLAYED = Counter(
    f"{NS}_replayed_records_total",
    "Dead-lettered records re-driven by replay, by outcome (indexed, exists, failed_again, poisoned, dry_run).",
    ["outcome"])
BACKFILL_OBJECTS = Counter(
    f"{NS}_backfill_objects_total", "Objects handled by backfill, by outcome (ingested, skipped_done, failed).",
    ["outcome"])

# --- process ---------------------------------------------------------------------------------------------
READY = Gauge(f"{NS}_ready", "1 when the worker is consuming, 0 while starting or draining.", [],
              multiprocess_mode="liveall")


def forget(metric: Gauge, *labels: str) -> None:
    """Drop one labelled child (a shard no longer held), so a stale value is not scraped forever.

    Under `sluice run --processes` (prometheus_client's multiprocess mode) values cannot be removed: the value
    is set to 0 instead, and the process that holds the shard now writes later (`livemostrecent` wins)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metric.labels(*labels).set(0)
        return
    with contextlib.suppress(KeyError):
        metric.remove(*labels)


def configure_logging(level: str = "info", fmt: str = "json") -> None:
    """structlog to stderr: JSON for machines, console for people; stdlib logging routed through it."""
    lvl = getattr(logging, level.upper())
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer() if fmt == "json" else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(lvl),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(lvl, logging.WARNING), stream=sys.stderr, format="%(name)s %(message)s")


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)


# --- parquet sink ----------------------------------------------------------------------------------------
PARQUET_ROWS = Counter(
    f"{NS}_parquet_rows_written_total", "Rows in Parquet files written to S3 (settled as delivered).",
    ["log_type"])
PARQUET_FILES = Counter(
    f"{NS}_parquet_files_written_total",
    "Parquet files written to S3, by how they were uploaded (put: one PUT; multipart: streamed in parts).",
    ["log_type", "upload"])
PARQUET_BYTES = Counter(
    f"{NS}_parquet_bytes_written_total", "Bytes of Parquet files written to S3 (compressed, as stored).",
    ["log_type"])
PARQUET_WRITE_FAILURES = Counter(
    f"{NS}_parquet_write_failures_total",
    "S3 writes of Parquet files that failed after retrying for parquet.retry_seconds (their units are "
    "redelivered).", ["log_type"])
PARQUET_MISFITS = Counter(
    f"{NS}_parquet_misfit_values_total",
    "Values whose type did not fit their declared column, kept in the sluice_extra map column instead (a parser "
    "emitting something its field declaration does not say).", ["log_type"])
PARQUET_S3_LATENCY = Histogram(
    f"{NS}_parquet_s3_request_duration_seconds",
    "Duration of one S3 call of the Parquet sink (PUT, multipart part, completion), retries included.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
PARQUET_BUFFERED_ROWS = Gauge(
    f"{NS}_parquet_buffered_rows", "Rows held by the Parquet sink that are not yet encoded into a file.", [],
    multiprocess_mode="livesum")
PARQUET_OPEN_FILES = Gauge(
    f"{NS}_parquet_open_files",
    "Parquet files being assembled (one per unit of work and partition until its unit is written).", [],
    multiprocess_mode="livesum")
