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

from worker.parsers._aws import cloud_builder
from worker.parsers._fields import (
    IP_SEEN,
    is_ip,
    iso_to_utc_ms,
    optional_float_reader,
    optional_int_reader,
)
from worker.parsers.alb import HTTP_FIELDS, line_kind, put_request_line, put_tls, tokenize
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


_float = optional_float_reader("Classic ELB field", minus_one=True)
_int = optional_int_reader("Classic ELB field")


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
        **HTTP_FIELDS,
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
        self._cloud = cloud_builder(ctx.account_id, ctx.region)

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

        try:
            timestamp = iso_to_utc_ms(t[_TIME])
        except ValueError as exc:
            raise ParseError(f"Classic ELB field time: {exc}") from None
        elb: dict[str, Any] = {"name": t[_ELB]}
        event: dict[str, Any] = {"kind": "event", "end": timestamp}
        doc: dict[str, Any] = {"@timestamp": timestamp, "event": event, "aws": {"elb": elb}}

        host, _, port = t[_CLIENT].rpartition(":")  # as `split_host_port`, inlined: ELB lines are short
        if host[:1] == "[":
            host = host[1:-1]
        source: dict[str, Any] = {"address": host}
        if IP_SEEN.get(host) or is_ip(host):
            source["ip"] = host
        if port.isdigit():
            source["port"] = int(port)
        doc["source"] = source
        if (value := t[_BACKEND]) != "-":
            host, _, port = value.rpartition(":")
            if host[:1] == "[":
                host = host[1:-1]
            backend: dict[str, Any] = {"port": port}
            if IP_SEEN.get(host) or is_ip(host):
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
        else:  # HTTP(S) listener: statuses, body sizes, request line, user agent
            elb["protocol"] = "http"
            event["category"] = ["web"]
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
            put_request_line(request_line, doc, http, request, response, True)
            if n > _USER_AGENT and (value := t[_USER_AGENT]) != "-" and value:
                doc["user_agent"] = {"original": value}

        if n > _CIPHER:
            put_tls(doc, elb, t[_CIPHER], t[_PROTOCOL] if n > _PROTOCOL else "-")
        if n > _KNOWN_COLUMNS:
            elb["extra_fields"] = t[_KNOWN_COLUMNS:]
        doc["cloud"] = self._cloud()
        if self.ctx.keep_original:
            event["original"] = line
        return doc


PARSER = ElbParser
