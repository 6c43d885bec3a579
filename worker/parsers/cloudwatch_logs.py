"""CloudWatch Logs subscription payloads -> documents of the log type each log group holds.

A subscription delivers `{"messageType", "owner", "logGroup", "logStream", "subscriptionFilters", "logEvents":
[{"id", "timestamp", "message"}]}` envelopes: gzip'd JSON in a Kinesis record, or, through Firehose, written to
S3 back to back with no separator (the JSON framer splits those). The envelope is not the log: each event's
`message` is one record of the service that logged it (a CloudTrail event, a VPC flow line, a Lambda REPORT
line), so this parser routes every envelope by its log group and parses the messages with that type's parser.
Documents are indexed under the inner type; their ids end in the event id, which CloudWatch assigns once, so a
redelivered payload maps to the same documents.

Routing order: the source's `log_groups` option (glob -> log type, or -> {log_type, options}), then the AWS
naming conventions below, then content sniffing of the first event, then `generic` (a message is never lost
for want of a parser). CONTROL_MESSAGE envelopes (sent when a subscription is created) are skipped.
"""

from __future__ import annotations

import re
from dataclasses import replace
from fnmatch import fnmatchcase
from typing import Any, ClassVar

import orjson

from worker.parsers._fields import epoch_ms_to_iso, set_dotted
from worker.parsers.base import Emitted, Failed, FieldType, LogParser, ParseContext, ParseError

# (log group pattern, log type): AWS's own naming, for groups the user did not map.
_GROUP_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^/aws/lambda/"), "lambda"),
    (re.compile(r"^/aws/rds/(?:instance|cluster)/[^/]+/postgresql$"), "rds_postgresql"),
    (re.compile(r"^/aws/rds/(?:instance|cluster)/[^/]+/(?:error|slowquery|general|audit)$"), "rds_mysql"),
    (re.compile(r"^aws-cloudtrail-logs|CloudTrail"), "cloudtrail"),
    (re.compile(r"^aws-waf-logs-"), "waf"),
    (re.compile(r"^/aws/route53/"), "route53_public"),
)
_MAX_CACHED_STREAMS = 256


class CloudWatchLogsParser(LogParser):
    log_type: ClassVar[str] = "cloudwatch_logs"
    framing = "json_records"
    expands = True
    fields: ClassVar[dict[str, FieldType]] = {
        "@timestamp": "date",
        "aws.cloudwatch.log_group": "keyword",
        "aws.cloudwatch.log_stream": "keyword",
        "aws.cloudwatch.event_id": "keyword",
        "cloud.account.id": "keyword",
        "message": "text",
    }
    example = (
        '{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/aws/lambda/echo-nodejs",'
        '"logStream":"2019/03/13/[$LATEST]94fa867e5374431291a7fc14e2f56ae7","subscriptionFilters":'
        '["LambdaStream_cloudwatchlogs-node"],"logEvents":[{"id":"34622316099697884706540976068822859012661220141'
        '643892546","timestamp":1552518348220,"message":"REPORT RequestId: 6234bffe-149a-b642-81ff-2e8e376d8aff\\t'
        'Duration: 46.84 ms\\tBilled Duration: 47 ms \\tMemory Size: 192 MB\\tMax Memory Used: 72 MB\\t\\n"}]}'
    )
    routing = (
        "Content: a JSON envelope with `messageType` and `logEvents` (Kinesis records, Firehose-written S3 "
        "objects). Each event is then routed by log group: the source's `log_groups` option, AWS's group names "
        "(`/aws/lambda/*`, `/aws/rds/*/<log>`, `aws-cloudtrail-logs*`, `aws-waf-logs-*`, `/aws/route53/*`), the "
        "first message's content, else `generic`."
    )

    @classmethod
    def sniff(cls, head: str) -> bool:
        # AWS writes `messageType` first; other writers (moto, re-serialised payloads) sort the keys, which puts
        # `logEvents` first and `messageType` after every event, possibly past the sniffed head.
        text = head.lstrip()
        if not text.startswith("{"):
            return False
        return ('"messageType"' in text[:2048] and '"logEvents"' in text) or text[1:].lstrip().startswith(
            '"logEvents"')

    def __init__(self, ctx: ParseContext) -> None:
        super().__init__(ctx)
        self._rules = _configured_rules(ctx.options.get("log_groups"))
        self._streams: dict[tuple[str, str, str], Any] = {}

    def parse(self, record: Any) -> dict[str, Any] | None:
        raise ParseError("cloudwatch_logs envelopes expand into several documents; use StreamParser")

    def expand(self, record: Any, offset: int) -> tuple[list[Emitted], list[Failed]]:
        if not isinstance(record, dict):
            raise ParseError("CloudWatch Logs payload is not a JSON object")
        kind = record.get("messageType")
        if kind == "CONTROL_MESSAGE":
            return [], []
        events = record.get("logEvents")
        if kind != "DATA_MESSAGE" or not isinstance(events, list):
            raise ParseError(f"not a CloudWatch Logs DATA_MESSAGE envelope (messageType={kind!r})")
        group = str(record.get("logGroup") or "")
        stream_name = str(record.get("logStream") or "")
        owner = str(record.get("owner") or "")
        frames: list[tuple[int, Any]] = []
        failures: list[Failed] = []
        for i, event in enumerate(events):
            message = event.get("message") if isinstance(event, dict) else None
            if not isinstance(message, str):
                failures.append((offset, event, self.log_type, f"log event {i} has no text message"))
                continue
            frames.append((i, message.rstrip("\n")))
        if not frames:
            return [], failures
        log_type, options = self._route(group, frames[0][1])
        stream = self._stream(log_type, options, group, stream_name, owner)
        if stream.framing == "json_records":
            frames = self._decode_json(frames, offset, log_type, group, events, failures)
        parsed, failed, _ = stream.process(frames)
        docs: list[Emitted] = []
        for i, _sub, inner_type, body in parsed:
            event = events[i]
            event_id = str(event.get("id", i))
            aws = body.setdefault("aws", {})
            cw = aws.setdefault("cloudwatch", {}) if isinstance(aws, dict) else {}
            cw["log_group"] = group
            cw["log_stream"] = stream_name
            cw["event_id"] = event_id
            if "@timestamp" not in body:
                stamp = event.get("timestamp")
                if isinstance(stamp, int):
                    body["@timestamp"] = epoch_ms_to_iso(stamp)
            if owner and "cloud" not in body:
                set_dotted(body, "cloud.account.id", owner)
                set_dotted(body, "cloud.provider", "aws")
            docs.append((offset, event_id, inner_type, body))
        for i, raw, inner_type, reason in failed:
            event_id = events[i].get("id", i)
            failures.append((offset, raw, inner_type, f"{reason} (log group {group}, event {event_id})"))
        return docs, failures

    def _decode_json(self, frames: list[tuple[int, Any]], offset: int, log_type: str, group: str,
                     events: list[Any], failures: list[Failed]) -> list[tuple[int, Any]]:
        """Messages of JSON log types (CloudTrail, WAF) are JSON text inside the envelope's JSON."""
        out: list[tuple[int, Any]] = []
        for i, message in frames:
            where = f"(log group {group}, event {events[i].get('id', i)})"
            try:
                value = orjson.loads(message)
            except orjson.JSONDecodeError as exc:
                failures.append((offset, message, log_type, f"invalid JSON: {exc} {where}"))
                continue
            if not isinstance(value, dict):
                failures.append((offset, message, log_type, f"not a JSON object {where}"))
                continue
            out.append((i, value))
        return out

    def _route(self, group: str, first_message: str) -> tuple[str, dict[str, Any]]:
        for pattern, log_type, options in self._rules:
            if fnmatchcase(group, pattern):
                return log_type, options
        for regex, log_type in _GROUP_RULES:
            if regex.search(group):
                return log_type, {}
        from worker.routing import sniff_log_type  # routing imports the registry, which imports this module

        sniffed = sniff_log_type(first_message)
        if sniffed is None or sniffed == self.log_type:
            return "generic", {}
        return sniffed, {}

    def _stream(self, log_type: str, options: dict[str, Any], group: str, stream_name: str, owner: str) -> Any:
        from worker.parsers.stream import StreamParser  # stream imports the registry, which imports this module

        key = (log_type, group, stream_name)
        stream = self._streams.get(key)
        if stream is None:
            if len(self._streams) >= _MAX_CACHED_STREAMS:
                self._streams.clear()
            ctx = replace(self.ctx, log_group=group, log_stream=stream_name, account_id=self.ctx.account_id or owner,
                          options={**self.ctx.options, **options})
            stream = StreamParser(log_type, ctx, join_lines=False)
            self._streams[key] = stream
        return stream


def _configured_rules(value: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """`log_groups` option: {glob: log_type} or {glob: {log_type: ..., options: {...}}}; checked at start-up."""
    from worker.parsers import log_types

    if value is None:
        return []
    if not isinstance(value, dict):
        raise ValueError("cloudwatch_logs option log_groups: a mapping of log group glob -> log type")
    rules: list[tuple[str, str, dict[str, Any]]] = []
    for pattern, target in value.items():
        options: dict[str, Any] = {}
        if isinstance(target, dict):
            options = dict(target.get("options") or {})
            target = target.get("log_type")
        if target not in log_types() or target == CloudWatchLogsParser.log_type:
            raise ValueError(f"cloudwatch_logs option log_groups[{pattern!r}]: unknown log type {target!r}")
        rules.append((str(pattern), str(target), options))
    return rules


PARSER = CloudWatchLogsParser
