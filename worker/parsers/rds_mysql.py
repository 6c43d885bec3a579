"""RDS / Aurora MySQL and MariaDB logs (error, slow query, general, audit) -> ECS.

The four logs an RDS MySQL-family instance exports share one log type, because they arrive together: as
CloudWatch Logs events (group `/aws/rds/instance/<db>/<log>` or `/aws/rds/cluster/<cluster>/<log>`, one event
per record, a slow-query entry or an InnoDB monitor dump being one multi-line message), or as downloaded files
on S3 (one physical line per line; `continuation` folds the lines that do not start an entry into the entry
before them). The log group names the log, so `parse` goes straight to the right reader; without one (S3),
the record's shape decides:

- slow query entry: `# Time:` / `# User@Host:` / `# Query_time:` header lines, `use db;`, `SET timestamp=..;`,
  the statement -> Elastic's `mysql.slowlog.*` names (`query_time.sec`, `lock_time.sec`, `rows_sent`, ...),
  `user.name`, `source.domain`/`source.ip`, `mysql.thread_id`, `event.duration` in nanoseconds;
- error log line: `<time> <thread> [Level] [MY-code] [Subsystem] message` in its MySQL 5.5 to 8.0 and MariaDB
  forms -> Elastic's error names (`log.level`, `mysql.thread_id`, `event.code`, `event.provider`, `message`);
- general log line: `<time>\\t<thread> <Command>\\t<argument>` -> `mysql.general.command` / `.argument`;
- audit log line (MariaDB audit plugin, Aurora advanced auditing), CSV
  `timestamp,serverhost,username,host,connectionid,queryid,operation,database,object,retcode` ->
  `mysql.audit.*`, `user.name`, `source.*`, `host.name`, `mysql.thread_id` (the connection id);
  columns after retcode (format drift) are kept in `mysql.audit.extra_fields`.

Non-events (None): blank records, the `mysqld, Version: ... started with:` / `Tcp port:` / `Time Id Command`
header a slow or general log file starts with, RDS's `---- END OF LOG ----` download marker, and a `# Time:`
line standing alone (S3 files; MySQL writes it before the entry it dates, so it is remembered and used for
that entry). RDS logs carry no zone: naive times are UTC, as RDS writes them.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from worker.parsers._aws import cloud_builder
from worker.parsers._fields import (
    epoch_to_iso,
    float_reader,
    int_reader,
    is_ip,
    iso_to_utc_ms,
    set_dotted,
)
from worker.parsers.base import FieldType, LogParser, ParseContext, ParseError, Reroute

# --- what the CloudWatch Logs group tells (shared with rds_postgresql) -------------------------------------


class RdsOrigin:
    """The RDS log name, DB instance and cluster of a stream, from its CloudWatch Logs group and stream.

    `/aws/rds/instance/<db>/<log>`: the instance is `<db>`. `/aws/rds/cluster/<cluster>/<log>`: the instance
    is the stream name up to its first dot (Aurora audit streams are `<instance>.audit.log.<n>...`; instance
    identifiers cannot contain dots). Unknown or absent groups give empty values.
    """

    __slots__ = ("account", "cloud", "cluster", "instance", "kind", "region")

    def __init__(self, ctx: ParseContext) -> None:
        self.kind = self.instance = self.cluster = ""
        self.account, self.region = ctx.account_id, ctx.region
        self.cloud = cloud_builder(self.account, self.region, "rds")
        """A fresh `cloud` object per call."""
        parts = ctx.log_group.split("/") if ctx.log_group.startswith("/aws/rds/") else []
        if len(parts) >= 6:
            scope, name, self.kind = parts[3], parts[4], "/".join(parts[5:])
            if scope == "instance":
                self.instance = name
            elif scope == "cluster":
                self.cluster = name
                self.instance = ctx.log_stream.split(".", 1)[0]

    def aws(self) -> dict[str, Any] | None:
        """A fresh `aws.rds` object, or None when nothing is known."""
        kind, instance, cluster = self.kind, self.instance, self.cluster
        if instance and cluster and kind:  # the CloudWatch Logs case
            db_instance = {"identifier": instance, "db_cluster_identifier": cluster}
            return {"rds": {"log_type": kind, "db_instance": db_instance}}
        rds: dict[str, Any] = {}
        if kind:
            rds["log_type"] = kind
        if instance or cluster:
            db: dict[str, Any] = {}
            if instance:
                db["identifier"] = instance
            if cluster:
                db["db_cluster_identifier"] = cluster
            rds["db_instance"] = db
        return {"rds": rds} if rds else None


class RdsParser(LogParser):
    """What the RDS MySQL and PostgreSQL parsers both keep per stream: the `RdsOrigin` of its CloudWatch Logs
    group (its `aws.rds` and `cloud` objects, fresh per document) and whether to keep `event.original`."""

    def __init__(self, ctx: ParseContext) -> None:
        super().__init__(ctx)
        self._origin = origin = RdsOrigin(ctx)
        self._aws = origin.aws
        self._cloud = origin.cloud
        self._has_aws = origin.aws() is not None
        self._keep = ctx.keep_original


RDS_FIELDS: dict[str, FieldType] = {
    "cloud.provider": "keyword",
    "cloud.account.id": "keyword",
    "cloud.region": "keyword",
    "cloud.service.name": "keyword",
    "aws.rds.log_type": "keyword",
    "aws.rds.db_instance.identifier": "keyword",
    "aws.rds.db_instance.db_cluster_identifier": "keyword",
}

END_OF_LOG = "----------------------- END OF LOG ----------------------"
"""What RDS appends to a log file it hands out (download, rotation): a file delimiter, not an event."""

# --- record shapes -----------------------------------------------------------------------------------------

_ENTRY_START = (
    r"\d{4}-\d\d-\d\d[T ]"  # error / general log time (MySQL 5.7+, MariaDB), Aurora error dumps
    r"|\d{6} [ \d]\d:"  # YYMMDD H:MM:SS (MySQL 5.5/5.6, MariaDB error and general logs)
    r"|\d{8} \d\d:\d\d:\d\d,"  # MariaDB audit plugin time
    r"|\d{10,19},"  # Aurora audit epoch microseconds
    r"|# Time: |# User@Host: "  # slow query entry
    r"|\t\t +\d+ \S"  # general log line in the same second as the one before (no time)
    r"|[\w/.\-]+, Version: |Tcp port: |Time +Id +Command|-{5,} END OF LOG"
)
_CONTINUATION = re.compile(rf"(?!{_ENTRY_START})")
_HEADER = re.compile(r"[\w/.\-]+, Version: .*started with:|Tcp port: |Time +Id +Command")
_NAIVE_TIME = re.compile(
    r"(\d{4})-(\d\d)-(\d\d) {1,2}(\d?\d):(\d\d):(\d\d)(?:\.(\d+))?"  # 2023-01-01 00:00:00, 2019-03-27  9:17:52
    r"|(\d\d)(\d\d)(\d\d) {1,2}(\d?\d):(\d\d):(\d\d)"  # 150101 12:00:00, 230101  9:00:00
)
_HEX_THREAD = re.compile(r"0x([0-9a-fA-F]+?)(?=\d{4}-\d\d-\d\d[ T]|[^0-9a-fA-F]|$)")
_UNESCAPE = re.compile(r"\\(.)", re.S)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "0": "\0"}
_SNIFF = re.compile(
    r"^(?:# Time: \d|# User@Host: \S*\["
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z \d+ \[(?:Note|Warning|ERROR|Error|System)\]"
    r"|\d{4}-\d\d-\d\d {1,2}\d?\d:\d\d:\d\d \d+ \[(?:Note|Warning|ERROR|Error)\]"
    r"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d 0x[0-9a-f]{6,}"  # InnoDB monitor output
    r"|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z\t +\d+ (?:Query|Connect|Quit|Init DB|Execute|Prepare)\t"
    r"|[\w/.\-]*mysqld, Version: .*started with:"
    r"|\d{16},[^,\n]+,[^,\n]*,[^,\n]*,\d+,\d+,(?:QUERY|READ|WRITE|CONNECT|DISCONNECT|FAILED_CONNECT)\w*,)",
    re.M,
)

# Slow-log header keys -> (path under mysql.slowlog, conversion), as Elastic's slowlog pipeline names them.
_SLOW_KEYS: dict[str, tuple[str, str]] = {
    "Lock_time": ("lock_time.sec", "float"),
    "Rows_sent": ("rows_sent", "int"),
    "Rows_examined": ("rows_examined", "int"),
    "Rows_affected": ("rows_affected", "int"),
    "Schema": ("schema", "str"),
    "Last_errno": ("last_errno", "str"),
    "Errno": ("last_errno", "str"),
    "Killed": ("killed", "str"),
    "QC_hit": ("query_cache_hit", "bool"),
    "QC_Hit": ("query_cache_hit", "bool"),
    "Bytes_received": ("bytes_received", "int"),
    "Bytes_sent": ("bytes_sent", "int"),
    "Read_first": ("read_first", "int"),
    "Read_last": ("read_last", "int"),
    "Read_key": ("read_key", "int"),
    "Read_next": ("read_next", "int"),
    "Read_prev": ("read_prev", "int"),
    "Read_rnd": ("read_rnd", "int"),
    "Read_rnd_next": ("read_rnd_next", "int"),
    "Sort_merge_passes": ("sort_merge_passes", "int"),
    "Sort_range_count": ("sort_range_count", "int"),
    "Sort_rows": ("sort_rows", "int"),
    "Sort_scan_count": ("sort_scan_count", "int"),
    "Created_tmp_disk_tables": ("tmp_disk_tables", "int"),
    "Created_tmp_tables": ("tmp_tables", "int"),
    "Tmp_tables": ("tmp_tables", "int"),
    "Tmp_disk_tables": ("tmp_disk_tables", "int"),
    "Tmp_table_sizes": ("tmp_table_sizes", "int"),
    "InnoDB_trx_id": ("innodb.trx_id", "str"),
    "Full_scan": ("full_scan", "bool"),
    "Full_join": ("full_join", "bool"),
    "Tmp_table": ("tmp_table", "bool"),
    "Tmp_table_on_disk": ("tmp_table_on_disk", "bool"),
    "Filesort": ("filesort", "bool"),
    "Filesort_on_disk": ("filesort_on_disk", "bool"),
    "Merge_passes": ("merge_passes", "int"),
    "Priority_queue": ("priority_queue", "bool"),
    "InnoDB_IO_r_ops": ("innodb.io_r_ops", "int"),
    "InnoDB_IO_r_bytes": ("innodb.io_r_bytes", "int"),
    "InnoDB_IO_r_wait": ("innodb.io_r_wait.sec", "float"),
    "InnoDB_rec_lock_wait": ("innodb.rec_lock_wait.sec", "float"),
    "InnoDB_queue_wait": ("innodb.queue_wait.sec", "float"),
    "InnoDB_pages_distinct": ("innodb.pages_distinct", "int"),
    "Log_slow_rate_type": ("log_slow_rate_type", "str"),
    "Log_slow_rate_limit": ("log_slow_rate_limit", "int"),
}
_ACTIONS: dict[str, str] = {}
_BOOLS = {"Yes": True, "No": False, "yes": True, "no": False}

_AUDIT_TYPES = {
    "CONNECT": (["database", "authentication"], ["start"]),
    "FAILED_CONNECT": (["database", "authentication"], ["start"]),
    "DISCONNECT": (["database", "authentication"], ["end"]),
    "CHANGEUSER": (["database", "authentication"], ["change"]),
    "WRITE": (["database"], ["change"]),
    "CREATE": (["database"], ["change"]),
    "ALTER": (["database"], ["change"]),
    "DROP": (["database"], ["change"]),
    "RENAME": (["database"], ["change"]),
    "QUERY_DDL": (["database"], ["change"]),
}
_AUDIT_DEFAULT = (["database"], ["access"])


def naive_utc(value: str) -> str | None:
    """`2023-01-01 00:00:00[.ffffff]`, `2019-03-27  9:17:52`, `150101 12:00:00`, `230101  9:00:00` (UTC, as RDS
    writes them) -> ISO UTC milliseconds; None when the text is none of these."""
    m = _NAIVE_TIME.fullmatch(value)
    if m is None:
        return None
    g = m.groups()
    if g[0] is not None:
        y, mo, d, h, mi, s, frac = g[0], g[1], g[2], g[3], g[4], g[5], g[6]
    else:
        y, mo, d, h, mi, s, frac = "20" + g[7], g[8], g[9], g[10], g[11], g[12], None
    text = f"{y}-{mo}-{d}T{int(h):02d}:{mi}:{s}" + (f".{frac}Z" if frac else "Z")
    try:
        return iso_to_utc_ms(text)
    except ValueError:
        return None


_NAIVE: dict[str, str | None] = {}
_CACHE_MAX = 4096


def naive_utc_cached(value: str) -> str | None:
    """`naive_utc` for the second-precision times a stream repeats."""
    out = _NAIVE.get(value, "")
    if out == "":
        out = naive_utc(value)
        if len(_NAIVE) >= _CACHE_MAX:
            _NAIVE.clear()
        _NAIVE[value] = out
    return out


def _lead_time(line: str) -> tuple[str, int] | None:
    """The time a MySQL error/general line starts with, and where the text after it starts; None if none."""
    if line[10:11] == "T" and line[4:5] == "-":
        end = line.find(" ", 19, 40)
        tab = line.find("\t", 19, 40)
        if tab >= 0 and (tab < end or end < 0):
            end = tab
        if end < 0:
            end = len(line)
        try:
            return iso_to_utc_ms(line[:end]), end
        except ValueError:
            return None
    if line[4:5] == "-":
        m = _NAIVE_TIME.match(line, 0, 29)
    elif line[6:7] == " ":
        m = _NAIVE_TIME.match(line, 0, 16)
    else:
        return None
    if m is None:
        return None
    value = naive_utc_cached(m.group())
    return (value, m.end()) if value is not None else None


def _epoch_micros(value: str) -> str:
    """Aurora audit time (epoch microseconds; milliseconds and seconds accepted) -> ISO UTC milliseconds."""
    n = len(value)
    if n >= 16:
        secs, ms = value[: n - 6], value[n - 6 : n - 3]
    elif n >= 13:
        secs, ms = value[: n - 3], value[n - 3 :]
    else:
        secs, ms = value, "000"
    return epoch_to_iso(secs)[:20] + ms + "Z"


def _unescape(value: str) -> str:
    return _UNESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(1)), value)


_int = int_reader("MySQL", clip=40)
_float = float_reader("MySQL slow log", clip=40)


class RdsMysqlParser(RdsParser):
    """Per-stream state: the log kind from the CloudWatch group, a standalone `# Time:` line waiting for the
    slow-query entry it dates, and the last general-log time (MySQL omits it within the same second)."""

    log_type: ClassVar[str] = "rds_mysql"
    framing = "lines"
    continuation = _CONTINUATION
    example = (
        "# Time: 2022-02-18T06:02:22.837877Z\n# User@Host: admin[admin] @  [54.171.161.51]  Id:   116\n"
        "# Query_time: 2.033731  Lock_time: 0.000119 Rows_sent: 1071  Rows_examined: 1071\n"
        "SET timestamp=1645164142;\nSELECT intcol1,charcol1,charcol2 FROM t1;"
    )
    routing = (
        "CloudWatch Logs groups /aws/rds/instance/<db>/{error,slowquery,general,audit} and "
        "/aws/rds/cluster/<cluster>/... (via the cloudwatch_logs envelope), or a source's fixed log_type; "
        "content: a `# Time:` / `# User@Host:` slow-log line, a MySQL error-log line or an audit CSV line."
    )
    fields: ClassVar[dict[str, FieldType]] = {
        **RDS_FIELDS,
        "@timestamp": "date",
        "message": "text",
        "event.original": "keyword",
        "event.kind": "keyword",
        "event.category": "keyword",
        "event.type": "keyword",
        "event.action": "keyword",
        "event.outcome": "keyword",
        "event.duration": "long",
        "event.start": "date",
        "event.end": "date",
        "event.code": "keyword",
        "event.provider": "keyword",
        "log.level": "keyword",
        "user.name": "keyword",
        "source.ip": "ip",
        "source.domain": "keyword",
        "host.name": "keyword",
        "process.thread.id": "long",
        "mysql.thread_id": "long",
        "mysql.slowlog.query": "text",
        "mysql.slowlog.query_time.sec": "float",
        "mysql.slowlog.lock_time.sec": "float",
        "mysql.slowlog.rows_sent": "long",
        "mysql.slowlog.rows_examined": "long",
        "mysql.slowlog.rows_affected": "long",
        "mysql.slowlog.current_user": "keyword",
        "mysql.slowlog.schema": "keyword",
        "mysql.slowlog.last_errno": "keyword",
        "mysql.slowlog.killed": "keyword",
        "mysql.slowlog.query_cache_hit": "boolean",
        "mysql.slowlog.bytes_received": "long",
        "mysql.slowlog.bytes_sent": "long",
        "mysql.slowlog.read_first": "long",
        "mysql.slowlog.read_last": "long",
        "mysql.slowlog.read_key": "long",
        "mysql.slowlog.read_next": "long",
        "mysql.slowlog.read_prev": "long",
        "mysql.slowlog.read_rnd": "long",
        "mysql.slowlog.read_rnd_next": "long",
        "mysql.slowlog.sort_merge_passes": "long",
        "mysql.slowlog.sort_range_count": "long",
        "mysql.slowlog.sort_rows": "long",
        "mysql.slowlog.sort_scan_count": "long",
        "mysql.slowlog.tmp_disk_tables": "long",
        "mysql.slowlog.tmp_tables": "long",
        "mysql.slowlog.tmp_table_sizes": "long",
        "mysql.slowlog.innodb.trx_id": "keyword",
        "mysql.slowlog.full_scan": "boolean",
        "mysql.slowlog.full_join": "boolean",
        "mysql.slowlog.tmp_table": "boolean",
        "mysql.slowlog.tmp_table_on_disk": "boolean",
        "mysql.slowlog.filesort": "boolean",
        "mysql.slowlog.filesort_on_disk": "boolean",
        "mysql.slowlog.merge_passes": "long",
        "mysql.slowlog.priority_queue": "boolean",
        "mysql.slowlog.innodb.io_r_ops": "long",
        "mysql.slowlog.innodb.io_r_bytes": "long",
        "mysql.slowlog.innodb.io_r_wait.sec": "float",
        "mysql.slowlog.innodb.rec_lock_wait.sec": "float",
        "mysql.slowlog.innodb.queue_wait.sec": "float",
        "mysql.slowlog.innodb.pages_distinct": "long",
        "mysql.slowlog.log_slow_rate_type": "keyword",
        "mysql.slowlog.log_slow_rate_limit": "long",
        "mysql.slowlog.extra": "flattened",
        "mysql.general.command": "keyword",
        "mysql.general.argument": "text",
        "mysql.audit.query_id": "long",
        "mysql.audit.operation": "keyword",
        "mysql.audit.database": "keyword",
        "mysql.audit.object": "text",
        "mysql.audit.retcode": "long",
        "mysql.audit.extra_fields": "keyword",
    }

    def __init__(self, ctx: ParseContext) -> None:
        super().__init__(ctx)
        self._kind = self._origin.kind
        self._pending_time = ""
        self._general_time = ""

    @classmethod
    def sniff(cls, head: str) -> bool:
        return _SNIFF.search(head) is not None

    def parse(self, record: Any) -> dict[str, Any] | None:
        text: str = record
        if not text:
            return None
        kind = self._kind
        if kind == "postgresql":
            raise Reroute("rds_postgresql")
        first = text[0]
        doc: dict[str, Any] | None
        if first.isdigit():
            if kind == "audit" or (kind == "" and _is_audit_time(text)):
                doc = self._audit(text)
            else:
                doc = self._timed(text)
        elif first == "#" or (kind == "slowquery" and text.startswith(("SET timestamp=", "use "))):
            doc = self._slow(text)
            if doc is None:
                return None
        elif text.isspace() or text.startswith(END_OF_LOG) or _HEADER.match(text):
            return None
        elif text.startswith("\t\t") and kind != "error":
            doc = self._general(self._general_time, text.lstrip("\t"))
        elif kind in ("", "error"):
            doc = self._untimed(text)
        else:
            raise ParseError(f"not a MySQL {kind} log record: {text[:60]!r}")
        if self._has_aws:
            doc["aws"] = self._aws()
        doc["cloud"] = self._cloud()
        if self._keep:
            doc["event"]["original"] = text
        return doc

    # --- error and general log -----------------------------------------------------------------------------

    def _timed(self, text: str) -> dict[str, Any]:
        lead = _lead_time(text)
        if lead is None:
            if self._kind in ("", "error"):
                return self._untimed(text)
            raise ParseError(f"MySQL {self._kind or 'log'} line does not start with a time: {text[:60]!r}")
        timestamp, end = lead
        if text[end : end + 1] == "\t" and self._kind != "error":
            self._general_time = timestamp
            return self._general(timestamp, text[end + 1 :])
        if self._kind in ("general", "slowquery", "audit"):
            raise ParseError(f"not a MySQL {self._kind} log record: {text[:60]!r}")
        return self._error(timestamp, text, end)

    def _error(self, timestamp: str, text: str, end: int) -> dict[str, Any]:
        event: dict[str, Any] = {"kind": "event", "category": ["database"], "type": ["info"]}
        doc: dict[str, Any] = {"@timestamp": timestamp, "event": event}
        rest = text[end:].lstrip(" ")
        if rest[:2] == "0x":
            m = _HEX_THREAD.match(rest)
            if m is not None:
                doc["process"] = {"thread": {"id": int(m.group(1), 16)}}
                prefix = text[: len(text) - len(rest) + m.end()]
                rest = rest[m.end() :]
                if rest.startswith(prefix):  # Aurora repeats the `<time> 0x<thread>` prefix of InnoDB dumps
                    rest = rest[len(prefix) :]
                rest = rest.lstrip()
        elif rest[:1].isdigit():
            thread, sep, tail = rest.partition(" ")
            if thread.isdigit():
                doc["mysql"] = {"thread_id": int(thread)}
                rest = tail.lstrip(" ") if sep else ""
        if rest[:1] == "[":
            close = rest.find("]")
            if close > 0:
                level = rest[1:close]
                doc["log"] = {"level": level}
                if level.lower() == "error":
                    event["type"] = ["info", "error"]
                rest = rest[close + 1 :].lstrip(" ")
                if rest[:1] == "[":
                    close = rest.find("]")
                    nxt = rest.find("[", close)
                    if close > 0 and nxt == close + 2 and rest[close + 1] == " ":
                        close2 = rest.find("]", nxt)
                        if close2 > 0:
                            event["code"] = rest[1:close]
                            event["provider"] = rest[nxt + 1 : close2]
                            rest = rest[close2 + 1 :].lstrip(" ")
        doc["message"] = rest
        return doc

    def _untimed(self, text: str) -> dict[str, Any]:
        """An error-log record without a time (an InnoDB dump or startup banner line delivered on its own):
        a document with the message only; the pipeline dates it with the event's or the object's time."""
        return {"event": {"kind": "event", "category": ["database"], "type": ["info"]}, "message": text}

    def _general(self, timestamp: str, rest: str) -> dict[str, Any]:
        body = rest.lstrip(" ")
        space = body.find(" ")
        tab = body.find("\t", space + 1)
        thread = body[:space] if space > 0 else ""
        if tab > 0:
            command, argument = body[space + 1 : tab], body[tab + 1 :]
        else:
            command, argument = body[space + 1 :].strip(), ""
        if not thread.isdigit() or not command:
            raise ParseError(f"MySQL general log line: expected '<thread> <Command>\\t<argument>': {rest[:60]!r}")
        action = _ACTIONS.get(command)
        if action is None:
            action = command.strip().lower().replace(" ", "_")
            if len(_ACTIONS) < 256:
                _ACTIONS[command] = action
        general: dict[str, Any] = {"command": command}
        doc: dict[str, Any] = {
            "event": {"kind": "event", "category": ["database"], "type": ["info"], "action": action},
            "mysql": {"thread_id": int(thread), "general": general},
            "message": argument or command,
        }
        if timestamp:
            doc["@timestamp"] = timestamp
        if argument:
            general["argument"] = argument
            if command == "Connect":
                # `user@host on db using TCP/IP`
                who, at, where = argument.partition("@")
                if at and who:
                    doc["user"] = {"name": who}
                    host = where.split(" ", 1)[0]
                    if host:
                        doc["source"] = {"ip": host} if is_ip(host) else {"domain": host}
        return doc

    # --- slow query log ------------------------------------------------------------------------------------

    def _slow(self, text: str) -> dict[str, Any] | None:
        lines = text.split("\n")
        n = len(lines)
        slow: dict[str, Any] = {}
        mysql: dict[str, Any] = {"slowlog": slow}
        event: dict[str, Any] = {"kind": "event", "category": ["database"], "type": ["info"]}
        doc: dict[str, Any] = {"event": event, "mysql": mysql}
        time_value = ""
        i = 0
        while i < n:
            line = lines[i]
            if line[:1] != "#":
                break
            if line.startswith("# Time:"):
                time_value = line[7:].strip()
            elif line.startswith("# User@Host:"):
                self._user_host(line[12:], doc, mysql, slow, event)
            else:
                self._pairs(line[1:], mysql, slow, event)
            i += 1
        if i == n and len(slow) == 0 and "thread_id" not in mysql and "user" not in doc:
            if time_value:  # a `# Time:` line on its own (S3): it dates the entry that follows
                self._pending_time = time_value
                return None
            raise ParseError(f"MySQL slow log record without an entry: {text[:60]!r}")
        if not time_value:
            time_value, self._pending_time = self._pending_time, ""
        else:
            self._pending_time = ""
        set_time = ""
        while i < n:
            line = lines[i]
            if line.startswith("SET timestamp="):
                set_time = line[14:].split(";", 1)[0].strip()
            elif line.startswith("use ") and line.endswith(";"):
                slow["schema"] = line[4:-1].strip().strip("`")
            else:
                break
            i += 1
        query = "\n".join(lines[i:]).rstrip("\n")
        if query:
            slow["query"] = query
        timestamp = self._slow_time(time_value, set_time)
        if timestamp:
            doc["@timestamp"] = timestamp
        elif not slow:
            raise ParseError(f"MySQL slow log record without a time or statistics: {text[:60]!r}")
        return doc

    @staticmethod
    def _slow_time(time_value: str, set_time: str) -> str:
        """`# Time:` in ISO form (microseconds) beats `SET timestamp=` (seconds), which beats an old-form
        `# Time: YYMMDD H:MM:SS`."""
        if time_value and time_value[-1:] == "Z" and time_value[10:11] == "T":
            try:
                return iso_to_utc_ms(time_value)
            except ValueError:
                pass
        if set_time.isdigit():
            return epoch_to_iso(set_time)
        if time_value:
            value = naive_utc(time_value)
            if value is not None:
                return value
            try:
                return iso_to_utc_ms(time_value)
            except ValueError:
                raise ParseError(f"MySQL slow log # Time: not a time: {time_value[:40]!r}") from None
        return ""

    def _user_host(
        self, value: str, doc: dict[str, Any], mysql: dict[str, Any], slow: dict[str, Any], event: dict[str, Any]
    ) -> None:
        """`admin[admin] @ host [54.171.161.51]  Id:   116` (user[current_user] @ host [ip] then pairs)."""
        who, sep, where = value.partition(" @ ")
        who = who.strip()
        if who:
            name, bracket, current = who.partition("[")
            if name:
                doc["user"] = {"name": name}
            if bracket and current.endswith("]") and len(current) > 1:
                slow["current_user"] = current[:-1]
        if not sep:
            return
        open_ = where.find("[")
        close = where.find("]", open_ + 1) if open_ >= 0 else -1
        if close < 0:
            host, rest = where.strip(), ""
        else:
            host, rest = where[:open_].strip(), where[close + 1 :]
        source: dict[str, Any] = {}
        if host:
            source["domain"] = host
        if close > 0:
            ip = where[open_ + 1 : close]
            if ip and is_ip(ip):
                source["ip"] = ip
        if source:
            doc["source"] = source
        if rest.strip():
            self._pairs(rest, mysql, slow, event)

    @staticmethod
    def _pairs(value: str, mysql: dict[str, Any], slow: dict[str, Any], event: dict[str, Any]) -> None:
        """`Query_time: 2.0  Lock_time: 0.0 Rows_sent: 1 ...` -> fields; a key without a value is skipped."""
        toks = value.split()
        k, m = 0, len(toks)
        while k < m:
            tok = toks[k]
            k += 1
            if tok[-1:] != ":" or len(tok) < 2:
                continue  # free text (`No InnoDB statistics available for this query`)
            key = tok[:-1]
            if k < m and toks[k][-1:] != ":":
                val = toks[k]
                k += 1
            else:
                continue
            if key == "Query_time":
                sec = _float(val, key)
                slow["query_time"] = {"sec": sec}
                event["duration"] = round(sec * 1_000_000) * 1000
            elif key == "Id" or key == "Thread_id":
                mysql["thread_id"] = _int(val, key)
            elif key == "Start" or key == "End":
                try:
                    event[key.lower()] = iso_to_utc_ms(val)
                except ValueError:
                    raise ParseError(f"MySQL slow log {key}: not a time: {val[:40]!r}") from None
            else:
                spec = _SLOW_KEYS.get(key)
                if spec is None:  # a key newer than this parser: kept as text
                    slow.setdefault("extra", {})[key] = val
                    continue
                path, conv = spec
                out: Any
                if conv == "int":
                    out = _int(val, key)
                elif conv == "float":
                    out = _float(val, key)
                elif conv == "bool":
                    out = _BOOLS.get(val, val)
                else:
                    out = val
                if "." in path:
                    set_dotted(slow, path, out)
                else:
                    slow[path] = out

    # --- audit log -----------------------------------------------------------------------------------------

    def _audit(self, text: str) -> dict[str, Any]:
        parts = text.split(",", 8)
        if len(parts) < 9:
            raise ParseError(f"MySQL audit line has {len(parts)} of the 10 columns: {text[:60]!r}")
        stamp, server, user, host, conn, query_id, operation, database, tail = parts
        if stamp.isdigit():
            timestamp = _epoch_micros(stamp)
        else:
            value = naive_utc_cached(f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:]}") if len(stamp) == 17 else None
            if value is None:
                raise ParseError(f"MySQL audit line: not a time: {stamp[:40]!r}")
            timestamp = value
        if tail[:1] == "'":
            j = 1
            while True:
                j = tail.find("'", j)
                if j < 0:
                    raise ParseError("MySQL audit line: the quoted object has no closing quote")
                b = j - 1
                while tail[b] == "\\":
                    b -= 1
                if (j - 1 - b) % 2 == 0:
                    break
                j += 1
            obj = tail[1:j]
            if "\\" in obj:
                obj = _unescape(obj)
            after = tail[j + 1 :]
            if after and after[0] != ",":
                raise ParseError(f"MySQL audit line: text after the quoted object: {after[:40]!r}")
            rest = after[1:].split(",") if after else []
        else:
            obj, _, after = tail.partition(",")
            rest = after.split(",")
        retcode = rest[0] if rest else ""
        categories, types = _AUDIT_TYPES.get(operation, _AUDIT_DEFAULT)
        event: dict[str, Any] = {
            "kind": "event",
            "category": list(categories),
            "type": list(types),
            "action": operation.lower(),
        }
        audit: dict[str, Any] = {"operation": operation}
        mysql: dict[str, Any] = {"audit": audit}
        doc: dict[str, Any] = {"@timestamp": timestamp, "event": event, "mysql": mysql}
        if conn:
            mysql["thread_id"] = _int(conn, "audit connectionid")
        if query_id:
            audit["query_id"] = _int(query_id, "audit queryid")
        if database:
            audit["database"] = database
        if obj:
            audit["object"] = obj
        if retcode:
            code = _int(retcode, "audit retcode")
            audit["retcode"] = code
            event["outcome"] = "success" if code == 0 else "failure"
        elif operation == "FAILED_CONNECT":
            event["outcome"] = "failure"
        if len(rest) > 1:
            audit["extra_fields"] = rest[1:]
        if user:
            doc["user"] = {"name": user}
        if host:
            doc["source"] = {"ip": host} if is_ip(host) else {"domain": host}
        if server:
            doc["host"] = {"name": server}
        return doc


def _is_audit_time(text: str) -> bool:
    """Whether a line starts with an audit-log time and its comma (`1645164733006686,` / `20170817 10:55:41,`)."""
    comma = text.find(",", 0, 21)
    if comma < 0:
        return False
    stamp = text[:comma]
    if stamp.isdigit():
        return comma >= 10
    return comma == 17 and stamp[8] == " " and stamp[:8].isdigit()


PARSER = RdsMysqlParser
