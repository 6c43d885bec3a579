"""Any line-oriented log nobody wrote a parser for -> a minimal ECS document that never fails.

`generic` is the type a source chooses explicitly for application logs, custom CloudWatch Logs groups, or S3
prefixes holding whatever a team writes there. Its one promise is that no line is ever refused: a parse error
would turn an unknown format into a dead-letter queue, and "unknown format" is the reason to pick this type.

- A line that is a JSON object (`{...}`, as structured loggers write) is decoded and kept whole under `json`,
  declared `flattened`: arbitrary keys from arbitrary applications would otherwise grow the index mapping
  without bound, and two applications logging the same key as a number and as an object would reject each
  other's documents. Every leaf stays searchable by key (`json.user.id: 42`). A few well-known keys are also
  lifted into ECS: `message` (or `msg`, as pino/zap/logrus write it) when it is a string, `log.level` from
  `level` / `severity` / `log.level` / `levelname`, and `@timestamp` from the first of `@timestamp`,
  `timestamp`, `time`, `ts` holding a valid time (ISO 8601 text, or epoch seconds / milliseconds /
  microseconds / nanoseconds as a number or digit string; an implausible value is left in `json` only).
  (Integers beyond 64 bits are decoded as floats; `event.original`, when kept, has the exact text.)
- Any other line (plain text, a JSON array or scalar, `{` text that is not valid JSON) is `{"message": line}`.
- Blank lines are not events (None). Nothing else returns None and nothing raises.

`@timestamp` is absent when the line does not carry one we can trust; the pipeline then uses the S3 object's
LastModified (or the CloudWatch event time). The CloudWatch Logs group and stream of the stream, when known,
go to `aws.cloudwatch.log_group` / `aws.cloudwatch.log_stream` (the names Elastic's `aws-cloudwatch` input
uses); `cloud.account.id` / `cloud.region` come from the stream context (S3 key or subscription payload).
"""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar

import orjson

from worker.parsers._aws import cloud_builder, cloudwatch_origin
from worker.parsers._fields import epoch_ms_to_iso, iso_to_utc_ms
from worker.parsers.base import FieldType, LogParser, ParseContext

_TIME_KEYS = ("@timestamp", "timestamp", "time", "ts")
_LEVEL_KEYS = ("level", "severity", "log.level", "levelname")
_MESSAGE_KEYS = ("message", "msg")

# Epoch magnitudes accepted as times, by unit: 1973-03 .. 5138 for seconds, the same span for the others.
_EPOCH_UNITS: tuple[tuple[float, float, int], ...] = (
    (1e8, 1e11, 1),
    (1e11, 1e14, 1_000),
    (1e14, 1e17, 1_000_000),
    (1e17, 1e20, 1_000_000_000),
)


def epoch_number_to_iso(value: float) -> str | None:
    """An epoch time in s, ms, µs or ns (told apart by magnitude) -> `2021-11-08T14:22:12.637Z`; None when the
    number is not a plausible time (a duration, a counter, a negative or absurd value)."""
    if value != value:  # NaN
        return None
    for low, high, per_second in _EPOCH_UNITS:
        if low <= value < high:
            if isinstance(value, int):
                ms = value * 1000 // per_second
            else:
                ms = round(value * 1000 / per_second)
            return epoch_ms_to_iso(ms)
    return None


def timestamp_value(value: Any) -> str | None:
    """A time-ish JSON value (ISO 8601 text, epoch number or epoch digit string) -> UTC ms ISO text, or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return epoch_number_to_iso(value)
    if not isinstance(value, str) or not value:
        return None
    head, dot, tail = value.partition(".")
    if head.isascii() and head.isdigit() and (not dot or (tail.isascii() and tail.isdigit())):
        if len(head) > 20:
            return None
        return epoch_number_to_iso(float(value) if dot else int(value))
    try:
        stamp = iso_to_utc_ms(value.strip())
        # iso_to_utc_ms leaves "Feb 31" to the index to refuse; here a refused document would lose the line.
        if stamp[8:10] > "28" or stamp[:4] == "0000":
            date(int(stamp[:4]), int(stamp[5:7]), int(stamp[8:10]))
    except ValueError:
        return None
    return stamp


class GenericParser(LogParser):
    """Stateless apart from the stream context; never raises, returns None only for blank lines."""

    log_type: ClassVar[str] = "generic"
    framing = "lines"
    fields: ClassVar[dict[str, FieldType]] = {
        "@timestamp": "date",
        "message": "text",
        "log.level": "keyword",
        "json": "flattened",
        "cloud.provider": "keyword",
        "cloud.account.id": "keyword",
        "cloud.region": "keyword",
        "aws.cloudwatch.log_group": "keyword",
        "aws.cloudwatch.log_stream": "keyword",
    }
    example = '{"time":"2024-05-02T10:15:42.120Z","level":"warn","msg":"retrying upload","attempt":2,"bucket":"logs"}'
    routing = (
        "Never chosen by `log_type: auto` (no sniffing): set `log_type: generic` on a source or an S3 prefix "
        "to index any line-oriented log as `message` (JSON-object lines decoded into `json`)."
    )

    @classmethod
    def sniff(cls, head: str) -> bool:
        return False

    def __init__(self, ctx: ParseContext) -> None:
        super().__init__(ctx)
        self._cloud = cloud_builder(ctx.account_id, ctx.region)
        self._cloudwatch = cloudwatch_origin(ctx)
        self._keep = ctx.keep_original

    def parse(self, record: Any) -> dict[str, Any] | None:
        if isinstance(record, str):
            line = record
            if not line or line.isspace():
                return None
            doc: dict[str, Any] | None = None
            first = line[0]
            if first == "{" or (first in " \t" and line.lstrip()[:1] == "{"):
                doc = self._json_line(line)
            if doc is None:
                doc = {"message": line}
        elif isinstance(record, dict):  # a JSON-framed stream configured as generic: same treatment
            try:
                line = orjson.dumps(record).decode()
            except TypeError:  # orjson.JSONEncodeError: not JSON-native after all
                line = str(record)
            doc = self._object(record, line)
        else:
            line = record.decode("utf-8", "replace") if isinstance(record, bytes) else str(record)
            if not line or line.isspace():
                return None
            doc = {"message": line}

        doc["cloud"] = self._cloud()
        if self._cloudwatch:
            doc["aws"] = {"cloudwatch": self._cloudwatch.copy()}
        if self._keep:
            doc["event"] = {"original": line}
        return doc

    def _json_line(self, line: str) -> dict[str, Any] | None:
        """The document of a JSON-object line, or None when the line is not one (then it is plain text)."""
        if line.rstrip()[-1:] != "}":
            return None
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(obj, dict) or not obj:
            return None
        return self._object(obj, line)

    @staticmethod
    def _object(obj: dict[str, Any], line: str) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for key in _MESSAGE_KEYS:
            value = obj.get(key)
            if isinstance(value, str) and value:
                doc["message"] = value
                break
        for key in _TIME_KEYS:
            value = obj.get(key)
            if value is not None:
                stamp = timestamp_value(value)
                if stamp is not None:
                    doc["@timestamp"] = stamp
                    break
        for key in _LEVEL_KEYS:
            value = obj.get(key)
            if isinstance(value, str) and value:
                doc["log"] = {"level": value}
                break
            if isinstance(value, int) and not isinstance(value, bool):
                doc["log"] = {"level": str(value)}  # bunyan / pino numeric levels (30 = info)
                break
        if obj:
            doc["json"] = obj
        else:
            doc["message"] = line
        return doc


PARSER = GenericParser
