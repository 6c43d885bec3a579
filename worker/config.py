"""The YAML configuration: one file, validated on load, with `${ENV}` expansion.

Validation errors name the offending path (`sources.cloudtrail.queue_url: field required`) because a worker
that starts with a typo in its config and silently ignores a key is worse than one that refuses to start.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from worker.config_model import ConfigModel as _Model
from worker.parsers import log_types
from worker.sinks.lifecycle import LifecycleConfig


class ConfigError(Exception):
    """The configuration cannot be used; the message lists every problem, one per line, with its path."""


class AwsEndpoints(_Model):
    s3: str | None = None
    """Endpoint URL for S3 (e.g. a VPC endpoint or an emulator)."""
    sqs: str | None = None
    """Endpoint URL for SQS."""
    sts: str | None = None
    """Endpoint URL for STS (used to assume `aws.role_arn`)."""
    kinesis: str | None = None
    """Endpoint URL for Kinesis Data Streams."""
    dynamodb: str | None = None
    """Endpoint URL for DynamoDB (Kinesis lease table)."""
    logs: str | None = None
    """Endpoint URL for CloudWatch Logs."""


class AwsConfig(_Model):
    region: str = "us-east-1"
    """Region of every AWS client."""
    endpoint_url: str | None = None
    """One endpoint for every service (LocalStack, moto server); `endpoints.<service>` wins over it."""
    endpoints: AwsEndpoints = AwsEndpoints()
    """Per-service endpoint URLs."""
    role_arn: str | None = None
    """Assume this role (STS) for every AWS call of the worker."""
    max_pool_connections: int = Field(50, ge=1)
    """HTTP connections per AWS client."""

    def endpoint_for(self, service: str) -> str | None:
        specific: str | None = getattr(self.endpoints, service, None)
        return specific or self.endpoint_url


class OpenSearchAuth(_Model):
    type: Literal["none", "basic", "sigv4"] = "none"
    """`sigv4` signs with the worker's AWS credentials (Amazon OpenSearch Service and Serverless)."""
    username: str | None = None
    """Basic auth user."""
    password: str | None = None
    """Basic auth password; use `${VAR}` to read it from the environment."""
    service: Literal["es", "aoss"] = "es"
    """`es` for Amazon OpenSearch Service domains, `aoss` for OpenSearch Serverless collections."""
    region: str | None = None
    """SigV4 signing region; defaults to `aws.region`."""

    @model_validator(mode="after")
    def _basic_needs_credentials(self) -> OpenSearchAuth:
        if self.type == "basic" and (not self.username or self.password is None):
            raise ValueError("basic auth needs username and password")
        return self


class BulkConfig(_Model):
    max_bytes: int = Field(5 << 20, ge=1024)
    """A bulk request is sent once its body (uncompressed) reaches this many bytes."""
    max_docs: int = Field(10_000, ge=1)
    """A bulk request is sent once it holds this many documents."""
    flush_interval: float = Field(1.0, gt=0)
    """Seconds a partly filled bulk request may wait for more documents."""
    flush_when_idle: bool = True
    """Send a partly filled bulk request as soon as no input is being parsed (every received object or record
    is parsed and waits for its documents), instead of waiting out `flush_interval`: small objects and the
    last documents of a burst are acknowledged within milliseconds, and a busy worker still sends full
    requests. false: only size, count and `flush_interval` cut a request."""
    max_in_flight: int = Field(4, ge=1)
    """Concurrent bulk requests at most (the upper limit of adaptive concurrency); also bounds the memory of
    the sink (max_in_flight + 1 bodies)."""
    compress: bool = True
    """gzip request bodies."""
    timeout: float = Field(120.0, gt=0)
    """Seconds to wait for one bulk response before it counts as failed (and is retried)."""
    adaptive: bool = True
    """Adapt concurrent bulk requests between `min_in_flight` and `max_in_flight`: one more while latency is
    steady, half as many on 429/503/timeouts, so an overloaded cluster is not hammered."""
    min_in_flight: int = Field(1, ge=1)
    """The fewest concurrent bulk requests adaptive concurrency goes down to (and starts from)."""

    @model_validator(mode="after")
    def _min_below_max(self) -> BulkConfig:
        if self.min_in_flight > self.max_in_flight:
            raise ValueError(f"min_in_flight ({self.min_in_flight}) is above max_in_flight ({self.max_in_flight})")
        return self


class RetryConfig(_Model):
    initial_backoff: float = Field(0.5, gt=0)
    """First wait before retrying items that got 429/5xx or a failed request (doubles, with jitter)."""
    max_backoff: float = Field(30.0, gt=0)
    """Longest wait between two retries."""
    max_elapsed: float = Field(300.0, gt=0)
    """After this many seconds of retrying one bulk request its documents are RETRY: the message is nacked."""


class OpenSearchConfig(_Model):
    hosts: list[str] = Field(min_length=1)
    """OpenSearch URLs, e.g. `https://search-logs.us-east-1.es.amazonaws.com:443`."""
    auth: OpenSearchAuth = OpenSearchAuth()
    """How requests are authenticated."""
    verify_certs: bool = True
    """Verify the server's TLS certificate (keep on outside development)."""
    ca_certs: str | None = None
    """Path of a CA bundle for the server's certificate."""
    index: str = "sluice-{log_type}-{yyyy}.{MM}.{dd}"
    """Index name pattern. `{log_type}` and the event's own date (`{yyyy}`, `{MM}`, `{dd}`) from `@timestamp`,
    so a redelivered document always lands in the same index."""
    bulk: BulkConfig = BulkConfig()
    """How documents are batched into bulk requests."""
    retry: RetryConfig = RetryConfig()
    """How failed bulk items are retried before their message is handed back to the queue."""
    install_templates: bool = True
    """Install index templates at start-up (`sluice setup` does it on demand)."""
    lifecycle: LifecycleConfig = LifecycleConfig()
    """How indices are cut (daily, rollover alias, data stream) and aged out by ISM policies."""
    number_of_shards: int = Field(1, ge=1)
    """Primary shards per index (in the installed templates)."""
    number_of_replicas: int = Field(1, ge=0)
    """Replicas per index (in the installed templates)."""

    @field_validator("index")
    @classmethod
    def _index_tokens(cls, v: str) -> str:
        unknown = set(re.findall(r"{([^}]*)}", v)) - {"log_type", "yyyy", "MM", "dd"}
        if unknown:
            raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; use {{log_type}} {{yyyy}} {{MM}} {{dd}}")
        return v


class DeadLetterConfig(_Model):
    bucket: str
    """Backup bucket: dead letters are written here as NDJSON.gz with the reason and origin."""
    prefix: str = "dead-letters/"
    """Key prefix in the backup bucket."""
    replay_queue_url: str
    """A pointer message per dead-letter object goes here, for `sluice replay`."""
    max_object_bytes: int = Field(8 << 20, ge=1024)
    """A dead-letter object is cut once this many (uncompressed) bytes are buffered."""
    retry_seconds: float = Field(60.0, gt=0)
    """How long writing a dead letter (backup object + pointer) is retried before its records count as not
    delivered, so their message is redelivered instead of acknowledged with the data nowhere."""


def _check_regex(value: str, where: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"{where}: invalid regular expression {value!r}: {exc}") from None
    return value


class MultilineConfig(_Model):
    """How consecutive lines are joined into one event (a stack trace, a multi-line SQL statement)."""

    type: Literal["pattern", "count", "while_pattern"] = "pattern"
    """`pattern`: a line matching `pattern` (or not matching, with `negate`) belongs to the line before it
    (`match: after`) or after it (`match: before`); `count`: every `count_lines` lines are one event;
    `while_pattern`: consecutive lines matching `pattern` (not matching, with `negate`) are one event."""
    pattern: str | None = None
    """Regular expression (Python syntax) tested on each line; required by `pattern` and `while_pattern`."""
    negate: bool = False
    """Invert `pattern`: the lines that do NOT match are the continuation lines."""
    match: Literal["after", "before"] = "after"
    """`after`: continuation lines are appended to the line before them (Java stack traces); `before`: lines are
    held until a line that is not a continuation ends the event (a trailing `\\` continues a line)."""
    count_lines: int | None = Field(None, ge=1)
    """Lines per event for `type: count`."""
    max_lines: int = Field(500, ge=1)
    """Lines of one event at most: an event that reaches it is emitted, and the next line starts a new event
    (nothing is dropped; the split is counted)."""
    max_bytes: int = Field(10 << 20, ge=1024)
    """Bytes of one event at most, handled like `max_lines`."""
    timeout: float = Field(5.0, gt=0)
    """Seconds without a new line after which a pending event is emitted, for sources whose lines trickle in
    (an S3 object or a message ends its pending event at its end anyway)."""

    @model_validator(mode="after")
    def _complete(self) -> MultilineConfig:
        if self.type in ("pattern", "while_pattern"):
            if not self.pattern:
                raise ValueError(f"multiline type {self.type} needs pattern")
            _check_regex(self.pattern, "pattern")
        if self.type == "count" and self.count_lines is None:
            raise ValueError("multiline type count needs count_lines")
        return self


class ProcessingConfig(_Model):
    """What is done to a source's events before they are parsed and indexed (the knobs Elastic Serverless
    Forwarder and Filebeat users rely on)."""

    include: list[str] = []
    """Regular expressions; when any is given, only events matching one of them are kept."""
    exclude: list[str] = []
    """Regular expressions; events matching one are dropped (exclude wins over include). Dropped events are
    counted (`sluice_events_excluded_total`), never dead-lettered."""
    multiline: MultilineConfig | None = None
    """Join lines into events before filtering and parsing (see `MultilineConfig`)."""
    json_content_type: Literal["disabled", "ndjson", "single", "auto"] = "disabled"
    """How JSON content is split into events: `ndjson` one document per line; `single` the whole object or
    message is one document; `auto` detects it, including pretty-printed and concatenated documents;
    `disabled` leaves framing to the log type."""
    expand_event_list_from_field: str | None = None
    """A field of each JSON event holding a list: every item becomes an event of its own (e.g. `Records`)."""
    root_fields_to_add_to_expanded_event: Literal["all"] | list[str] = []
    """With `expand_event_list_from_field`: root fields copied into every item (`all`, or a list of names)."""
    tags: list[str] = []
    """Added to every document's `tags`."""
    fields: dict[str, Any] = {}
    """Added to every document (dotted keys nest: `service.name: payments`); the document's own values win."""

    @field_validator("include", "exclude")
    @classmethod
    def _regexes(cls, v: list[str]) -> list[str]:
        return [_check_regex(x, "include/exclude") for x in v]

    @property
    def active(self) -> bool:
        """Whether any option is set: the pipeline builds no processor (per unit of work) when none is."""
        return bool(self.include or self.exclude or self.multiline is not None or self.tags or self.fields
                    or self.json_content_type != "disabled")

    @model_validator(mode="after")
    def _consistent(self) -> ProcessingConfig:
        if self.expand_event_list_from_field and self.json_content_type == "disabled":
            raise ValueError("expand_event_list_from_field needs json_content_type ndjson, single or auto")
        if self.root_fields_to_add_to_expanded_event and not self.expand_event_list_from_field:
            raise ValueError("root_fields_to_add_to_expanded_event needs expand_event_list_from_field")
        return self


SinkName = Literal["opensearch", "parquet"]


class _LogSource(_Model):
    """What every source that parses logs checks: `log_type` and `fallback_log_type` name known types."""

    sinks: list[SinkName] = Field(["opensearch"], min_length=1)
    """Where this source's documents go: `opensearch`, `parquet` (see the `parquet` section), or both. A unit of
    work (message, batch) is acknowledged only once every listed sink has all of its documents."""

    @field_validator("sinks")
    @classmethod
    def _distinct_sinks(cls, v: list[SinkName]) -> list[SinkName]:
        if len(set(v)) != len(v):
            raise ValueError(f"a sink is listed twice: {v}")
        return v

    @field_validator("log_type", check_fields=False)
    @classmethod
    def _known_log_type(cls, v: str) -> str:
        if v != "auto" and v not in log_types():
            raise ValueError(f"unknown log type {v!r}; one of auto, {', '.join(log_types())}")
        return v

    @field_validator("fallback_log_type", check_fields=False)
    @classmethod
    def _known_fallback(cls, v: str | None) -> str | None:
        if v is not None and v not in log_types():
            raise ValueError(f"unknown log type {v!r}; one of {', '.join(log_types())}")
        return v


class SqsS3Source(_LogSource):
    """S3 `ObjectCreated` notifications on an SQS queue (direct, via SNS, or from EventBridge). Each object is
    streamed, decompressed (gzip, zstd, bzip2 or none, sniffed from its bytes), parsed and indexed; the
    message is deleted only after every document from it is indexed or dead-lettered."""

    type: Literal["sqs_s3"]
    """Source type."""
    processing: ProcessingConfig = ProcessingConfig()
    """Filters, multiline, JSON events, expansion, tags and fields for this source's events."""
    index: str | None = None
    """Index name pattern for this source's documents instead of `opensearch.index` (same placeholders)."""
    queue_url: str
    """The SQS queue receiving the notifications."""
    log_type: str = "auto"
    """`auto` routes by S3 key; or a fixed log type for every object of this queue."""
    max_in_flight: int = Field(10, ge=1)
    """Messages being processed at once (received but not yet acknowledged)."""
    wait_time: int = Field(20, ge=0, le=20)
    """SQS long-poll seconds."""
    visibility_timeout: int = Field(300, ge=10, le=43200)
    """Visibility set on receive and extended while a message is still in flight."""
    retry_visibility: int = Field(30, ge=0, le=43200)
    """Visibility given to a nacked message, so SQS redelivers it after this many seconds."""
    keep_original: bool = False
    """Keep each raw line as `event.original`."""
    parser_options: dict[str, Any] = {}
    """Options passed to the parser: `format` for VPC flow logs without a header line, `fields` for CloudFront
    real-time logs, `log_groups` ({glob: log type}) for CloudWatch Logs payloads; see docs/log-types.md."""
    fallback_log_type: str | None = None
    """Log type for objects neither the key nor the content identifies (e.g. `generic`, which keeps every
    line as a document). Unset: such objects are copied whole to the backup bucket as `unknown_log_type`."""


class SqsSource(_LogSource):
    """Log lines carried in SQS message bodies (plain text, base64, or gzip/zstd, detected), one or more lines
    per message, e.g. from an application or a Lambda that forwards events. Document ids come from the message
    id and the line's offset; a message is deleted only after every document from it is indexed or
    dead-lettered."""

    type: Literal["sqs"]
    """Source type."""
    processing: ProcessingConfig = ProcessingConfig()
    """Filters, multiline, JSON events, expansion, tags and fields for this source's events."""
    index: str | None = None
    """Index name pattern for this source's documents instead of `opensearch.index` (same placeholders)."""
    queue_url: str
    """The SQS queue carrying the log lines."""
    log_type: str = "auto"
    """`auto`: each message's content decides; or a fixed log type (e.g. `generic` for application logs)."""
    parser_options: dict[str, Any] = {}
    """Options passed to the parser (see docs/log-types.md)."""
    fallback_log_type: str | None = "generic"
    """Log type for messages whose content matches no parser; unset: they are dead-lettered whole."""
    keep_original: bool = False
    """Keep each raw line as `event.original`."""
    max_in_flight: int = Field(20, ge=1)
    """Messages being processed at once."""
    wait_time: int = Field(20, ge=0, le=20)
    """SQS long-poll seconds."""
    visibility_timeout: int = Field(120, ge=10, le=43200)
    """Visibility set on receive and extended while a message is still in flight."""
    retry_visibility: int = Field(30, ge=0, le=43200)
    """Visibility given to a nacked message, so SQS redelivers it after this many seconds."""


class ReplaySource(_Model):
    """Dead letters re-driven from the replay queue (pointer messages): raw lines are parsed again with today's
    parsers, rejected documents are submitted again with their original ids (so a second replay adds nothing).
    Records that fail again go back with an attempt count; after `max_attempts` they are kept under `poison/`."""

    type: Literal["replay"]
    """Source type."""
    queue_url: str | None = None
    """The replay queue; defaults to `dead_letters.replay_queue_url`."""
    max_attempts: int = Field(3, ge=1)
    """Replays of one record before it is parked under the backup bucket's `poison/` prefix and reported."""
    rate: float = Field(0.0, ge=0)
    """Records per second at most (0: unlimited), so a replay does not starve live ingestion."""
    max_in_flight: int = Field(2, ge=1)
    """Pointer messages being replayed at once."""
    wait_time: int = Field(20, ge=0, le=20)
    """SQS long-poll seconds."""
    visibility_timeout: int = Field(300, ge=10, le=43200)
    """Visibility set on receive and extended while a pointer is being replayed."""
    min_age: float = Field(300.0, ge=0)
    """Seconds a pointer waits on the queue before it is replayed, so there is time to fix the cause (a mapping,
    a parser option) before a record that just failed is tried again; without it a record that keeps failing
    would use up `max_attempts` within seconds. Younger pointers are left invisible for about that long."""


class KinesisSource(_LogSource):
    """A Kinesis data stream (plain or gzip records, CloudWatch Logs subscription payloads, CloudFront real-time
    logs, KPL-aggregated records), shared by every worker of the fleet through a lease table in DynamoDB: one
    lease per shard, balanced across live workers. A shard's position is checkpointed only after every
    document read before it is indexed or dead-lettered. See docs/kinesis.md."""

    type: Literal["kinesis"]
    """Source type."""
    processing: ProcessingConfig = ProcessingConfig()
    """Filters, multiline, JSON events, expansion, tags and fields for this source's events."""
    index: str | None = None
    """Index name pattern for this source's documents instead of `opensearch.index` (same placeholders)."""
    stream: str
    """Stream name, or its ARN (for a stream in another account, with `role_arn`)."""
    lease_table: str = "sluice-kinesis-leases"
    """DynamoDB table of leases and checkpoints (created on demand, on-demand capacity). Workers that share it
    share the stream's shards; several streams may share one table."""
    log_type: str = "auto"
    """`auto`: each record's content decides (CloudWatch Logs envelopes are routed per log group); or a fixed
    log type for every record (e.g. `cloudfront_realtime`)."""
    parser_options: dict[str, Any] = {}
    """Options passed to the parser; for CloudWatch Logs payloads `log_groups` ({glob: log type}) routes each
    log group to the type it holds (see docs/log-types.md)."""
    fallback_log_type: str | None = None
    """Log type for records whose content matches no parser (e.g. `generic`). Unset: such records are
    dead-lettered whole as `unknown_log_type`."""
    keep_original: bool = False
    """Keep each raw line as `event.original`."""
    initial_position: Literal["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP"] = "TRIM_HORIZON"
    """Where a shard that has no checkpoint yet is read from. `TRIM_HORIZON` (the oldest record kept) loses
    nothing; `LATEST` skips what the stream held before the first worker started."""
    initial_timestamp: datetime | None = None
    """Start time for `AT_TIMESTAMP` (ISO 8601)."""
    role_arn: str | None = None
    """Assume this role (STS) to read the stream, e.g. in another account; the lease table stays in the
    worker's own account. Credentials are refreshed before they expire."""
    region: str | None = None
    """Region of the stream when it is not `aws.region`."""
    worker_id: str | None = None
    """This worker's name in the lease table; default host name, process id and a random suffix."""
    lease_duration: float = Field(10.0, ge=1.0)
    """Seconds a lease stays valid without renewal: a dead worker's shards are taken over after this long plus
    up to half of it again. Leases are renewed every third of it; the table is scanned for free or expired
    leases every quarter of it."""
    shard_sync_interval: float = Field(60.0, ge=1.0)
    """Seconds between listings of the stream's shards (new shards after a split or merge also trigger one)."""
    max_records: int = Field(10_000, ge=1, le=10_000)
    """Records per GetRecords call."""
    idle_interval: float = Field(1.0, ge=0.2)
    """Seconds a reader waits after a GetRecords call that found nothing new (caught up)."""
    checkpoint_interval: float = Field(5.0, gt=0)
    """Seconds between checkpoint writes of a shard whose position moved (also written at shard end and on
    shutdown)."""
    max_pending_batches: int = Field(8, ge=1)
    """GetRecords batches of one shard read but not yet settled; the reader waits when it has this many, so a
    slow sink holds the stream back instead of filling memory."""

    @model_validator(mode="after")
    def _timestamp_for_at_timestamp(self) -> KinesisSource:
        if self.initial_position == "AT_TIMESTAMP" and self.initial_timestamp is None:
            raise ValueError("initial_position AT_TIMESTAMP needs initial_timestamp")
        return self

    @property
    def stream_name(self) -> str:
        """The name part of `stream` (an ARN ends in `stream/<name>`)."""
        return self.stream.rsplit("/", 1)[-1] if self.stream.startswith("arn:") else self.stream


SourceConfig = Annotated[SqsS3Source | SqsSource | KinesisSource | ReplaySource, Field(discriminator="type")]
SOURCE_TYPES = ("sqs_s3", "sqs", "kinesis", "replay")


class PipelineConfig(_Model):
    read_chunk_bytes: int = Field(1 << 20, ge=4096)
    """Bytes per S3 body read; decompression and framing work on whole chunks."""
    max_line_bytes: int = Field(1 << 20, ge=1024)
    """Longer lines are dead-lettered (first bytes kept) instead of growing memory."""
    max_document_bytes: int = Field(256 << 20, ge=1024)
    """Largest single JSON document (a CloudTrail file) held in memory to split into records."""
    max_json_documents: int = Field(1, ge=1)
    """Whole JSON documents (CloudTrail, Config files) parsed into records at the same time by one worker
    process; the others wait with their (decompressed) bytes read. A parsed file takes about 4x its size in
    memory, so this bounds peak memory when many such objects are in flight."""


class EnrichConfig(_Model):
    geoip_city_database: str | None = None
    """Path of a MaxMind GeoIP2/GeoLite2 City `.mmdb` file: adds `source/destination/client.geo.*`. Off when
    unset; the file is the user's (MaxMind's licence forbids shipping it)."""
    geoip_asn_database: str | None = None
    """Path of a MaxMind ASN `.mmdb` file: adds `*.as.number` and `*.as.organization.name`."""
    user_agent: bool = False
    """Parse `user_agent.original` into `user_agent.name/version/os.*/device.name`."""
    cache_size: int = Field(65536, ge=0)
    """Distinct IPs and user agents whose lookups are cached (logs repeat them heavily)."""


class TelemetryConfig(_Model):
    metrics_port: int = Field(9090, ge=0, le=65535)
    """Port of `/metrics`, `/healthz` and `/readyz` (0 disables the server)."""
    metrics_host: str = "0.0.0.0"
    """Address the metrics and health server binds to."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    """Least severe log level written."""
    log_format: Literal["json", "console"] = "json"
    """`json` (one object per line, for log pipelines) or `console` (for people)."""


class WorkerConfig(_Model):
    shutdown_grace: float = Field(30.0, gt=0)
    """Seconds SIGTERM waits for in-flight messages before nacking them and exiting."""


class ParquetConfig(_Model):
    """The Parquet sink (docs/parquet.md): a Hive-partitioned dataset on S3 for Athena."""

    bucket: str = ""
    """Bucket of the dataset; required as soon as a source lists `parquet` in its `sinks`."""
    prefix: str = "parquet/"
    """Key prefix of the dataset; tables live under `<prefix>log_type=<type>/`."""
    compression: Literal["zstd", "snappy"] = "zstd"
    """Column compression: `zstd` (smaller files, the default) or `snappy` (less CPU)."""
    compression_level: int | None = None
    """Codec level (zstd 1-22); unset: the codec's default."""
    max_file_bytes: int = Field(128 << 20, ge=1 << 20)
    """A unit's file in one partition is cut into parts of about this size (the cut falls after the row group
    that crosses it), so one huge object never makes one huge file."""
    row_group_rows: int = Field(65536, ge=1000)
    """Rows per Parquet row group; also how many rows a file holds in memory (as Arrow columns) before they
    are encoded."""
    multipart_part_bytes: int = Field(16 << 20, ge=5 << 20)
    """A file that grows past this many bytes is streamed to S3 as a multipart upload in parts of this size;
    smaller files are written with one PUT."""
    max_concurrent_uploads: int = Field(4, ge=1)
    """Files written to S3 at once; more finished files wait (which holds their units back)."""
    retry_seconds: float = Field(60.0, gt=0)
    """How long a failed S3 write is retried before its units are handed back for redelivery."""


class Config(_Model):
    aws: AwsConfig = AwsConfig()
    """AWS region, endpoints and credentials. Credentials come from the environment, the task or pod role,
    or an assumed role, never from this file."""
    opensearch: OpenSearchConfig
    """Where documents are indexed, and how."""
    dead_letters: DeadLetterConfig
    """Where records that cannot be delivered are kept (they are never dropped)."""
    sources: dict[str, SourceConfig] = Field(min_length=1)
    pipeline: PipelineConfig = PipelineConfig()
    """Bounds on the decode and framing stage."""
    enrich: EnrichConfig = EnrichConfig()
    """Optional GeoIP and user-agent enrichment, off by default."""
    telemetry: TelemetryConfig = TelemetryConfig()
    """Logs, metrics and health endpoints."""
    worker: WorkerConfig = WorkerConfig()
    """Process lifecycle."""
    parquet: ParquetConfig = ParquetConfig()
    """The Parquet sink on S3 (the light engine), used by sources whose `sinks` list `parquet`."""

    @model_validator(mode="after")
    def _parquet_has_a_bucket(self) -> Config:
        users = [name for name, src in self.sources.items() if "parquet" in getattr(src, "sinks", ())]
        if users and not self.parquet.bucket:
            raise ValueError(f"parquet.bucket: required, because source(s) {', '.join(sorted(users))} "
                             "write to parquet")
        return self


_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _expand(value: Any, path: str, env: dict[str, str], errors: list[str]) -> Any:
    if isinstance(value, str):
        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            errors.append(f"{path or '<root>'}: environment variable {name} is not set")
            return ""
        return _ENV_RE.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v, f"{path}.{k}" if path else str(k), env, errors) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, f"{path}[{i}]", env, errors) for i, v in enumerate(value)]
    return value


def _format_errors(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        parts = list(err["loc"])
        if len(parts) > 2 and parts[0] == "sources" and parts[2] in SOURCE_TYPES:
            del parts[2]  # the union's tag is noise: the user wrote sources.<name>.<key>
        loc: list[str] = []
        for part in parts:
            if isinstance(part, int):
                loc.append(f"[{part}]")
            elif loc:
                loc.append(f".{part}")
            else:
                loc.append(str(part))
        path = "".join(loc) or "<root>"
        msg = err["msg"]
        if err["type"] == "missing":
            msg = "field required"
        elif err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        out.append(f"{path}: {msg}")
    return out


def parse_config(data: Any, env: dict[str, str] | None = None) -> Config:
    """Validate an already-loaded YAML tree; `${VAR}` and `${VAR:-default}` are expanded first."""
    if not isinstance(data, dict):
        raise ConfigError("<root>: the configuration must be a mapping")
    errors: list[str] = []
    expanded = _expand(data, "", dict(os.environ) if env is None else env, errors)
    if not errors:  # then `${secretsmanager:...}` references (worker/secret_refs.py), read once at load time
        from worker.secret_refs import resolve_secret_refs

        expanded = resolve_secret_refs(expanded, errors)
    if errors:
        raise ConfigError("\n".join(errors))
    # Sources are a discriminated union: say which types exist when `type` is missing or wrong.
    try:
        return Config.model_validate(expanded)
    except ValidationError as exc:
        raise ConfigError("\n".join(_format_errors(exc))) from None


def load_config(path: str | Path, env: dict[str, str] | None = None) -> Config:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    return parse_config(data, env)


SECRET_KEYS = frozenset({"password", "secret", "token", "secret_access_key"})


def redacted(cfg: Config) -> dict[str, Any]:
    """The config as a plain tree with secrets masked, for logs and `check-config` output."""

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: ("***" if k in SECRET_KEYS and val else walk(val)) for k, val in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    result: dict[str, Any] = walk(cfg.model_dump(mode="json"))
    return result
