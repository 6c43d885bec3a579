"""Application Load Balancer access log lines -> ECS, with the field names Elastic's `aws.elb` pipeline uses.

ALB keeps appending columns to the end of its lines (classification in 2020, connection trace id in 2024,
transform fields in 2025), so columns are read by position, the ones a line does not have yet are simply
absent, and columns newer than this parser are kept verbatim in `aws.elb.extra_fields` instead of failing the
line. ALB connection-log lines (one line per client connection, written since 2023 into the same `_app.` file
naming) are parsed here too, as `aws.elb.type: connection` documents with Elastic's field names. Classic ELB and
NLB lines share the folder but not the layout: they raise `Reroute` to their own parsers instead of being misread.

Tokenising is a `str.split('"')` (quoted columns are the odd pieces); only lines carrying a backslash-escaped
quote take the slower precompiled regular expression.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from worker.parsers._aws import aws_cloud
from worker.parsers._fields import (
    iso_to_utc_ms,
    optional_float_reader,
    optional_int_reader,
    split_host_port,
    time_reader,
    tls_version,
)
from worker.parsers.base import FieldType, LogParser, ParseContext, ParseError, Reroute

_QUOTED_OR_BARE = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')
_MIN_FIELDS = 18
"""type .. trace_id: the columns every ALB has written since launch."""

# Column positions in the ALB access-log layout (AWS documentation, "Access log entries").
_TYPE, _TIME, _ELB, _CLIENT, _TARGET = 0, 1, 2, 3, 4
_REQ_PT, _TARGET_PT, _RESP_PT, _ELB_STATUS, _TARGET_STATUS, _RECEIVED, _SENT = 5, 6, 7, 8, 9, 10, 11
_REQUEST, _USER_AGENT, _CIPHER, _PROTOCOL, _TARGET_GROUP, _TRACE_ID = 12, 13, 14, 15, 16, 17
_DOMAIN, _CERT, _PRIORITY, _CREATED, _ACTIONS, _REDIRECT, _ERROR = 18, 19, 20, 21, 22, 23, 24
_TARGET_LIST, _STATUS_LIST, _CLASSIFICATION, _CLASSIFICATION_REASON, _CONN_TRACE = 25, 26, 27, 28, 29
_TRANSFORMED_HOST, _TRANSFORMED_URI, _TRANSFORM_STATUS = 30, 31, 32
_KNOWN_COLUMNS = 33

# ALB connection-log columns (AWS documentation, "Connection log entries").
_C_TIME, _C_CLIENT_IP, _C_CLIENT_PORT, _C_LISTENER_PORT, _C_PROTOCOL, _C_CIPHER, _C_LATENCY = 0, 1, 2, 3, 4, 5, 6
_C_SUBJECT, _C_VALIDITY, _C_SERIAL, _C_VERIFY, _C_CONN_TRACE = 7, 8, 9, 10, 11
_C_MIN_FIELDS = 11
"""time .. tls_verify_status: the columns of the first (2023) connection-log layout."""
_C_KNOWN_COLUMNS = 12

ACCESS_TYPES = frozenset(("http", "https", "h2", "grpcs", "ws", "wss"))
"""The first column of an ALB access-log line."""

_ISO = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z"
_SNIFF_ACCESS = re.compile(rf"(?:http|https|h2|grpcs|ws|wss) {_ISO} app/\S+ \S+:\d+ ")
_SNIFF_CONNECTION = re.compile(rf'{_ISO} [0-9A-Fa-f.:]+ \d+ \d+ \S+ \S+ (?:-|\d+(?:\.\d+)?) "')


def tokenize(line: str) -> list[str]:
    """Split an access-log line into columns; quoted columns lose their quotes. Raises ParseError."""
    if '\\"' in line:
        out: list[str] = []
        for quoted, bare in _QUOTED_OR_BARE.findall(line):
            out.append(bare if bare else quoted.replace('\\"', '"'))
        return out
    parts = line.split('"')
    if not len(parts) & 1:
        raise ParseError("ALB line has an unbalanced double quote")
    out = parts[0].split()
    for i in range(1, len(parts), 2):
        out.append(parts[i])
        tail = parts[i + 1]
        if tail != " ":
            out.extend(tail.split())
    return out


def split_url(url: str) -> dict[str, Any]:
    """`scheme://[user[:pass]@]host[:port]/path?query#fragment` -> ECS `url.*`, as Elastic's `uri_parts`.

    Nothing is percent-decoded (Elastic keeps the raw path and query). A URL whose port is not a number
    yields only `url.original`, as `uri_parts` fails on it.
    """
    out: dict[str, Any] = {"original": url}
    if url[:1] == "/" and "://" not in url:
        # A bare path (S3 access logs, CloudFront, most request lines): no scheme and no authority to look for.
        return _split_tail(url, out)
    scheme, sep, rest = url.partition("://")
    if not sep:
        if url[:1] == "/":
            scheme, rest = "", url
        else:
            return out
    cut = len(rest)
    for ch in "/?#":
        pos = rest.find(ch)
        if 0 <= pos < cut:
            cut = pos
    authority, tail = rest[:cut], rest[cut:]
    if authority:
        userinfo, at, hostport = authority.rpartition("@")
        if at:
            user, colon, password = userinfo.partition(":")
            out["username"] = user
            if colon:
                out["password"] = password
        if hostport[:1] == "[":
            host, _, port = hostport[1:].partition("]")
            port = port[1:]
        else:
            host, _, port = hostport.partition(":")
        if port:
            if not port.isdigit():
                return {"original": url}
            out["port"] = int(port)
        if host:
            out["domain"] = host
    if scheme:
        out["scheme"] = scheme
    return _split_tail(tail, out)


def _split_tail(tail: str, out: dict[str, Any]) -> dict[str, Any]:
    """`/path?query#fragment` into `out` (path, extension, query, fragment); most URLs have no `#`, many no `?`."""
    fragment = query = ""
    if "#" in tail:
        tail, _, fragment = tail.partition("#")
    if "?" in tail:
        path, _, query = tail.partition("?")
    else:
        path = tail
    if path:
        out["path"] = path
        last = path.rpartition("/")[2]
        dot = last.rfind(".")
        if dot >= 0 and dot < len(last) - 1:
            out["extension"] = last[dot + 1 :]
    if query:
        out["query"] = query
    if fragment:
        out["fragment"] = fragment
    return out


def line_kind(tokens: list[str]) -> str:
    """Which load balancer log layout a tokenised line has, by its first columns only (cheap, no parsing).

    `alb` (access log), `alb_connection`, `nlb`, `elb` (Classic) or `""` (none of them). Shared by the three
    load balancer parsers so that they reroute each other's lines the same way.
    """
    n = len(tokens)
    if n < 3:
        return ""
    first = tokens[0]
    if first in ACCESS_TYPES and tokens[2][:4] == "app/":
        return "alb"
    if first == "tls" and tokens[1][:1].isdigit():
        return "nlb"
    if len(first) >= 20 and first[4] == "-" and first[10] == "T" and first[:4].isdigit():
        if tokens[2].isdigit():
            return "alb_connection"
        if ":" in tokens[2]:
            return "elb"
    return ""


def put_request_line(
    value: str,
    doc: dict[str, Any],
    http: dict[str, Any],
    request: dict[str, Any],
    response: dict[str, Any],
    strip: bool = False,
) -> None:
    """The request column of an ALB or Classic ELB line (`GET https://host:443/path HTTP/1.1`) -> the method
    in `request`, `http.version`, `url.*`; then `request` and `response` go into `http` and `http` into `doc`
    unless empty. `strip`: cut trailing spaces before the version (Classic ELB TCP listeners log `- - - `).
    """
    method, _, rest = value.partition(" ")
    url, sep, version = (rest.rstrip(" ") if strip else rest).rpartition(" ")
    if not sep:
        url, version = rest, ""
    if method and method != "-":
        request["method"] = method
    if version.startswith("HTTP/"):
        http["version"] = version[5:]
    if url and url != "-":
        doc["url"] = split_url(url)
    if request:
        http["request"] = request
    if response:
        http["response"] = response
    if http:
        doc["http"] = http


def put_tls(doc: dict[str, Any], elb: dict[str, Any], cipher: str, protocol: str) -> None:
    """The `ssl_cipher` and `ssl_protocol` columns of an ALB or Classic ELB line (`-`: none) -> `aws.elb.*`
    as logged and ECS `tls.*`."""
    if cipher != "-":
        elb["ssl_cipher"] = cipher
        doc["tls"] = {"cipher": cipher}
    if protocol != "-":
        elb["ssl_protocol"] = protocol
        parsed = tls_version(protocol)
        if parsed is not None:
            tls = doc.setdefault("tls", {})
            tls["version_protocol"], tls["version"] = parsed


HTTP_FIELDS: dict[str, FieldType] = {
    "http.request.method": "keyword",
    "http.request.body.bytes": "long",
    "http.response.body.bytes": "long",
    "http.response.status_code": "long",
    "http.version": "keyword",
    "url.original": "keyword",
    "url.domain": "keyword",
    "url.port": "long",
    "url.path": "keyword",
    "url.query": "keyword",
    "url.scheme": "keyword",
    "url.extension": "keyword",
    "user_agent.original": "keyword",
    "tls.cipher": "keyword",
    "tls.version": "keyword",
    "tls.version_protocol": "keyword",
}
"""The ECS fields the HTTP columns of ALB and Classic ELB lines become (status, body sizes, `put_request_line`,
the user agent, `put_tls`): declared once for both parsers."""


def _refuse(tokens: list[str]) -> ParseError:
    """Why a line that is no load balancer log line at all is refused."""
    if len(tokens) < _MIN_FIELDS:
        return ParseError(f"ALB line has {len(tokens)} fields, at least {_MIN_FIELDS} expected")
    return ParseError(f"not an ALB access log line: third field {tokens[2][:40]!r} is not an app/... name")


_float = optional_float_reader("ALB field", minus_one=True)
_int = optional_int_reader("ALB field")
_time = time_reader("ALB field")


class AlbParser(LogParser):
    """Stateless: every ALB line carries all of its columns."""

    log_type: ClassVar[str] = "alb"
    framing = "lines"
    fields: ClassVar[dict[str, FieldType]] = {
        "@timestamp": "date",
        "event.start": "date",
        "event.end": "date",
        "source.ip": "ip",
        "source.address": "keyword",
        "source.port": "long",
        "destination.domain": "keyword",
        **HTTP_FIELDS,
        "trace.id": "keyword",
        "cloud.account.id": "keyword",
        "cloud.region": "keyword",
        "aws.elb.name": "keyword",
        "aws.elb.type": "keyword",
        "aws.elb.protocol": "keyword",
        "aws.elb.backend.ip": "ip",
        "aws.elb.backend.port": "keyword",
        "aws.elb.backend.http.response.status_code": "long",
        "aws.elb.request_processing_time.sec": "float",
        "aws.elb.backend_processing_time.sec": "float",
        "aws.elb.response_processing_time.sec": "float",
        "aws.elb.ssl_cipher": "keyword",
        "aws.elb.ssl_protocol": "keyword",
        "aws.elb.target_group.arn": "keyword",
        "aws.elb.trace_id": "keyword",
        "aws.elb.chosen_cert.arn": "keyword",
        "aws.elb.matched_rule_priority": "keyword",
        "aws.elb.action_executed": "keyword",
        "aws.elb.redirect_url": "keyword",
        "aws.elb.error.reason": "keyword",
        "aws.elb.target_port": "keyword",
        "aws.elb.target_status_code": "keyword",
        "aws.elb.classification": "keyword",
        "aws.elb.classification_reason": "keyword",
        "aws.elb.connection_trace_id": "keyword",
        "aws.elb.transformed_host": "keyword",
        "aws.elb.transformed_uri": "keyword",
        "aws.elb.request_transform_status": "keyword",
        "aws.elb.extra_fields": "keyword",
        # connection-log lines
        "client.ip": "ip",
        "client.port": "long",
        "destination.port": "long",
        "aws.elb.listener": "keyword",
        "aws.elb.tls_handshake_latency": "float",
        "aws.elb.leaf_client_cert_subject": "keyword",
        "aws.elb.leaf_client_cert_not_before": "date",
        "aws.elb.leaf_client_cert_not_after": "date",
        "aws.elb.leaf_client_cert_validity": "keyword",
        "aws.elb.leaf_client_cert_serial_number": "keyword",
        "aws.elb.tls_verify_status": "keyword",
        "aws.elb.tls_error_code": "keyword",
        "tls.client.subject": "keyword",
        "tls.client.not_before": "date",
        "tls.client.not_after": "date",
        "tls.client.x509.serial_number": "keyword",
    }
    example = (
        "https 2018-07-02T22:23:00.186641Z app/my-loadbalancer/50dc6c495c0c9188 192.168.131.39:2817 10.0.0.1:80 "
        "0.086 0.048 0.037 200 200 0 57 \"GET https://www.example.com:443/ HTTP/1.1\" \"curl/7.46.0\" "
        "ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 arn:aws:elasticloadbalancing:us-east-2:123456789012:targetgroup/"
        "my-targets/73e2d6bc24d8a067 \"Root=1-58337281-1d84f3d73c47ec4e58577259\" \"www.example.com\" "
        "\"arn:aws:acm:us-east-2:123456789012:certificate/12345678-1234-1234-1234-123456789012\" 1 "
        "2018-07-02T22:22:48.364000Z \"authenticate,forward\" \"-\" \"-\" \"10.0.0.1:80\" \"200\" \"-\" \"-\""
    )
    routing = (
        "S3 key `AWSLogs/<account>/elasticloadbalancing/<region>/YYYY/MM/DD/[conn_log_]<account>_elasticloadbalancing_"
        "<region>_app.<lb>...` (`_app.` in the file name); content: a line starting `http|https|h2|grpcs|ws|wss "
        "<ISO time> app/...`, or a connection-log line `<ISO time> <client ip> <port> <listener port> ...`."
    )

    @classmethod
    def sniff(cls, head: str) -> bool:
        line = head.lstrip("\ufeff \r\n").split("\n", 1)[0]
        return bool(_SNIFF_ACCESS.match(line) or _SNIFF_CONNECTION.match(line))

    def __init__(self, ctx: ParseContext) -> None:
        super().__init__(ctx)
        self._account = ctx.account_id
        self._region = ctx.region

    def parse(self, record: Any) -> dict[str, Any] | None:
        line: str = record
        try:
            t = tokenize(line)
        except ParseError:
            kind = line_kind(line.split(None, 3))
            if kind == "nlb" or kind == "elb":
                raise Reroute(kind) from None
            raise
        n = len(t)
        if n == 0:
            return None
        if n < _MIN_FIELDS or not t[_ELB].startswith("app/"):
            kind = line_kind(t)
            if kind == "alb_connection":
                return self._connection(t, n, line)
            if kind == "nlb" or kind == "elb":
                raise Reroute(kind)
            raise _refuse(t)

        elb: dict[str, Any] = {"name": t[_ELB], "type": t[_TYPE], "protocol": "http"}
        timestamp = _time(t[_TIME], "time")
        event: dict[str, Any] = {"kind": "event", "category": ["web"], "end": timestamp}
        doc: dict[str, Any] = {"@timestamp": timestamp, "event": event, "aws": {"elb": elb}}

        if (value := t[_CLIENT]).rfind(":") > 0:  # something before the port
            host, port = split_host_port(value)
            source: dict[str, Any] = {"address": host, "ip": host}
            if port.isdigit():
                source["port"] = int(port)
            doc["source"] = source
        if (value := t[_TARGET]) != "-":
            host, port = split_host_port(value)
            elb["backend"] = {"ip": host, "port": port}
        try:  # read without names: only a line that fails looks for the column to name (`_bad_number`)
            req_pt = None if (value := t[_REQ_PT]) == "-" or value == "-1" else float(value)
            target_pt = None if (value := t[_TARGET_PT]) == "-" or value == "-1" else float(value)
            resp_pt = None if (value := t[_RESP_PT]) == "-" or value == "-1" else float(value)
            status = None if (value := t[_ELB_STATUS]) == "-" else int(value)
            code = None if (value := t[_TARGET_STATUS]) == "-" else int(value)
            received = None if (value := t[_RECEIVED]) == "-" else int(value)
            sent = None if (value := t[_SENT]) == "-" else int(value)
        except ValueError:
            raise _bad_number(t) from None
        if req_pt is not None:
            elb["request_processing_time"] = {"sec": req_pt}
        if target_pt is not None:
            elb["backend_processing_time"] = {"sec": target_pt}
        if resp_pt is not None:
            elb["response_processing_time"] = {"sec": resp_pt}

        http: dict[str, Any] = {}
        request: dict[str, Any] = {}
        response: dict[str, Any] = {}
        if status is not None:
            response["status_code"] = status
            event["outcome"] = "success" if status < 400 else "failure"
        if code is not None:
            elb.setdefault("backend", {})["http"] = {"response": {"status_code": code}}
        if received is not None:
            request["body"] = {"bytes": received}
        if sent is not None:
            response["body"] = {"bytes": sent}

        put_request_line(t[_REQUEST], doc, http, request, response)
        if (value := t[_USER_AGENT]) != "-" and value:
            doc["user_agent"] = {"original": value}
        put_tls(doc, elb, t[_CIPHER], t[_PROTOCOL])
        account, region = self._account, self._region
        if (value := t[_TARGET_GROUP]) != "-":
            elb["target_group"] = {"arn": value}
            if not (account and region):
                arn = value.split(":", 5)
                if len(arn) == 6:
                    region = region or arn[3]
                    account = account or arn[4]
        doc["cloud"] = aws_cloud(account, region)
        if (value := t[_TRACE_ID]) != "-" and value:
            elb["trace_id"] = value
            doc["trace"] = {"id": value}

        if n > _DOMAIN:
            self._tail(t, n, doc, elb, event)
        if self.ctx.keep_original:
            event["original"] = line
        return doc

    def _connection(self, t: list[str], n: int, line: str) -> dict[str, Any]:
        """One ALB connection-log line (a client connection and its TLS handshake) -> document.

        Field names follow Elastic's `aws.elb` pipeline (which puts the client in `client.*` and the listener
        port in `aws.elb.listener`); `source.*`, `destination.port` and `tls.client.*` repeat them under the
        ECS names the access-log documents of the same index use, so one query finds both.
        """
        if n < _C_MIN_FIELDS:
            raise ParseError(f"ALB connection log line has {n} fields, at least {_C_MIN_FIELDS} expected")
        timestamp = _time(t[_C_TIME], "time")
        elb: dict[str, Any] = {"type": "connection", "protocol": "tcp", "listener": t[_C_LISTENER_PORT]}
        event: dict[str, Any] = {"kind": "event", "category": ["network"], "end": timestamp}
        doc: dict[str, Any] = {"@timestamp": timestamp, "event": event, "aws": {"elb": elb}}
        ip = t[_C_CLIENT_IP]
        port = _int(t[_C_CLIENT_PORT], "client_port")
        if ip != "-":
            source: dict[str, Any] = {"address": ip, "ip": ip}
            client: dict[str, Any] = {"ip": ip}
            if port is not None:
                source["port"] = client["port"] = port
            doc["source"] = source
            doc["client"] = client
        if (listener := _int(t[_C_LISTENER_PORT], "listener_port")) is not None:
            doc["destination"] = {"port": listener}
        tls: dict[str, Any] = {}
        if (value := t[_C_PROTOCOL]) != "-":
            elb["ssl_protocol"] = value
            parsed = tls_version(value)
            if parsed is not None:
                tls["version_protocol"], tls["version"] = parsed
        if (value := t[_C_CIPHER]) != "-":
            elb["ssl_cipher"] = tls["cipher"] = value
        if (sec := _float(t[_C_LATENCY], "tls_handshake_latency")) is not None:
            elb["tls_handshake_latency"] = sec
        client_cert: dict[str, Any] = {}
        if (value := t[_C_SUBJECT]) != "-" and value:
            elb["leaf_client_cert_subject"] = client_cert["subject"] = value
        if (value := t[_C_VALIDITY]) != "-" and value:
            before, sep, after = value.partition(";")
            if before[:10] == "NotBefore=" and sep and after[:9] == "NotAfter=":
                try:
                    not_before, not_after = iso_to_utc_ms(before[10:]), iso_to_utc_ms(after[9:])
                except ValueError:
                    elb["leaf_client_cert_validity"] = value
                else:
                    elb["leaf_client_cert_not_before"] = client_cert["not_before"] = not_before
                    elb["leaf_client_cert_not_after"] = client_cert["not_after"] = not_after
            else:
                elb["leaf_client_cert_validity"] = value
        if (value := t[_C_SERIAL]) != "-" and value:
            elb["leaf_client_cert_serial_number"] = value
            client_cert["x509"] = {"serial_number": value}
        if client_cert:
            tls["client"] = client_cert
        if tls:
            doc["tls"] = tls
        if (value := t[_C_VERIFY]) != "-" and value:
            status, _, code = value.partition(":")
            elb["tls_verify_status"] = status
            if code:
                elb["tls_error_code"] = code
            if status == "Success":
                event["outcome"] = "success"
            elif status == "Failed":
                event["outcome"] = "failure"
        if n > _C_CONN_TRACE and (value := t[_C_CONN_TRACE]) != "-" and value:
            elb["connection_trace_id"] = value
        if n > _C_KNOWN_COLUMNS:
            elb["extra_fields"] = t[_C_KNOWN_COLUMNS:]
        doc["cloud"] = aws_cloud(self._account, self._region)
        if self.ctx.keep_original:
            event["original"] = line
        return doc

    def _tail(
        self, t: list[str], n: int, doc: dict[str, Any], elb: dict[str, Any], event: dict[str, Any]
    ) -> None:
        """Columns added after launch; a line stops wherever its ALB's log version stopped (the missing ones are
        read as `-`)."""
        if n < _KNOWN_COLUMNS:
            t += _DASHES[: _KNOWN_COLUMNS - n]
        if (value := t[_DOMAIN]) != "-" and value:
            doc["destination"] = {"domain": value}
        if (value := t[_CERT]) != "-" and value:
            elb["chosen_cert"] = {"arn": value}
        if (value := t[_PRIORITY]) != "-" and value != "-1":
            elb["matched_rule_priority"] = value
        if (value := t[_CREATED]) != "-":
            event["start"] = _time(value, "request_creation_time")
        if (value := t[_ACTIONS]) != "-" and value:
            elb["action_executed"] = value.split(",")
        if (value := t[_REDIRECT]) != "-" and value:
            elb["redirect_url"] = value
        if (value := t[_ERROR]) != "-" and value:
            elb["error"] = {"reason": value}
        if (value := t[_TARGET_LIST]) != "-" and value:
            elb["target_port"] = value.split()
        if (value := t[_STATUS_LIST]) != "-" and value:
            elb["target_status_code"] = value.split()
        if (value := t[_CLASSIFICATION]) != "-" and value:
            elb["classification"] = value
        if (value := t[_CLASSIFICATION_REASON]) != "-" and value:
            elb["classification_reason"] = value
        if (value := t[_CONN_TRACE]) != "-" and value:
            elb["connection_trace_id"] = value
        if (value := t[_TRANSFORMED_HOST]) != "-" and value:
            elb["transformed_host"] = value
        if (value := t[_TRANSFORMED_URI]) != "-" and value:
            elb["transformed_uri"] = value
        if (value := t[_TRANSFORM_STATUS]) != "-" and value:
            elb["request_transform_status"] = value
        if n > _KNOWN_COLUMNS:
            elb["extra_fields"] = t[_KNOWN_COLUMNS:]


_DASHES = ["-"] * _KNOWN_COLUMNS
_NUMBERS = ((_REQ_PT, "request_processing_time", True), (_TARGET_PT, "target_processing_time", True),
            (_RESP_PT, "response_processing_time", True), (_ELB_STATUS, "elb_status_code", False),
            (_TARGET_STATUS, "target_status_code", False), (_RECEIVED, "received_bytes", False),
            (_SENT, "sent_bytes", False))


def _bad_number(t: list[str]) -> ParseError:
    """The error naming the first numeric column that is not a number (the line was read without names)."""
    for i, name, is_float in _NUMBERS:
        try:
            _float(t[i], name) if is_float else _int(t[i], name)
        except ParseError as exc:
            return exc
    return ParseError("ALB line: a numeric column is not a number")


PARSER = AlbParser
