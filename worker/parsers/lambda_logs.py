"""AWS Lambda function logs (CloudWatch Logs group `/aws/lambda/<function>`) -> ECS.

Every record becomes a document; a line this parser does not recognise is kept as `message`, never refused.
Recognised shapes:

- platform lines `START RequestId: <id> Version: $LATEST`, `END RequestId: <id>`, `REPORT RequestId: <id>\\t
  Duration: 102.25 ms\\tBilled Duration: 103 ms\\tMemory Size: 128 MB\\tMax Memory Used: 70 MB\\tInit Duration:
  150.0 ms\\tXRAY TraceId: ..\\tSegmentId: ..\\tSampled: true`, `INIT_START`, `INIT_REPORT`, `EXTENSION`,
  `TELEMETRY` -> `event.action` named after the Lambda Telemetry API event type (`platform.start`,
  `platform.end`, `platform.report`, `platform.initStart`, ...), numbers under `aws.lambda.report.*` with the
  unit in the name (`duration.ms`, `billed_duration.ms`, `memory_size.mb`, `max_memory_used.mb`,
  `init_duration.ms`, `restore_duration.ms`, `billed_restore_duration.ms`), `event.duration` (ns),
  `faas.coldstart` (an init or restore duration was reported), `trace.id` / `span.id` / `aws.lambda.xray.sampled`,
  `aws.lambda.report.status` / `error.type` / `event.outcome` (timeouts, crashes); keys newer than this parser
  are kept as text in the flattened `aws.lambda.report.extra`;
- runtime console lines `<ISO time>\\t<request id>\\t<LEVEL>\\t<message>` (Node.js, .NET; Node.js 8 without the
  level) and Python's `[LEVEL]\\t<ISO time>\\t<request id>\\t<message>` -> `@timestamp`, `log.level`,
  `aws.lambda.request_id` (= `faas.execution`), `message`;
- `<ISO time> <request id> Task timed out after 3.00 seconds`, `RequestId: <id> Error: ...`;
- JSON lines (Lambda's JSON log format, Powertools, any structured logger): time, level, message, request id,
  logger, service, cold start and X-Ray trace id are taken into ECS, every other key is kept under the
  flattened `aws.lambda.json`; the JSON form of platform events (`{"type": "platform.report", "record": ..}`)
  maps to the same fields as the text form;
- a CloudWatch Logs export line `<ISO time> <message>` (S3): the prefix dates the record parsed after it.

Platform lines carry no time of their own; the pipeline dates them with the CloudWatch event's (or the S3
object's) time. `\\r`, which the Node.js runtime writes for newlines inside one event, becomes `\\n` in the
message. The function name comes from the log group (`/aws/lambda/<fn>`, Lambda@Edge `/aws/lambda/<region>.<fn>`)
into `faas.name` (and `faas.id`, the function ARN, when the account and region are known), the version from the
log stream (`2019/06/07/[$LATEST]...`) into `faas.version`; `cloud.service.name` is `lambda`.

In files, multi-line records are folded back (`continuation`): lines starting with whitespace, `}` or `]`
(pretty-printed JSON, stack traces), a line holding only `{` or `[` (a JSON block printed under a console
line's header, as `console.log("EVENT\\n" + JSON.stringify(event, null, 2))` writes it), and an `XRAY TraceId:`
line (the tail of a REPORT line).
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from worker.parsers._aws import cloud_builder
from worker.parsers._fields import epoch_to_iso, iso_to_utc_ms, snake_case
from worker.parsers.base import FieldType, LogParser, ParseContext

_CONTINUATION = re.compile(r"[ \t}\]]|[{\[][ \t]*$|XRAY TraceId: ")
_SNIFF = re.compile(r"^(?:\d{4}-\d\d-\d\dT[\d:.]+Z )?(?:START|REPORT) RequestId: [0-9a-f]{8}-", re.M)
_EDGE_PREFIX = re.compile(r"[a-z]{2}(?:-gov)?-[a-z]+-\d\.")
_KNOWN_KEYS = re.compile(
    r"\b(RequestId|Version|Billed Restore Duration|Restore Duration|Billed Duration|Init Duration|Duration"
    r"|Memory Size|Max Memory Used|XRAY TraceId|SegmentId|Sampled|Status|Error Type|Phase"
    r"|Runtime Version ARN|Runtime Version|Name|State|Events|Types): "
)
_LEVELS = frozenset(("INFO", "WARN", "WARNING", "ERROR", "DEBUG", "TRACE", "FATAL", "CRITICAL", "NOTICE"))

# REPORT / INIT_REPORT keys -> (name under aws.lambda.report, unit: the leaf name)
_REPORT_KEYS: dict[str, tuple[str, str]] = {
    "Duration": ("duration", "ms"),
    "Billed Duration": ("billed_duration", "ms"),
    "Memory Size": ("memory_size", "mb"),
    "Max Memory Used": ("max_memory_used", "mb"),
    "Init Duration": ("init_duration", "ms"),
    "Restore Duration": ("restore_duration", "ms"),
    "Billed Restore Duration": ("billed_restore_duration", "ms"),
}
# JSON platform.report `record.metrics` keys -> the same names
_METRIC_KEYS: dict[str, tuple[str, str]] = {
    "durationMs": ("duration", "ms"),
    "billedDurationMs": ("billed_duration", "ms"),
    "memorySizeMB": ("memory_size", "mb"),
    "maxMemoryUsedMB": ("max_memory_used", "mb"),
    "initDurationMs": ("init_duration", "ms"),
    "restoreDurationMs": ("restore_duration", "ms"),
    "billedRestoreDurationMs": ("billed_restore_duration", "ms"),
}
_PLATFORM_ACTIONS = {
    "START": "platform.start",
    "END": "platform.end",
    "REPORT": "platform.report",
    "INIT_START": "platform.initStart",
    "INIT_REPORT": "platform.initReport",
    "EXTENSION": "platform.extension",
    "TELEMETRY": "platform.telemetrySubscription",
}
_TIME_KEYS = ("timestamp", "time", "@timestamp", "Timestamp")
_LEVEL_KEYS = ("level", "levelname", "log.level", "severity", "logLevel", "Level")
_MESSAGE_KEYS = ("message", "msg", "Message")
_REQUEST_KEYS = ("requestId", "AWSRequestId", "awsRequestId", "aws_request_id", "function_request_id")
_TRACE_KEYS = ("xray_trace_id", "traceId", "xrayTraceId")


def _pairs(text: str) -> list[tuple[str, str]]:
    """`RequestId: x\\tDuration: 1 ms\\t...` -> [(key, value)]. Tab-separated keys are read whatever they are
    (a key newer than this parser is kept); lines whose tabs were lost (rendered as spaces) are cut at the
    keys Lambda is known to write."""
    if "\t" in text:
        out: list[tuple[str, str]] = []
        for piece in (text.replace("\n", "\t") if "\n" in text else text).split("\t"):
            key, sep, value = piece.partition(": ")
            if sep and key.strip():
                out.append((key.strip(), value.strip()))
        return out
    found = list(_KNOWN_KEYS.finditer(text))
    return [
        (m.group(1), text[m.end() : found[i + 1].start() if i + 1 < len(found) else len(text)].strip())
        for i, m in enumerate(found)
    ]


def _time(value: Any) -> str | None:
    """A JSON log's time (ISO text, or epoch milliseconds / seconds) -> ISO UTC milliseconds; None if not."""
    if isinstance(value, str):
        try:
            return iso_to_utc_ms(value)
        except ValueError:
            return None
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        millis = int(value if value > 1e11 else value * 1000)
        try:
            return epoch_to_iso(str(millis // 1000))[:20] + f"{millis % 1000:03d}Z"
        except ValueError:
            return None
    return None


def _is_iso(value: str) -> bool:
    return len(value) >= 20 and value[4] == "-" and value[10] == "T" and value[:4].isdigit()


def _is_request_id(value: str) -> bool:
    return len(value) == 36 and value[8] == "-" and value[13] == "-" and value[23] == "-"


class LambdaParser(LogParser):
    """Per-stream state: the function name, version and ARN from the CloudWatch Logs group and stream."""

    log_type: ClassVar[str] = "lambda"
    framing = "lines"
    continuation = _CONTINUATION
    example = (
        "REPORT RequestId: c793869b-ee49-115b-a5b6-4fd21e8dedac\tDuration: 128.83 ms\tBilled Duration: 200 ms\t"
        "Memory Size: 128 MB\tMax Memory Used: 74 MB\tInit Duration: 166.62 ms\t"
        "XRAY TraceId: 1-5d9d007f-0a8c7fd02xmpl480aed55ef0\tSegmentId: 3d752xmpl1bbe37e\tSampled: true"
    )
    routing = (
        "CloudWatch Logs groups /aws/lambda/<function> (via the cloudwatch_logs envelope), or a source's fixed "
        "log_type; content: a line starting with `START RequestId:` or `REPORT RequestId:`."
    )
    fields: ClassVar[dict[str, FieldType]] = {
        "@timestamp": "date",
        "message": "text",
        "event.original": "keyword",
        "event.kind": "keyword",
        "event.action": "keyword",
        "event.outcome": "keyword",
        "event.duration": "long",
        "log.level": "keyword",
        "log.logger": "keyword",
        "error.type": "keyword",
        "service.name": "keyword",
        "trace.id": "keyword",
        "span.id": "keyword",
        "cloud.provider": "keyword",
        "cloud.account.id": "keyword",
        "cloud.region": "keyword",
        "cloud.service.name": "keyword",
        "faas.name": "keyword",
        "faas.id": "keyword",
        "faas.version": "keyword",
        "faas.execution": "keyword",
        "faas.coldstart": "boolean",
        "aws.lambda.request_id": "keyword",
        "aws.lambda.report.duration.ms": "double",
        "aws.lambda.report.billed_duration.ms": "double",
        "aws.lambda.report.memory_size.mb": "long",
        "aws.lambda.report.max_memory_used.mb": "long",
        "aws.lambda.report.init_duration.ms": "double",
        "aws.lambda.report.restore_duration.ms": "double",
        "aws.lambda.report.billed_restore_duration.ms": "double",
        "aws.lambda.report.status": "keyword",
        "aws.lambda.report.phase": "keyword",
        "aws.lambda.report.extra": "flattened",
        "aws.lambda.xray.sampled": "boolean",
        "aws.lambda.runtime.version": "keyword",
        "aws.lambda.runtime.version_arn": "keyword",
        "aws.lambda.extension": "flattened",
        "aws.lambda.telemetry": "flattened",
        "aws.lambda.json": "flattened",
    }

    def __init__(self, ctx: ParseContext) -> None:
        super().__init__(ctx)
        name = ""
        if ctx.log_group.startswith("/aws/lambda/"):
            name = ctx.log_group[12:]
            if (m := _EDGE_PREFIX.match(name)) is not None:
                name = name[m.end() :]
        version = ""
        stream = ctx.log_stream
        if (open_ := stream.find("[")) >= 0 and (close := stream.find("]", open_)) > open_ + 1:
            version = stream[open_ + 1 : close]
        arn = f"arn:aws:lambda:{ctx.region}:{ctx.account_id}:function:{name}" if (
            name and ctx.region and ctx.account_id
        ) else ""
        base: dict[str, Any] = {}
        if name:
            base["name"] = name
        if arn:
            base["id"] = arn
        if version:
            base["version"] = version
        self._faas: dict[str, Any] = base
        """What every document's `faas` gets from the group and stream (a record's own version wins)."""
        self._cloud = cloud_builder(ctx.account_id, ctx.region, "lambda")
        self._keep = ctx.keep_original

    @classmethod
    def sniff(cls, head: str) -> bool:
        return _SNIFF.search(head) is not None

    def parse(self, record: Any) -> dict[str, Any] | None:
        raw: str = record
        text = raw.replace("\r\n", "\n").replace("\r", "\n") if "\r" in raw else raw
        text = text.rstrip()
        if not text:
            return None
        doc = self._parse(text)
        event: dict[str, Any] | None = doc.get("event")
        if event is None:
            event = doc["event"] = {"kind": "event"}
        else:
            event["kind"] = "event"
        if self._faas:
            faas: dict[str, Any] | None = doc.get("faas")
            if faas is None:
                doc["faas"] = self._faas.copy()
            else:
                for key, value in self._faas.items():
                    if key not in faas:
                        faas[key] = value
        doc["cloud"] = self._cloud()
        if self._keep:
            event["original"] = raw
        return doc

    def _parse(self, text: str, nested: bool = False) -> dict[str, Any]:
        first = text[0]
        if first.isdigit() and text[10:11] == "T":
            tab = text.find("\t", 0, 40)
            if tab > 0:
                return self._console(text)
            space = text.find(" ", 0, 40)
            if space > 0 and not nested and _is_iso(text[:space]):
                return self._prefixed(text[:space], text[space + 1 :])
        elif first == "[":
            return self._python(text)
        elif first == "{" and text[-1] == "}":
            try:
                obj = json.loads(text)
            except ValueError:
                obj = None
            if isinstance(obj, dict):
                return self._json(obj, text)
        elif first in "SERITX":
            keyword, _, rest = text.partition(" ")
            if "\t" in keyword:
                keyword, _, rest = text.partition("\t")
            action = _PLATFORM_ACTIONS.get(keyword)
            if action is not None:
                return self._platform(keyword, action, rest, text)
            if keyword == "RequestId:":
                req, _, _ = rest.partition(" ")
                return self._with_request({"message": text}, req)
            if keyword == "XRAY":
                doc: dict[str, Any] = {"message": text}
                lam: dict[str, Any] = {}
                self._report(_pairs(text), doc, lam)
                if lam:
                    doc["aws"] = {"lambda": lam}
                return doc
        return {"message": text}

    # --- runtime lines -------------------------------------------------------------------------------------

    @staticmethod
    def _with_request(doc: dict[str, Any], request_id: str) -> dict[str, Any]:
        if request_id and request_id != "undefined":
            doc["aws"] = {"lambda": {"request_id": request_id}}
            doc["faas"] = {"execution": request_id}
        return doc

    def _console(self, text: str) -> dict[str, Any]:
        """`<ISO time>\\t<request id>\\t<LEVEL>\\t<message>`; Node.js 8: no level."""
        parts = text.split("\t", 3)
        try:
            timestamp = iso_to_utc_ms(parts[0])
        except ValueError:
            return {"message": text}
        doc: dict[str, Any] = {"@timestamp": timestamp}
        n = len(parts)
        if n == 4 and parts[2].upper() in _LEVELS:
            doc["log"] = {"level": parts[2]}
            doc["message"] = parts[3]
        else:
            doc["message"] = "\t".join(parts[2:])
        return self._with_request(doc, parts[1] if n > 1 else "")

    def _python(self, text: str) -> dict[str, Any]:
        """`[LEVEL]\\t<ISO time>\\t<request id>\\t<message>`, or `[ERROR] Runtime.X: ...` at init."""
        close = text.find("]", 1, 12)
        level = text[1:close] if close > 0 else ""
        if not level or level.upper() not in _LEVELS:
            return {"message": text}
        doc: dict[str, Any] = {"log": {"level": level}}
        rest = text[close + 1 :]
        if rest[:1] == "\t":
            parts = rest[1:].split("\t", 2)
        else:
            parts = rest.lstrip(" ").split(None, 2)  # tabs rendered as spaces
        if len(parts) == 3 and _is_iso(parts[0]) and (_is_request_id(parts[1]) or rest[:1] == "\t"):
            try:
                doc["@timestamp"] = iso_to_utc_ms(parts[0])
            except ValueError:
                doc["message"] = rest.strip()
                return doc
            doc["message"] = parts[2]
            return self._with_request(doc, parts[1])
        doc["message"] = rest.strip()
        return doc

    def _prefixed(self, stamp: str, rest: str) -> dict[str, Any]:
        """`<ISO time> <request id> Task timed out ...`, or a CloudWatch Logs export line `<ISO time> <msg>`."""
        try:
            timestamp = iso_to_utc_ms(stamp)
        except ValueError:
            return {"message": stamp + " " + rest}
        if _is_request_id(rest[:36]) and rest[36:37] == " ":
            return self._with_request({"@timestamp": timestamp, "message": rest[37:]}, rest[:36])
        doc: dict[str, Any] = self._parse(rest, True) if rest.strip() else {"message": stamp + " " + rest}
        doc.setdefault("@timestamp", timestamp)
        return doc

    # --- platform lines ------------------------------------------------------------------------------------

    def _platform(self, keyword: str, action: str, rest: str, text: str) -> dict[str, Any]:
        doc: dict[str, Any]
        if keyword == "END" and rest[:11] == "RequestId: " and " " not in rest[11:]:
            request_id = rest[11:]
            return {
                "message": text,
                "event": {"action": action},
                "aws": {"lambda": {"request_id": request_id}},
                "faas": {"execution": request_id},
            }
        if keyword == "START" and rest[:11] == "RequestId: " and "\t" not in rest:
            request_id, _, version = rest[11:].partition(" Version: ")
            if " " not in request_id and " " not in version:
                doc = {
                    "message": text,
                    "event": {"action": action},
                    "aws": {"lambda": {"request_id": request_id}},
                    "faas": {"execution": request_id, "version": version} if version else {"execution": request_id},
                }
                return doc
        doc = {"message": text, "event": {"action": action}}
        pairs = _pairs(rest)
        lam: dict[str, Any] = {}
        request_id = ""
        if keyword in ("START", "END", "REPORT", "INIT_REPORT"):
            for key, value in pairs:
                if key == "RequestId":
                    request_id = value
                elif key == "Version" and value:
                    doc["faas"] = {"version": value}
            if keyword in ("REPORT", "INIT_REPORT"):
                self._report(pairs, doc, lam)
        elif keyword == "INIT_START":
            runtime: dict[str, Any] = {}
            for key, value in pairs:
                if key == "Runtime Version":
                    runtime["version"] = value
                elif key == "Runtime Version ARN":
                    runtime["version_arn"] = value
            if runtime:
                lam["runtime"] = runtime
        else:  # EXTENSION / TELEMETRY: Name, State, Events / Types
            values = {snake_case(key.replace(" ", "_")).lower(): value for key, value in pairs}
            if values:
                lam["extension" if keyword == "EXTENSION" else "telemetry"] = values
        if request_id:
            lam["request_id"] = request_id
            doc.setdefault("faas", {})["execution"] = request_id
        if lam:
            doc["aws"] = {"lambda": lam}
        return doc

    @staticmethod
    def _report(pairs: list[tuple[str, str]], doc: dict[str, Any], lam: dict[str, Any]) -> None:
        report: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        event: dict[str, Any] = doc.setdefault("event", {})
        for key, value in pairs:
            spec = _REPORT_KEYS.get(key)
            if spec is not None:
                name, unit = spec
                text = value.partition(" ")[0]
                if unit == "mb" and text.isdigit():
                    report[name] = {"mb": int(text)}
                    continue
                try:
                    number = float(text)
                except ValueError:
                    extra[snake_case(key.replace(" ", "_")).lower()] = value
                    continue
                report[name] = {unit: number if unit == "ms" else int(number)}
            elif key == "XRAY TraceId":
                doc["trace"] = {"id": value}
            elif key == "SegmentId":
                doc["span"] = {"id": value}
            elif key == "Sampled":
                lam["xray"] = {"sampled": value.lower() == "true"}
            elif key == "Status":
                report["status"] = value
                event["outcome"] = "success" if value == "success" else "failure"
            elif key == "Error Type":
                doc["error"] = {"type": value}
            elif key == "Phase":
                report["phase"] = value
            elif key not in ("RequestId", "Version"):
                extra[snake_case(key.replace(" ", "_")).lower()] = value
        _finish_report(report, extra, doc, lam, event)

    # --- JSON lines ----------------------------------------------------------------------------------------

    def _json(self, obj: dict[str, Any], text: str) -> dict[str, Any]:
        kind = obj.get("type")
        if isinstance(kind, str) and kind.startswith("platform.") and isinstance(obj.get("record"), dict | str):
            return self._json_platform(obj, kind, text)
        doc: dict[str, Any] = {}
        rest = dict(obj)
        for key in _TIME_KEYS:
            if key in rest and (timestamp := _time(rest[key])) is not None:
                doc["@timestamp"] = timestamp
                del rest[key]
                break
        log: dict[str, Any] = {}
        for key in _LEVEL_KEYS:
            value = rest.get(key)
            if isinstance(value, str) and value:
                log["level"] = value
                del rest[key]
                break
        logger = rest.get("logger")
        if isinstance(logger, str) and logger:
            log["logger"] = logger
            del rest["logger"]
        if log:
            doc["log"] = log
        for key in _MESSAGE_KEYS:
            if key in rest:
                value = rest.pop(key)
                doc["message"] = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
                break
        else:
            doc["message"] = text
        request_id = ""
        for key in _REQUEST_KEYS:
            value = rest.get(key)
            if isinstance(value, str) and value:
                request_id = value
                del rest[key]
                break
        for key in _TRACE_KEYS:
            value = rest.get(key)
            if isinstance(value, str) and value:
                doc["trace"] = {"id": value}
                del rest[key]
                break
        faas: dict[str, Any] = {}
        cold = rest.get("cold_start", rest.get("coldStart"))
        if isinstance(cold, bool):
            faas["coldstart"] = cold
            rest.pop("cold_start", None)
            rest.pop("coldStart", None)
        service = rest.get("service")
        if isinstance(service, str) and service:
            doc["service"] = {"name": service}
            del rest["service"]
        lam: dict[str, Any] = {}
        if request_id:
            lam["request_id"] = request_id
            faas["execution"] = request_id
        if faas:
            doc["faas"] = faas
        if rest:
            lam["json"] = rest
        if lam:
            doc["aws"] = {"lambda": lam}
        return doc

    def _json_platform(self, obj: dict[str, Any], kind: str, text: str) -> dict[str, Any]:
        """Lambda's JSON log format for platform events: `{"time", "type": "platform.*", "record": {...}}`."""
        doc: dict[str, Any] = {"message": text, "event": {"action": kind}}
        if (timestamp := _time(obj.get("time"))) is not None:
            doc["@timestamp"] = timestamp
        record = obj.get("record")
        lam: dict[str, Any] = {}
        if not isinstance(record, dict):
            doc["aws"] = {"lambda": {"json": {"record": record}}}
            return doc
        rest = dict(record)
        request_id = rest.pop("requestId", None)
        if isinstance(request_id, str) and request_id:
            lam["request_id"] = request_id
            doc["faas"] = {"execution": request_id}
        version = rest.pop("version", None)
        if isinstance(version, str) and version:
            doc.setdefault("faas", {})["version"] = version
        runtime: dict[str, Any] = {}
        for key, name in (("runtimeVersion", "version"), ("runtimeVersionArn", "version_arn")):
            value = rest.pop(key, None)
            if isinstance(value, str) and value:
                runtime[name] = value
        if runtime:
            lam["runtime"] = runtime
        report: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        metrics = rest.pop("metrics", None)
        if isinstance(metrics, dict):
            for key, value in metrics.items():
                spec = _METRIC_KEYS.get(key)
                if spec is not None and isinstance(value, int | float) and not isinstance(value, bool):
                    report[spec[0]] = {spec[1]: float(value) if spec[1] == "ms" else value}
                else:
                    extra[key] = value
        event: dict[str, Any] = doc["event"]
        status = rest.pop("status", None)
        if isinstance(status, str) and status:
            report["status"] = status
            event["outcome"] = "success" if status == "success" else "failure"
        error_type = rest.pop("errorType", None)
        if isinstance(error_type, str) and error_type:
            doc["error"] = {"type": error_type}
        tracing = rest.pop("tracing", None)
        if isinstance(tracing, dict):
            value = tracing.get("value")
            if isinstance(value, str):
                for part in value.split(";"):
                    key, _, val = part.partition("=")
                    if key == "Root" and val:
                        doc["trace"] = {"id": val}
                    elif key == "Sampled" and val:
                        lam["xray"] = {"sampled": val == "1"}
            span = tracing.get("spanId")
            if isinstance(span, str) and span:
                doc["span"] = {"id": span}
        if report or extra:
            _finish_report(report, extra, doc, lam, event, kind == "platform.report")
        if rest:
            lam["json"] = rest
        if lam:
            doc["aws"] = {"lambda": lam}
        return doc


def _finish_report(
    report: dict[str, Any],
    extra: dict[str, Any],
    doc: dict[str, Any],
    lam: dict[str, Any],
    event: dict[str, Any],
    is_report: bool = True,
) -> None:
    """Common tail of the text and JSON REPORT forms: event.duration, faas.coldstart, the report object."""
    if extra:
        report["extra"] = extra
    if not report:
        return
    lam["report"] = report
    duration = report.get("duration")
    if duration is not None:
        event["duration"] = round(duration["ms"] * 1_000_000)
    if is_report and "duration" in report:
        faas: dict[str, Any] = doc.setdefault("faas", {})
        faas["coldstart"] = "init_duration" in report or "restore_duration" in report


PARSER = LambdaParser
