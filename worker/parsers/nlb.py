"""Network Load Balancer access log lines (TLS listeners) -> ECS, with Elastic's `aws.elb` pipeline names.

An NLB writes one line per TLS connection, space-separated with no quoting (only the ALPN client preference
list carries double quotes, and it has no spaces: its values are URL-encoded), so a plain `str.split` is the
tokenizer. Columns are read by position: the 2018 layout stops at `domain_name`, 2020 added the ALPN columns
and 2024 `tls_connection_creation_time`; whatever comes after is kept in `aws.elb.extra_fields`.

Timestamps are naive (`2018-12-20T02:59:40`, UTC by definition) and go through the slicing fast path of
`iso_to_utc_ms` with a `Z` appended. ALB and Classic ELB lines raise `Reroute` to their own parsers.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from worker.parsers._aws import aws_cloud
from worker.parsers._fields import is_ip, iso_to_utc_ms, split_host_port, tls_version
from worker.parsers.alb import line_kind
from worker.parsers.base import FieldType, LogParser, ParseContext, ParseError, Reroute

# Column positions (AWS documentation, Network Load Balancers, "Access log entries").
_TYPE, _VERSION, _TIME, _ELB, _LISTENER, _CLIENT, _DESTINATION = 0, 1, 2, 3, 4, 5, 6
_CONNECTION_TIME, _HANDSHAKE_TIME, _RECEIVED, _SENT, _ALERT, _CERT_ARN, _CERT_SERIAL = 7, 8, 9, 10, 11, 12, 13
_CIPHER, _PROTOCOL, _NAMED_GROUP, _DOMAIN = 14, 15, 16, 17
_ALPN_FE, _ALPN_BE, _ALPN_CLIENT, _CREATED = 18, 19, 20, 21
_MIN_FIELDS = 18
"""type .. domain_name: the columns NLB access logs have had since launch."""
_KNOWN_COLUMNS = 22

_SNIFF = re.compile(r"tls \d+\.\d+ \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z? net/\S+ \S+ \S+:\d+ ")


_TIMES: dict[str, str] = {}
"""Second-precision stamps repeat across the lines of a busy load balancer: convert each one once."""


def _time(value: str, name: str) -> str:
    out = _TIMES.get(value)
    if out is not None:
        return out
    try:
        out = iso_to_utc_ms(value + "Z" if len(value) == 19 else value)
    except ValueError:
        raise ParseError(f"NLB field {name}: not an ISO 8601 timestamp: {value!r}") from None
    if len(_TIMES) >= 4096:
        _TIMES.clear()
    _TIMES[value] = out
    return out


def _int(value: str, name: str) -> int | float:
    try:
        return int(value)
    except ValueError:
        pass
    try:
        return float(value)
    except ValueError:
        raise ParseError(f"NLB field {name}: not a number: {value!r}") from None


class NlbParser(LogParser):
    """Stateless: every NLB line carries all of its columns."""

    log_type: ClassVar[str] = "nlb"
    framing = "lines"
    fields: ClassVar[dict[str, FieldType]] = {
        "@timestamp": "date",
        "event.start": "date",
        "event.end": "date",
        "source.ip": "ip",
        "source.address": "keyword",
        "source.port": "long",
        "source.bytes": "long",
        "destination.bytes": "long",
        "destination.domain": "keyword",
        "tls.cipher": "keyword",
        "tls.version": "keyword",
        "tls.version_protocol": "keyword",
        "tls.curve": "keyword",
        "tls.next_protocol": "keyword",
        "cloud.account.id": "keyword",
        "cloud.region": "keyword",
        "aws.elb.name": "keyword",
        "aws.elb.type": "keyword",
        "aws.elb.version": "keyword",
        "aws.elb.protocol": "keyword",
        "aws.elb.listener": "keyword",
        "aws.elb.backend.ip": "ip",
        "aws.elb.backend.port": "keyword",
        "aws.elb.connection_time.ms": "long",
        "aws.elb.tls_handshake_time.ms": "long",
        "aws.elb.incoming_tls_alert": "keyword",
        "aws.elb.chosen_cert.arn": "keyword",
        "aws.elb.chosen_cert.serial": "keyword",
        "aws.elb.ssl_cipher": "keyword",
        "aws.elb.ssl_protocol": "keyword",
        "aws.elb.tls_named_group": "keyword",
        "aws.elb.alpn_fe_protocol": "keyword",
        "aws.elb.alpn_be_protocol": "keyword",
        "aws.elb.alpn_client_preference_list": "keyword",
        "aws.elb.tls_connection_creation_time": "date",
        "aws.elb.extra_fields": "keyword",
    }
    example = (
        "tls 2.0 2020-04-01T08:51:42 net/my-network-loadbalancer/c6e77e28c25b2234 g3d4b5e8bb8464cd "
        "72.21.218.154:51341 172.100.100.185:443 5 2 98 246 - "
        "arn:aws:acm:us-east-2:671290407336:certificate/2a108f19-aded-46b0-8493-c63eb1ef4a99 - ECDHE-RSA-AES128-SHA "
        'tlsv12 - my-network-loadbalancer-c6e77e28c25b2234.elb.us-east-2.amazonaws.com h2 h2 "h2","http/1.1"'
    )
    routing = (
        "S3 key `AWSLogs/<account>/elasticloadbalancing/<region>/YYYY/MM/DD/<account>_elasticloadbalancing_<region>_"
        "net.<lb>...` (`_net.` in the file name); content: a line starting `tls <version> <ISO time> net/...`."
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
        t = line.split()
        n = len(t)
        if n == 0:
            return None
        if n < _MIN_FIELDS or t[_TYPE] != "tls" or not t[_ELB].startswith("net/"):
            kind = line_kind(t)
            if kind == "alb" or kind == "alb_connection":
                raise Reroute("alb")
            if kind == "elb":
                raise Reroute("elb")
            if n < _MIN_FIELDS:
                raise ParseError(f"NLB line has {n} fields, at least {_MIN_FIELDS} expected")
            raise ParseError(f"not an NLB access log line: expected `tls <version> <time> net/...`, got {line[:60]!r}")

        timestamp = _time(t[_TIME], "time")
        elb: dict[str, Any] = {
            "type": "tls",
            "version": t[_VERSION],
            "name": t[_ELB],
            "listener": t[_LISTENER],
            "protocol": "tcp",
        }
        event: dict[str, Any] = {"kind": "event", "category": ["network"], "end": timestamp}
        doc: dict[str, Any] = {"@timestamp": timestamp, "event": event, "aws": {"elb": elb}}

        host, port = split_host_port(t[_CLIENT])
        if host:
            source: dict[str, Any] = {"address": host}
            if is_ip(host):
                source["ip"] = host
            if port.isdigit():
                source["port"] = int(port)
            doc["source"] = source
        else:
            source = doc["source"] = {}
        if (value := t[_DESTINATION]) != "-":
            host, port = split_host_port(value)
            backend: dict[str, Any] = {"port": port} if port else {}
            if is_ip(host):
                backend["ip"] = host
            if backend:
                elb["backend"] = backend
        if (value := t[_CONNECTION_TIME]) != "-":
            elb["connection_time"] = {"ms": _int(value, "connection_time")}
        if (value := t[_HANDSHAKE_TIME]) != "-":
            elb["tls_handshake_time"] = {"ms": _int(value, "tls_handshake_time")}
        if (value := t[_RECEIVED]) != "-":
            source["bytes"] = _int(value, "received_bytes")
        if (value := t[_SENT]) != "-":
            doc["destination"] = {"bytes": _int(value, "sent_bytes")}
        if not source:
            del doc["source"]
        if (value := t[_ALERT]) != "-":
            elb["incoming_tls_alert"] = value
        account, region = self._account, self._region
        if (value := t[_CERT_ARN]) != "-":
            elb["chosen_cert"] = {"arn": value}
            if not (account and region):
                arn = value.split(":", 5)
                if len(arn) == 6 and arn[4].isdigit():
                    region = region or arn[3]
                    account = account or arn[4]
        if (value := t[_CERT_SERIAL]) != "-":
            elb.setdefault("chosen_cert", {})["serial"] = value
        tls: dict[str, Any] = {}
        if (value := t[_CIPHER]) != "-":
            elb["ssl_cipher"] = tls["cipher"] = value
        if (value := t[_PROTOCOL]) != "-":
            elb["ssl_protocol"] = value
            parsed = tls_version(value)
            if parsed is not None:
                tls["version_protocol"], tls["version"] = parsed
        if (value := t[_NAMED_GROUP]) != "-":
            elb["tls_named_group"] = tls["curve"] = value
        if (value := t[_DOMAIN]) != "-":
            doc.setdefault("destination", {})["domain"] = value
        if n > _ALPN_FE:
            self._tail(t, n, elb, tls, event)
        if tls:
            doc["tls"] = tls
        doc["cloud"] = aws_cloud(account, region)
        if self.ctx.keep_original:
            event["original"] = line
        return doc

    @staticmethod
    def _tail(t: list[str], n: int, elb: dict[str, Any], tls: dict[str, Any], event: dict[str, Any]) -> None:
        """Columns added after launch (ALPN in 2020, connection creation time in 2024, anything newer)."""
        if (value := t[_ALPN_FE]) != "-":
            elb["alpn_fe_protocol"] = tls["next_protocol"] = value
        if n > _ALPN_BE and (value := t[_ALPN_BE]) != "-":
            elb["alpn_be_protocol"] = value
        if n > _ALPN_CLIENT and (value := t[_ALPN_CLIENT]) != "-":
            # `"h2","http/1.1"`: quoted, comma-separated; some shippers escape the quotes (`\"h2\"`)
            names = [name.strip('\\"') for name in value.split(",")]
            elb["alpn_client_preference_list"] = [name for name in names if name]
        if n > _CREATED and (value := t[_CREATED]) != "-":
            created = _time(value, "tls_connection_creation_time")
            elb["tls_connection_creation_time"] = event["start"] = created
        if n > _KNOWN_COLUMNS:
            elb["extra_fields"] = t[_KNOWN_COLUMNS:]


PARSER = NlbParser
