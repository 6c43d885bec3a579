"""Amazon S3 server access log lines -> ECS, with the field names Elastic's `aws.s3access` pipeline uses.

A line is space-separated: `bucket_owner bucket [06/Feb/2019:00:00:38 +0000] remote_ip requester request_id
operation key "request_uri" http_status error_code bytes_sent object_size total_time turn_around_time
"referrer" "user_agent" version_id host_id signature_version cipher_suite authentication_type host_header
tls_version access_point_arn acl_required source_region`, `-` (quoted or not) for "no value". S3 keeps
appending columns, so everything after the user agent is optional and read by position; columns newer than
this parser are kept verbatim in `aws.s3access.extra_fields` instead of failing the line.

Field names and values follow Elastic's `aws.s3access` ingest pipeline (so `aclRequired` is
`aws.s3access.aclrequired`, and `related.user` holds the bucket owner only, as there), with two deliberate
differences: `cloud.region` is taken only when the host header (or access point ARN) really names a region
(Elastic's grok reads `amazonaws` out of `s3.amazonaws.com`), and `user_agent` is not parsed into name/os/device
(only `user_agent.original`).

S3 does not escape double quotes inside the quoted columns (a user agent or referrer can carry them), so
tokenising has two paths: the common shapes (no quotes at all, or exactly the three quoted columns) are a
`str.split`, checked for alignment; anything else goes through one precompiled regular expression that knows
which columns may be quoted and that nothing after the user agent is.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any, ClassVar

from worker.parsers._aws import aws_cloud
from worker.parsers._fields import int_reader, is_ip, tls_version
from worker.parsers.alb import split_url
from worker.parsers.base import FieldType, LogParser, ParseContext, ParseError

# Column positions. The time is written as two space-separated tokens, `[06/Feb/2019:00:00:38` and `+0000]`.
_OWNER, _BUCKET, _TIME, _TZ, _REMOTE_IP, _REQUESTER, _REQUEST_ID, _OPERATION, _KEY = 0, 1, 2, 3, 4, 5, 6, 7, 8
_REQUEST_URI, _STATUS, _ERROR, _BYTES_SENT, _OBJECT_SIZE, _TOTAL, _TURN_AROUND = 9, 10, 11, 12, 13, 14, 15
_REFERRER, _USER_AGENT, _VERSION_ID, _HOST_ID, _SIGNATURE, _CIPHER, _AUTH, _HOST_HEADER = 16, 17, 18, 19, 20, 21, 22, 23
_TLS, _ACCESS_POINT, _ACL, _SOURCE_REGION = 24, 25, 26, 27
_KNOWN_COLUMNS = 28
_MIN_COLUMNS = 18
"""bucket_owner .. user_agent: what every S3 access log line has carried since the format was published."""

# The slow path: quoted columns may contain quotes. The request URI ends at the first quote followed by a
# status; the referrer at the first quote followed by the user agent; the user agent at the last quote of the
# line, since nothing after it is quoted.
_LINE = re.compile(
    r"(\S+) (\S+) \[(\S+) ([+-]\d{4})\] (\S+) (\S+) (\S+) (\S+) (\S+) (-|\".*?\") (\d+|-) (\S+) (\d+|-) (\d+|-) "
    r'(\d+|-) (\d+|-) (-|".*?") (-|".*")((?: [^ "]*)*)'
)
_SLOW_MAX = 32768
"""Longest line the regular expression is tried on: a line with many stray quotes that does not match costs
time quadratic in its length (about 0.3 s at 32 KiB), and real S3 lines stay far below this."""
_SNIFF = re.compile(
    r"[0-9a-f]{64} \S+ \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] \S+ \S+ [A-Za-z0-9]+ "
    r"[A-Z0-9]+\.[A-Za-z0-9_.]+ "
)
_REGION = re.compile(r"(?:^|-)([a-z]{2}(?:-[a-z]+)+-\d{1,2})$")

_MONTHS = {
    "Jan": "01", "Feb": "02", "Mar": "03", "Apr": "04", "May": "05", "Jun": "06",
    "Jul": "07", "Aug": "08", "Sep": "09", "Oct": "10", "Nov": "11", "Dec": "12",
}
_TIME_CACHE: dict[str, str] = {}
_REGION_CACHE: dict[str, str] = {}
_TLS_CACHE: dict[str, dict[str, str] | None] = {}
_CACHE_MAX = 4096


def _tokens_fast(line: str) -> list[str] | None:
    """Columns of a line in one of the two common shapes, unquoted; None for any other shape."""
    if '"' not in line:
        t = line.split(" ")
        return t if len(t) >= _MIN_COLUMNS else None
    parts = line.split('"')
    if len(parts) != 7 or parts[4] != " ":
        return None
    pre, mid, post = parts[0], parts[2], parts[6]
    t = pre.split(" ")
    if len(t) != 10 or t[9] != "":
        return None
    m = mid.split(" ")
    if len(m) != 8 or m[0] != "" or m[7] != "":
        return None
    t[9] = parts[1]
    t += m[1:7]
    t.append(parts[3])
    t.append(parts[5])
    if post:
        if post[0] != " ":
            return None
        t += post[1:].split(" ")
    return t


def _unquote(value: str) -> str:
    return value[1:-1] if value[:1] == '"' else value


def _tokens_slow(line: str) -> list[str] | None:
    if len(line) > _SLOW_MAX:
        return None
    m = _LINE.fullmatch(line)
    if m is None:
        return None
    g = m.groups()
    t = [g[0], g[1], "[" + g[2], g[3] + "]", g[4], g[5], g[6], g[7], g[8], _unquote(g[9])]
    t += g[10:16]
    t.append(_unquote(g[16]))
    t.append(_unquote(g[17]))
    if g[18]:
        t += g[18][1:].split(" ")
    return t


def _refuse(line: str) -> ParseError:
    """Say why a line is not an S3 access log line, so a dead letter tells what went wrong."""
    if len(line) > _SLOW_MAX and '"' in line:
        return ParseError(f"S3 access log line of {len(line)} characters with stray quotes: too long to untangle")
    t = line.split(" ")
    if len(t) < 4 or t[2][:1] != "[" or t[3][-1:] != "]":
        return ParseError("not an S3 server access log line: third field is not a [dd/Mon/yyyy:HH:MM:SS +0000] time")
    if len(t) < _MIN_COLUMNS:
        return ParseError(f"S3 access log line has {len(t)} fields, at least {_MIN_COLUMNS} expected")
    return ParseError("S3 access log line: columns do not line up (stray quotes or a non-numeric status/size/time)")


def _time(day: str, zone: str) -> str:
    """`[06/Feb/2019:00:00:38`, `+0000]` -> `2019-02-06T00:00:38.000Z`; S3 writes UTC, other offsets convert.

    Fields out of range (hour 24, day 32) are refused; day 31 of a 30-day month is left for the index to
    refuse, as `iso_to_utc_ms` does. A file's lines share a few hundred distinct seconds, so results are cached.
    """
    key = day + zone
    cached = _TIME_CACHE.get(key)
    if cached is not None:
        return cached
    month = _MONTHS.get(day[4:7])
    dd, yyyy, hh, mi, ss = day[1:3], day[8:12], day[13:15], day[16:18], day[19:21]
    if (
        len(day) != 21
        or day[0] != "["
        or month is None
        or day[3] != "/"
        or day[7] != "/"
        or day[12] != ":"
        or day[15] != ":"
        or day[18] != ":"
        or not (dd + yyyy + hh + mi + ss).isdigit()
        or not (dd + yyyy + hh + mi + ss).isascii()
        or not ("01" <= dd <= "31" and hh <= "23" and mi <= "59" and ss <= "60")
        or len(zone) != 6
        or zone[5] != "]"
    ):
        raise ParseError(f"S3 access log time: not [dd/Mon/yyyy:HH:MM:SS +zzzz]: {day} {zone}")
    if zone == "+0000]" or zone == "-0000]":
        out = f"{yyyy}-{month}-{dd}T{hh}:{mi}:{ss}.000Z"
    else:
        try:
            dt = datetime.strptime(f"{yyyy}-{month}-{dd}T{hh}:{mi}:{ss}{zone[:5]}", "%Y-%m-%dT%H:%M:%S%z")
        except ValueError:
            raise ParseError(f"S3 access log time out of range: {day} {zone}") from None
        out = dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if len(_TIME_CACHE) >= _CACHE_MAX:
        _TIME_CACHE.clear()
    _TIME_CACHE[key] = out
    return out


_int = int_reader("S3 access log field")


def region_of_host(host: str) -> str:
    """The AWS region an S3 endpoint host names, or "" (`s3.amazonaws.com`, custom domains).

    `bucket.s3.us-gov-west-1.amazonaws.com`, `s3.dualstack.eu-west-1.amazonaws.com`, `s3-us-west-2.amazonaws.com`,
    `bucket.s3-website-us-east-1.amazonaws.com`, `ap-123.s3-accesspoint.ap-south-1.amazonaws.com`: the region is
    the last label before `amazonaws` (or its `-region` suffix). Elastic's grok takes the label after the first
    `s3.`, which names `amazonaws` or `dualstack` for some of these; the result agrees with it wherever it is a
    region.
    """
    cached = _REGION_CACHE.get(host)
    if cached is not None:
        return cached
    labels = host.lower().split(".")
    region = ""
    if "amazonaws" in labels:
        i = labels.index("amazonaws")
        if i:
            m = _REGION.search(labels[i - 1])
            if m:
                region = m.group(1)
    if len(_REGION_CACHE) >= _CACHE_MAX:
        _REGION_CACHE.clear()
    _REGION_CACHE[host] = region
    return region


def _tls(value: str) -> dict[str, str] | None:
    """`TLSv1.2` / `TLSV1.2` -> ECS tls.version_protocol / tls.version (Elastic lower-cases before splitting)."""
    try:
        return _TLS_CACHE[value]
    except KeyError:
        pass
    parsed = tls_version(value.lower())
    out = {"version_protocol": parsed[0], "version": parsed[1]} if parsed else None
    if len(_TLS_CACHE) < 256:
        _TLS_CACHE[value] = out
    return out


class S3AccessParser(LogParser):
    """Stateless: every S3 access log line carries all of its columns."""

    log_type: ClassVar[str] = "s3_access"
    framing = "lines"
    fields: ClassVar[dict[str, FieldType]] = {
        "@timestamp": "date",
        "event.kind": "keyword",
        "event.category": "keyword",
        "event.type": "keyword",
        "event.action": "keyword",
        "event.id": "keyword",
        "event.code": "keyword",
        "event.outcome": "keyword",
        "event.duration": "long",
        "client.ip": "ip",
        "client.address": "keyword",
        "client.user.id": "keyword",
        "related.ip": "ip",
        "related.user": "keyword",
        "http.request.method": "keyword",
        "http.request.referrer": "keyword",
        "http.response.status_code": "long",
        "http.response.body.bytes": "long",
        "http.version": "keyword",
        "url.original": "keyword",
        "url.domain": "keyword",
        "url.port": "long",
        "url.path": "keyword",
        "url.query": "keyword",
        "url.scheme": "keyword",
        "url.extension": "keyword",
        "url.fragment": "keyword",
        "url.username": "keyword",
        "url.password": "keyword",
        "user_agent.original": "keyword",
        "tls.cipher": "keyword",
        "tls.version": "keyword",
        "tls.version_protocol": "keyword",
        "cloud.provider": "keyword",
        "cloud.account.id": "keyword",
        "cloud.region": "keyword",
        "aws.s3access.bucket_owner": "keyword",
        "aws.s3access.bucket": "keyword",
        "aws.s3access.remote_ip": "ip",
        "aws.s3access.requester": "keyword",
        "aws.s3access.request_id": "keyword",
        "aws.s3access.operation": "keyword",
        "aws.s3access.key": "keyword",
        "aws.s3access.request_uri": "keyword",
        "aws.s3access.http_status": "long",
        "aws.s3access.error_code": "keyword",
        "aws.s3access.bytes_sent": "long",
        "aws.s3access.object_size": "long",
        "aws.s3access.total_time": "long",
        "aws.s3access.turn_around_time": "long",
        "aws.s3access.referrer": "keyword",
        "aws.s3access.user_agent": "keyword",
        "aws.s3access.version_id": "keyword",
        "aws.s3access.host_id": "keyword",
        "aws.s3access.signature_version": "keyword",
        "aws.s3access.cipher_suite": "keyword",
        "aws.s3access.authentication_type": "keyword",
        "aws.s3access.host_header": "keyword",
        "aws.s3access.tls_version": "keyword",
        "aws.s3access.access_point_arn": "keyword",
        "aws.s3access.aclrequired": "keyword",
        "aws.s3access.source_region": "keyword",
        "aws.s3access.extra_fields": "keyword",
    }
    example: ClassVar[str] = (
        "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be DOC-EXAMPLE-BUCKET1 "
        "[06/Feb/2019:00:00:38 +0000] 192.0.2.3 79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be "
        '3E57427F3EXAMPLE REST.GET.VERSIONING - "GET /DOC-EXAMPLE-BUCKET1?versioning HTTP/1.1" 200 - 113 - 7 - '
        '"-" "S3Console/0.4" - s9lzHYrFp76ZVxRcpX9+5cjAnEH2ROuNkd2BHfIa6UkFVdtjf5mKR3/eTPFvsiP/XV/VLi31234= SigV4 '
        "ECDHE-RSA-AES128-GCM-SHA256 AuthHeader DOC-EXAMPLE-BUCKET1.s3.us-west-1.amazonaws.com TLSV1.2 "
        "arn:aws:s3:us-west-1:123456789012:accesspoint/example-AP Yes"
    )
    routing: ClassVar[str] = (
        "S3 access logs have no AWSLogs/ key layout: a key whose file name is `YYYY-MM-DD-HH-MM-SS-<16 hex>` (the "
        "default simple format) routes here; date-partitioned keys (`<prefix><account>/<region>/<bucket>/YYYY/MM/DD/"
        "...`) are found by content (a line starting with a 64-hex bucket owner id, a bucket name and a "
        "`[dd/Mon/yyyy:HH:MM:SS +0000]` time), or the source sets `log_type: s3_access`."
    )

    @classmethod
    def sniff(cls, head: str) -> bool:
        line = head.lstrip("\ufeff \t\r\n").split("\n", 1)[0]
        return bool(_SNIFF.match(line))

    def __init__(self, ctx: ParseContext) -> None:
        super().__init__(ctx)
        self._account = ctx.account_id
        self._region = ctx.region
        self._keep = ctx.keep_original

    def parse(self, record: Any) -> dict[str, Any] | None:
        line: str = record
        original = line
        if line[-1:].isspace():
            line = line.rstrip()
        if not line:
            return None
        t = _tokens_fast(line) or _tokens_slow(line)
        if t is None:
            raise _refuse(line)
        n = len(t)

        timestamp = _time(t[_TIME], t[_TZ])
        s3: dict[str, Any] = {"bucket_owner": t[_OWNER], "bucket": t[_BUCKET]}
        event: dict[str, Any] = {"kind": "event", "category": ["web"], "type": ["access"]}
        doc: dict[str, Any] = {"@timestamp": timestamp, "event": event, "aws": {"s3access": s3}}
        related: dict[str, Any] = {}
        if t[_OWNER] != "-":
            related["user"] = [t[_OWNER]]
        else:
            del s3["bucket_owner"]
        if t[_BUCKET] == "-":
            del s3["bucket"]

        client: dict[str, Any] = {}
        if (value := t[_REMOTE_IP]) != "-" and value:
            client["address"] = value
            if is_ip(value):
                s3["remote_ip"] = client["ip"] = value
                related["ip"] = [value]
        if (value := t[_REQUESTER]) != "-" and value:
            s3["requester"] = value
            client["user"] = {"id": value}
        if client:
            doc["client"] = client
        if (value := t[_REQUEST_ID]) != "-" and value:
            s3["request_id"] = value
            event["id"] = value
        if (value := t[_OPERATION]) != "-" and value:
            s3["operation"] = value
            event["action"] = value
        if (value := t[_KEY]) != "-" and value:
            s3["key"] = value

        http: dict[str, Any] = {}
        response: dict[str, Any] = {}
        if (value := t[_REQUEST_URI]) != "-" and value:
            s3["request_uri"] = value
            parts = value.split(" ")
            if len(parts) == 3 and parts[2][:5].upper() == "HTTP/" and parts[0] and parts[1]:
                http["request"] = {"method": parts[0]}
                http["version"] = parts[2][5:]
                doc["url"] = split_url(parts[1])
        try:
            status = None if (value := t[_STATUS]) == "-" else int(value)
            sent = None if (value := t[_BYTES_SENT]) == "-" else int(value)
            size = None if (value := t[_OBJECT_SIZE]) == "-" else int(value)
            total = None if (value := t[_TOTAL]) == "-" else int(value)
            turn_around = None if (value := t[_TURN_AROUND]) == "-" else int(value)
        except ValueError:
            raise _bad_number(t) from None
        if status is not None:
            s3["http_status"] = response["status_code"] = status
        if (value := t[_ERROR]) != "-" and value:
            s3["error_code"] = value
            event["code"] = value
            event["outcome"] = "failure"
        else:
            event["outcome"] = "success"
        if sent is not None:
            s3["bytes_sent"] = sent
            response["body"] = {"bytes": sent}
        if size is not None:
            s3["object_size"] = size
        if total is not None:
            s3["total_time"] = total
            event["duration"] = total * 1_000_000
        if turn_around is not None:
            s3["turn_around_time"] = turn_around
        if (value := t[_REFERRER]) != "-" and value:
            s3["referrer"] = value
            http.setdefault("request", {})["referrer"] = value
        if (value := t[_USER_AGENT]) != "-" and value:
            s3["user_agent"] = value
            doc["user_agent"] = {"original": value}
        if response:
            http["response"] = response
        if http:
            doc["http"] = http

        region = ""
        if n > _VERSION_ID:
            region = self._tail(t, n, doc, s3)
        if related:
            doc["related"] = related
        doc["cloud"] = aws_cloud(self._account, region or self._region)
        if self._keep:
            event["original"] = original
        return doc

    def _tail(self, t: list[str], n: int, doc: dict[str, Any], s3: dict[str, Any]) -> str:
        """Columns S3 added after launch; a line stops wherever its bucket's log version stopped (the missing
        ones are read as `-`). Returns the region named by the host header (or the access point ARN), else ""."""
        if n < _KNOWN_COLUMNS:
            t += _DASHES[: _KNOWN_COLUMNS - n]
        region = ""
        if (value := t[_VERSION_ID]) != "-" and value:
            s3["version_id"] = value
        if (value := t[_HOST_ID]) != "-" and value:
            s3["host_id"] = value
        if (value := t[_SIGNATURE]) != "-" and value:
            s3["signature_version"] = value
        if (value := t[_CIPHER]) != "-" and value:
            s3["cipher_suite"] = value
            doc["tls"] = {"cipher": value}
        if (value := t[_AUTH]) != "-" and value:
            s3["authentication_type"] = value
        if (value := t[_HOST_HEADER]) != "-" and value:
            s3["host_header"] = value
            region = region_of_host(value)
        if (value := t[_TLS]) != "-" and value:
            s3["tls_version"] = value
            parsed = _tls(value)
            if parsed is not None:
                tls = doc.get("tls")
                if tls is None:
                    doc["tls"] = dict(parsed)
                else:
                    tls.update(parsed)
        if (value := t[_ACCESS_POINT]) != "-" and value:
            s3["access_point_arn"] = value
            if not region:
                arn = value.split(":", 5)
                if len(arn) == 6 and _REGION.fullmatch(arn[3]):
                    region = arn[3]
        if (value := t[_ACL]) != "-" and value:
            s3["aclrequired"] = value
        if (value := t[_SOURCE_REGION]) != "-" and value:
            s3["source_region"] = value
        if n > _KNOWN_COLUMNS:
            s3["extra_fields"] = t[_KNOWN_COLUMNS:]
        return region


_DASHES = ["-"] * _KNOWN_COLUMNS
_NUMBERS = ((_STATUS, "http_status"), (_BYTES_SENT, "bytes_sent"), (_OBJECT_SIZE, "object_size"),
            (_TOTAL, "total_time"), (_TURN_AROUND, "turn_around_time"))


def _bad_number(t: list[str]) -> ParseError:
    """The error naming the first numeric column that is not a number (the line was read without names)."""
    for i, name in _NUMBERS:
        if t[i] != "-":
            try:
                _int(t[i], name)
            except ParseError as exc:
                return exc
    return ParseError("S3 access log line: a numeric column is not a number")


PARSER = S3AccessParser
