"""RDS / Aurora PostgreSQL logs (`log_line_prefix = %t:%r:%u@%d:[%p]:`) -> ECS, with Elastic's PostgreSQL names.

A line is `2019-03-10 03:54:59 UTC:10.0.0.123(52834):postgres@tstdb:[20175]:ERROR:  message`: time and zone,
client `host(port)` (`[local]` for a socket, empty for background workers), `user@database` (`@` alone for
background workers, `[unknown]` before authentication), process id in brackets, severity, message. Statements
and DETAIL blocks span several lines: a CloudWatch Logs event holds the whole record, and in files
(`continuation`) every line that does not start with a `YYYY-MM-DD HH:MM:SS` time is joined to the record before
it.

Mapped as Elastic's `postgresql.log` pipeline does for its AWS variant (`postgresql.log.client_addr`,
`.client_port`, `.database`, `.timestamp`, `.query`, `.query_step`, `process.pid`, `user.name`,
`related.user`, `log.level`, `event.timezone`), plus `source.ip`/`source.port` when the client is an IP, and
`message` always (Elastic drops it when it extracts a query). `duration: 1.234 ms` -> `event.duration` in
nanoseconds; `duration: .. ms  statement: ...` also yields the query and its step; a STATEMENT record's text is
the query. `event.type` is `error` for ERROR, FATAL and PANIC records, else `info`.

A CloudWatch Logs export line (`<ISO time> <line>`, S3) is read after its prefix. RDS's
`----------------------- END OF LOG ----------------------` marker (appended to a log file when RDS hands
it out) is a file delimiter, not an event: None. So is a blank record.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from worker.parsers._fields import IP_SEEN, is_ip, iso_to_utc_ms
from worker.parsers.base import FieldType, ParseContext, ParseError, Reroute
from worker.parsers.rds_mysql import END_OF_LOG, RDS_FIELDS, RdsParser

_CONTINUATION = re.compile(r"(?!\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d|-{5,} END OF LOG)")
_SNIFF = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? [A-Za-z]{1,5}:[^:\n]*:[^@\n:]*@[^:\n]*:\[\d+\]:[A-Z]+[0-9]?:", re.M
)
_QUERY_STEP = re.compile(r"(execute|parse|bind|statement)(?: <unnamed>| (\S+))?: ")
_PREFIX = re.compile(
    r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?) ([^:\s]+):"  # time, zone
    r"(?:\[([^\]]*)\]|([^(@\[\]\s]*)\((\d*)\)|):"  # client: `[local]` | `host(port)` | empty
    r"([^:]*)@([^:@]*):\[(\d*)\]:"  # user@database:[pid]:
    r"([A-Z][A-Z0-9]*): *"  # severity
)
_ERROR_LEVELS = frozenset(("ERROR", "FATAL", "PANIC"))
_MYSQL_KINDS = frozenset(("error", "slowquery", "general", "audit"))
_ZONES: dict[str, timezone | ZoneInfo | None] = {"UTC": UTC, "GMT": UTC, "Z": UTC}


def _zone(name: str) -> timezone | ZoneInfo | None:
    """A `%t` zone (`UTC`, `+03`, `-0530`, `CET`, `Europe/Paris`) -> tzinfo; None when unknown."""
    try:
        return _ZONES[name]
    except KeyError:
        pass
    zone: timezone | ZoneInfo | None = None
    if name[:1] in "+-" and name[1:].replace(":", "").isdigit():
        digits = name[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        offset = timedelta(hours=hours, minutes=minutes)
        zone = timezone(-offset if name[0] == "-" else offset)
    else:
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            zone = None
    if len(_ZONES) < 256:
        _ZONES[name] = zone
    return zone


def _utc(value: str, zone_name: str) -> str:
    """`2019-03-10 03:54:59[.123]` in `zone_name` -> ISO UTC milliseconds. Raises ParseError."""
    zone = _zone(zone_name)
    if zone is None:
        raise ParseError(f"PostgreSQL log line: time zone not known: {zone_name[:20]!r}")
    try:
        if zone is UTC:
            return iso_to_utc_ms(value[:10] + "T" + value[11:] + "Z")
        dt = datetime.fromisoformat(value).replace(tzinfo=zone).astimezone(UTC)
    except ValueError:
        raise ParseError(f"PostgreSQL log line: not a time: {value[:30]!r}") from None
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _refusal(text: str) -> ParseError:
    """Why a line is not an RDS PostgreSQL line, naming the first part of the prefix that is wrong."""
    head = text[:80]
    zone_end = text.find(":", 19, 40)
    if zone_end < 0 or text[4:5] != "-" or text[10:11] != " " or text[13:14] != ":" or text[19:20] not in " .":
        return ParseError(f"not an RDS PostgreSQL log line (no `YYYY-MM-DD HH:MM:SS TZ:` prefix): {head!r}")
    rest = text[zone_end + 1 :]
    if rest[:1] not in (":", "[") and "):" not in rest[:60]:
        return ParseError(f"PostgreSQL log line: client is not `host(port)`, `[local]` or empty: {head!r}")
    if ":[" not in rest or "]:" not in rest:
        return ParseError(f"PostgreSQL log line: no `user@db:[pid]:` after the client: {head!r}")
    return ParseError(f"PostgreSQL log line: no `LEVEL:` severity after `[pid]:`: {head!r}")


class RdsPostgresqlParser(RdsParser):
    """Stateless apart from what the CloudWatch Logs group tells (log name, DB instance, cluster)."""

    log_type: ClassVar[str] = "rds_postgresql"
    framing = "lines"
    continuation = _CONTINUATION
    example = (
        "2019-03-10 03:54:59 UTC:10.0.0.123(52834):postgres@logtestdb:[20175]:ERROR: "
        'column "wrong_column_name" does not exist at character 8'
    )
    routing = (
        "CloudWatch Logs groups /aws/rds/instance/<db>/postgresql and /aws/rds/cluster/<cluster>/postgresql "
        "(via the cloudwatch_logs envelope), or a source's fixed log_type; content: a line with the default RDS "
        "prefix `YYYY-MM-DD HH:MM:SS UTC:<host>(<port>):<user>@<db>:[<pid>]:<LEVEL>:`."
    )
    fields: ClassVar[dict[str, FieldType]] = {
        **RDS_FIELDS,
        "@timestamp": "date",
        "message": "text",
        "event.original": "keyword",
        "event.kind": "keyword",
        "event.category": "keyword",
        "event.type": "keyword",
        "event.duration": "long",
        "event.timezone": "keyword",
        "log.level": "keyword",
        "process.pid": "long",
        "user.name": "keyword",
        "related.user": "keyword",
        "source.ip": "ip",
        "source.port": "long",
        "source.address": "keyword",
        "source.domain": "keyword",
        "postgresql.log.timestamp": "keyword",
        "postgresql.log.client_addr": "keyword",
        "postgresql.log.client_port": "long",
        "postgresql.log.database": "keyword",
        "postgresql.log.query": "text",
        "postgresql.log.query_step": "keyword",
        "postgresql.log.query_name": "keyword",
    }

    def __init__(self, ctx: ParseContext) -> None:
        super().__init__(ctx)
        origin = self._origin
        self._mysql_group = origin.kind in _MYSQL_KINDS
        self._plain_cloud = not (origin.account or origin.region)
        self._times: dict[str, str] = {}

    @classmethod
    def sniff(cls, head: str) -> bool:
        return _SNIFF.search(head) is not None

    def parse(self, record: Any) -> dict[str, Any] | None:
        text: str = record
        m = _PREFIX.match(text)
        if m is None:
            if not text or text.isspace() or text.startswith(END_OF_LOG):
                return None
            if self._mysql_group:
                raise Reroute("rds_mysql")
            if text[10:11] == "T" and text[4:5] == "-":  # CloudWatch Logs export prefix: `<ISO time> <message>`
                cut = text.find(" ", 19, 40)
                if cut > 0 and text[cut - 1] == "Z":
                    m = _PREFIX.match(text, cut + 1)
            if m is None:
                raise _refusal(text)
        stamp, zone_name, local, host, port, user, database, pid, level = m.groups()
        raw_time = text[m.start() : m.end(2)]
        timestamp = self._times.get(raw_time)
        if timestamp is None:
            timestamp = _utc(stamp, zone_name)
            if len(self._times) >= 4096:
                self._times.clear()
            self._times[raw_time] = timestamp
        log: dict[str, Any] = {"timestamp": raw_time}
        event: dict[str, Any] = {
            "kind": "event",
            "category": ["database"],
            "type": ["error"] if level in _ERROR_LEVELS else ["info"],
            "timezone": zone_name,
        }
        message = text[m.end() :]
        doc: dict[str, Any] = {
            "@timestamp": timestamp,
            "event": event,
            "log": {"level": level},
            "message": message,
            "postgresql": {"log": log},
            "cloud": {"provider": "aws", "service": {"name": "rds"}} if self._plain_cloud else self._cloud(),
        }
        if local is not None:
            log["client_addr"] = local
        elif host:
            log["client_addr"] = host
            ip = IP_SEEN.get(host)  # not `or is_ip(host)`: clients are often host names, remembered as False
            if ip is None:
                ip = is_ip(host)
            source: dict[str, Any] = {"address": host, "ip": host} if ip else {"address": host, "domain": host}
            if port:
                log["client_port"] = source["port"] = int(port)
            doc["source"] = source
        if user:
            if user[0] == "[" and user[-1] == "]":
                user = user[1:-1]
            doc["user"] = {"name": user}
            doc["related"] = {"user": [user]}
        if database:
            log["database"] = database[1:-1] if database[0] == "[" and database[-1] == "]" else database
        if pid:
            doc["process"] = {"pid": int(pid)}
        if message[:10] == "duration: ":
            self._duration(message, event, log)
        elif level == "LOG":
            if message[:11] == "statement: ":
                log["query_step"] = "statement"
                log["query"] = message[11:]
            elif message.startswith(("execute ", "parse ", "bind ")):
                _query_step(message, log)
        elif level == "STATEMENT":
            log["query"] = message
        if self._has_aws:
            doc["aws"] = self._aws()
        if self._keep:
            event["original"] = text
        return doc

    @staticmethod
    def _duration(message: str, event: dict[str, Any], log: dict[str, Any]) -> None:
        """`duration: 1.234 ms` [`  statement: SELECT ...` | `  execute <unnamed>: ...`]."""
        value, _, rest = message[10:].partition(" ms")
        try:
            event["duration"] = round(float(value) * 1_000_000)
        except ValueError:
            raise ParseError(f"PostgreSQL duration is not a number: {value[:30]!r}") from None
        rest = rest.lstrip(" ")
        if rest:
            _query_step(rest, log)


def _query_step(text: str, log: dict[str, Any]) -> None:
    """`execute <name>: SELECT ...` / `statement: ...` -> `query_step`, `query_name`, `query` (if it is one)."""
    m = _QUERY_STEP.match(text)
    if m is not None:
        log["query_step"] = m.group(1)
        if m.group(2):
            log["query_name"] = m.group(2)
        log["query"] = text[m.end() :]


PARSER = RdsPostgresqlParser
