"""Classic Load Balancer access log lines -> ECS, with the field names Elastic's `aws.elb` pipeline uses.

A Classic ELB line is an ALB line without the leading type column and without the columns ALB added:
`time elb client:port backend:port request_processing_time backend_processing_time response_processing_time
elb_status_code backend_status_code received_bytes sent_bytes "request" "user_agent" ssl_cipher ssl_protocol`.
HTTP(S) listeners fill the request columns; TCP/SSL listeners write `"- - - "` for the request, `"-"` for the
user agent and `-` for both status codes, and are mapped as Elastic maps them: `aws.elb.protocol: tcp`,
`event.category: network`, the byte counts as `source.bytes` / `destination.bytes` instead of HTTP body sizes.

Tokenising is the ALB parser's (`str.split('"')`); columns after `ssl_protocol` (none exist yet) are kept in
`aws.elb.extra_fields`. ALB and NLB lines raise `Reroute` to their own parsers.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from worker.parsers._fields import is_ip, iso_to_utc_ms, tls_version
from worker.parsers.alb import line_kind, split_url, tokenize
from worker.parsers.base import FieldType, LogParser, ParseContext, ParseError, Reroute

# Column positions (AWS documentation, Classic Load Balancers, "Access log entries").
_TIME, _ELB, _CLIENT, _BACKEND, _REQ_PT, _BACKEND_PT, _RESP_PT = 0, 1, 2, 3, 4, 5, 6
_ELB_STATUS, _BACKEND_STATUS, _RECEIVED, _SENT, _REQUEST, _USER_AGENT, _CIPHER, _PROTOCOL = 7, 8, 9, 10, 11, 12, 13, 14
_MIN_FIELDS = 12
"""time .. request: the columns of the oldest Classic ELB lines (user agent and TLS columns came in 2015)."""
_KNOWN_COLUMNS = 15
_TCP_REQUEST = "- - - "
"""The request column of a TCP or SSL listener's line."""

_SNIFF = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z \S+ \[?[0-9A-Fa-f.:]+\]?:\d+ (?:-|\[?[0-9A-Fa-f.:]+\]?:\d+) "
    r"-?[\d.]+ -?[\d.]+ -?[\d.]+ (?:\d{3}|-) (?:\d{3}|-) \d+ \d+ \""
)


_SECONDS: set[str] = set()
"""`YYYY-MM-DDTHH:MM:SS` prefixes already validated: a busy load balancer writes many lines per second."""


def _time(value: str) -> str:
    """`2015-05-13T23:39:43.945958Z` -> `2015-05-13T23:39:43.945Z`, validating each distinct second once."""
    if len(value) == 27 and value[:19] in _SECONDS and value[19] == "." and value[26] == "Z" and value[20:26].isdigit():
        return value[:23] + "Z"
    try:
        out = iso_to_utc_ms(value)
    except ValueError as exc:
        raise ParseError(f"Classic ELB field time: {exc}") from None
    if len(value) == 27 and out[:19] == value[:19]:
        if len(_SECONDS) >= 4096:
            _SECONDS.clear()
        _SECONDS.add(value[:19])
    return out


def _float(value: str, name: str) -> float | None:
    if value == "-" or value == "-1":
        return None
    try:
        return float(value)
    except ValueError:
        raise ParseError(f"Classic ELB field {name}: not a number: {value!r}") from None


def _int(value: str, name: str) -> int | None:
    if value == "-":
        return None
    try:
        return int(value)
    except ValueError:
        raise ParseError(f"Classic ELB field {name}: not an integer: {value!r}") from None


class ElbParser(LogParser):
    """Stateless: every Classic ELB line carries all of its columns."""

    log_type: ClassVar[str] = "elb"
    framing = "lines"
    fields: ClassVar[dict[str, FieldType]] = {
        "@timestamp": "date",
        "event.end": "date",
        "source.ip": "ip",
        "source.address": "keyword",
        "source.port": "long",
        "source.bytes": "long",
        "destination.bytes": "long",
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
        "cloud.account.id": "keyword",
        "cloud.region": "keyword",
        "aws.elb.name": "keyword",
        "aws.elb.protocol": "keyword",
        "aws.elb.backend.ip": "ip",
        "aws.elb.backend.port": "keyword",
        "aws.elb.backend.http.response.status_code": "long",
        "aws.elb.request_processing_time.sec": "float",
        "aws.elb.backend_processing_time.sec": "float",
        "aws.elb.response_processing_time.sec": "float",
        "aws.elb.ssl_cipher": "keyword",
        "aws.elb.ssl_protocol": "keyword",
        "aws.elb.extra_fields": "keyword",
    }
    example = (
        "2015-05-13T23:39:43.945958Z my-loadbalancer 192.168.131.39:2817 10.0.0.1:80 0.000086 0.001048 0.001337 "
        '200 200 0 57 "GET https://www.example.com:443/ HTTP/1.1" "curl/7.38.0" DHE-RSA-AES128-SHA TLSv1.2'
    )
    routing = (
        "S3 key `AWSLogs/<account>/elasticloadbalancing/<region>/YYYY/MM/DD/<account>_elasticloadbalancing_<region>_"
        "<lb>...` whose file name has neither `_app.` nor `_net.`; content: a line starting `<ISO time> <lb name> "
        "<client ip>:<port> <backend ip>:<port>|- <three timings> <statuses> <bytes> \"`."
    )

    def __init__(self, ctx: ParseContext) -> None:
        super().__init__(ctx)
        self._account = ctx.account_id
        self._region = ctx.region

    @classmethod
    def sniff(cls, head: str) -> bool:
        line = head.lstrip("\ufeff \r\n").split("\n", 1)[0]
        return _SNIFF.match(line) is not None

    def parse(self, record: Any) -> dict[str, Any] | None:
        line: str = record
        try:
            t = tokenize(line)
        except ParseError:
            kind = line_kind(line.split(None, 3))
            if kind == "nlb":
                raise Reroute("nlb") from None
            if kind == "alb" or kind == "alb_connection":
                raise Reroute("alb") from None
            raise ParseError("Classic ELB line has an unbalanced double quote") from None
        n = len(t)
        if n == 0:
            return None
        if n < _MIN_FIELDS or ":" not in t[_CLIENT] or not t[_TIME][:4].isdigit():
            kind = line_kind(t)
            if kind == "nlb":
                raise Reroute("nlb")
            if kind == "alb" or kind == "alb_connection":
                raise Reroute("alb")
            if n < _MIN_FIELDS:
                raise ParseError(f"Classic ELB line has {n} fields, at least {_MIN_FIELDS} expected")
            raise ParseError(f"not a Classic ELB access log line: expected `<time> <name> <ip>:<port> ...`, "
                             f"got {line[:60]!r}")

        timestamp = _time(t[_TIME])
        elb: dict[str, Any] = {"name": t[_ELB]}
        event: dict[str, Any] = {"kind": "event", "end": timestamp}
        doc: dict[str, Any] = {"@timestamp": timestamp, "event": event, "aws": {"elb": elb}}

        host, _, port = t[_CLIENT].rpartition(":")
        if host[:1] == "[":
            host = host[1:-1]
        source: dict[str, Any] = {"address": host}
        if is_ip(host):
            source["ip"] = host
        if port.isdigit():
            source["port"] = int(port)
        doc["source"] = source
        if (value := t[_BACKEND]) != "-":
            host, _, port = value.rpartition(":")
            if host[:1] == "[":
                host = host[1:-1]
            backend: dict[str, Any] = {"port": port}
            if is_ip(host):
                backend["ip"] = host
            elb["backend"] = backend
        if (sec := _float(t[_REQ_PT], "request_processing_time")) is not None:
            elb["request_processing_time"] = {"sec": sec}
        if (sec := _float(t[_BACKEND_PT], "backend_processing_time")) is not None:
            elb["backend_processing_time"] = {"sec": sec}
        if (sec := _float(t[_RESP_PT], "response_processing_time")) is not None:
            elb["response_processing_time"] = {"sec": sec}

        status = _int(t[_ELB_STATUS], "elb_status_code")
        received = _int(t[_RECEIVED], "received_bytes")
        sent = _int(t[_SENT], "sent_bytes")
        request_line = t[_REQUEST]
        if status is None and request_line == _TCP_REQUEST:
            elb["protocol"] = "tcp"
            event["category"] = ["network"]
            if received is not None:
                source["bytes"] = received
            if sent is not None:
                doc["destination"] = {"bytes": sent}
            if (code := _int(t[_BACKEND_STATUS], "backend_status_code")) is not None:
                elb.setdefault("backend", {})["http"] = {"response": {"status_code": code}}
        else:
            elb["protocol"] = "http"
            event["category"] = ["web"]
            self._http(t, doc, elb, event, status, received, sent, request_line)

        if n > _CIPHER and (value := t[_CIPHER]) != "-":
            elb["ssl_cipher"] = value
            tls: dict[str, Any] = {"cipher": value}
            doc["tls"] = tls
        if n > _PROTOCOL and (value := t[_PROTOCOL]) != "-":
            elb["ssl_protocol"] = value
            parsed = tls_version(value)
            if parsed is not None:
                tls = doc.setdefault("tls", {})
                tls["version_protocol"], tls["version"] = parsed
        if n > _KNOWN_COLUMNS:
            elb["extra_fields"] = t[_KNOWN_COLUMNS:]
        cloud: dict[str, Any] = {"provider": "aws"}
        if self._account:
            cloud["account"] = {"id": self._account}
        if self._region:
            cloud["region"] = self._region
        doc["cloud"] = cloud
        if self.ctx.keep_original:
            event["original"] = line
        return doc

    @staticmethod
    def _http(
        t: list[str],
        doc: dict[str, Any],
        elb: dict[str, Any],
        event: dict[str, Any],
        status: int | None,
        received: int | None,
        sent: int | None,
        request_line: str,
    ) -> None:
        """The HTTP(S) listener columns: statuses, body sizes, request line and user agent."""
        http: dict[str, Any] = {}
        request: dict[str, Any] = {}
        response: dict[str, Any] = {}
        if status is not None:
            response["status_code"] = status
            event["outcome"] = "success" if status < 400 else "failure"
        if (code := _int(t[_BACKEND_STATUS], "backend_status_code")) is not None:
            elb.setdefault("backend", {})["http"] = {"response": {"status_code": code}}
        if received is not None:
            request["body"] = {"bytes": received}
        if sent is not None:
            response["body"] = {"bytes": sent}
        method, _, rest = request_line.partition(" ")
        url, sep, version = rest.rstrip(" ").rpartition(" ")
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
        if len(t) > _USER_AGENT and (value := t[_USER_AGENT]) != "-" and value:
            doc["user_agent"] = {"original": value}


PARSER = ElbParser
