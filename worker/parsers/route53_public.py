"""Route 53 public DNS query log lines -> ECS, with the field names Elastic's `aws.route53_public_logs` uses.

A line is ten space-separated columns (Route 53 developer guide, "Public DNS query logging"):

    1.0 2017-12-13T08:16:02.130Z Z123412341234 example.com A NOERROR UDP FRA6 192.168.1.1 -

log format version, query time, hosted zone id, query name, query type, response code, transport protocol, edge
location, resolver IP, EDNS client subnet (`-` when the resolver sent none). Route 53 only delivers these to
CloudWatch Logs (a group in us-east-1, conventionally `/aws/route53/<zone name>`), so they reach us through a
subscription or an export; the log group and stream are kept under `aws.cloudwatch.*` when the stream says.

Mapping, as Elastic's pipeline: `dns.question.name/type`, `dns.response_code`, `network.transport` lowercased
with its IANA number, `network.protocol: dns`, `network.type` from the resolver address, `source.address` /
`source.ip` = the resolver (not the end client: that one is only known as the EDNS subnet),
`aws.route53.hosted_zone_id`, `edge_location`, `edns_client_subnet`, `event.outcome` success only for NOERROR,
`related.ip` / `related.hosts`. We also keep the log format version (`aws.route53.version`), which Elastic drops.
Not done: `dns.question.registered_domain` / `top_level_domain` / `subdomain` need the public suffix list
(Elastic's `registered_domain` processor), which this project does not ship; guessing from the last label would
be wrong for `co.uk`-style suffixes. Columns after the tenth (format drift) are kept verbatim in
`aws.route53.extra_fields`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from worker.parsers._aws import cloud_builder, cloudwatch_origin
from worker.parsers._fields import IP_SEEN, is_ip, iso_to_utc_ms
from worker.parsers.base import FieldType, LogParser, ParseContext, ParseError, Reroute

_COLUMNS = 10
_TRANSPORTS: dict[str, tuple[str, str | None]] = {
    "UDP": ("udp", "17"),
    "TCP": ("tcp", "6"),
    "udp": ("udp", "17"),
    "tcp": ("tcp", "6"),
}


_MINUTES_OK: dict[str, bool] = {}
"""`YYYY-MM-DDTHH:MM` prefixes already validated: a stream repeats each minute on many lines."""


def _timestamp(value: str) -> str:
    """Route 53 writes `2017-12-13T08:16:02.130Z`, already our form: validate its minute once (a dict lookup
    afterwards) and its seconds by slicing. Anything else goes through `iso_to_utc_ms`."""
    if (
        len(value) == 24
        and value.isascii()
        and value[16] == ":"
        and value[19] == "."
        and value[23] == "Z"
        and value[17:19].isdigit()
        and value[17:19] <= "59"
        and value[20:23].isdigit()
    ):
        minute = value[:16]
        if minute not in _MINUTES_OK:
            iso_to_utc_ms(minute + ":00Z")  # raises ValueError when it is not a valid UTC minute
            if len(_MINUTES_OK) >= 4096:
                _MINUTES_OK.clear()
            _MINUTES_OK[minute] = True
        return value
    return iso_to_utc_ms(value)


def _transport(value: str) -> tuple[str, str | None]:
    known = _TRANSPORTS.get(value)
    return known if known is not None else (value.lower(), None)


def _looks_like_line(line: str) -> bool:
    """`<version> <ISO time> Z<zone id> <7 more columns>`: cheap, and strict enough for content sniffing."""
    parts = line.split()
    if len(parts) < _COLUMNS:
        return False
    version, stamp, zone = parts[0], parts[1], parts[2]
    major, dot, minor = version.partition(".")
    if not (dot and major.isdigit() and minor.isdigit()):
        return False
    if len(stamp) < 20 or stamp[10] != "T" or stamp[4] != "-" or not stamp[:4].isdigit():
        return False
    try:
        iso_to_utc_ms(stamp)
    except ValueError:
        return False
    return len(zone) > 1 and zone[0] == "Z" and zone.isalnum() and zone.isupper()


class Route53PublicParser(LogParser):
    """Stateless: every line carries all of its columns."""

    log_type: ClassVar[str] = "route53_public"
    framing = "lines"
    fields: ClassVar[dict[str, FieldType]] = {
        "@timestamp": "date",
        "event.kind": "keyword",
        "event.category": "keyword",
        "event.type": "keyword",
        "event.outcome": "keyword",
        "cloud.provider": "keyword",
        "cloud.account.id": "keyword",
        "cloud.region": "keyword",
        "dns.question.name": "keyword",
        "dns.question.type": "keyword",
        "dns.response_code": "keyword",
        "network.transport": "keyword",
        "network.iana_number": "keyword",
        "network.protocol": "keyword",
        "network.type": "keyword",
        "source.address": "keyword",
        "source.ip": "ip",
        "related.ip": "ip",
        "related.hosts": "keyword",
        "aws.route53.version": "keyword",
        "aws.route53.hosted_zone_id": "keyword",
        "aws.route53.edge_location": "keyword",
        "aws.route53.edns_client_subnet": "keyword",
        "aws.route53.extra_fields": "keyword",
        "aws.cloudwatch.log_group": "keyword",
        "aws.cloudwatch.log_stream": "keyword",
    }
    example = "1.0 2017-12-13T08:15:50.235Z Z123412341234 example.com AAAA NOERROR TCP IAD12 55.36.5.7 192.168.222.0/24"
    routing = (
        "No S3 key (Route 53 public query logs go only to CloudWatch Logs): CloudWatch Logs groups named "
        "`/aws/route53/<zone>` or set in `log_groups`; content: lines `<version> <ISO time> Z<hosted zone id> ...`."
    )

    @classmethod
    def sniff(cls, head: str) -> bool:
        line = head.lstrip().split("\n", 1)[0].rstrip("\r")
        return _looks_like_line(line)

    def __init__(self, ctx: ParseContext) -> None:
        super().__init__(ctx)
        self._cloud = cloud_builder(ctx.account_id, ctx.region)
        self._cloudwatch = cloudwatch_origin(ctx)
        self._keep = ctx.keep_original

    def parse(self, record: Any) -> dict[str, Any] | None:
        line: str = record
        t = line.split()
        n = len(t)
        if n < _COLUMNS:
            if n == 0:
                return None
            if line[:1] == "{" and '"query_name"' in line:
                raise Reroute("route53_resolver")
            raise ParseError(f"Route 53 query log line has {n} fields, {_COLUMNS} expected")
        if not t[0][:1].isdigit():
            raise ParseError(f"not a Route 53 query log line: first field {t[0][:40]!r} is not a log format version")
        try:
            timestamp = _timestamp(t[1])
        except ValueError as exc:
            raise ParseError(f"Route 53 query log time: {exc}") from None

        route53: dict[str, Any] = {"version": t[0]}
        event: dict[str, Any] = {"kind": "event", "category": ["network"], "type": ["protocol"]}
        network: dict[str, Any] = {"protocol": "dns"}
        doc: dict[str, Any] = {"@timestamp": timestamp, "event": event, "network": network, "aws": {"route53": route53}}
        related: dict[str, Any] = {}

        if (value := t[2]) != "-":
            route53["hosted_zone_id"] = value
        question: dict[str, Any] = {}
        dns: dict[str, Any] = {"question": question}
        if (value := t[3]) != "-":
            question["name"] = value
            related["hosts"] = [value]
        if (value := t[4]) != "-":
            question["type"] = value
        if (value := t[5]) != "-":
            dns["response_code"] = value
            event["outcome"] = "success" if value == "NOERROR" else "failure"
        if not question:
            del dns["question"]
        if dns:
            doc["dns"] = dns
        if (value := t[6]) != "-":
            network["transport"], iana = _transport(value)
            if iana is not None:
                network["iana_number"] = iana
        if (value := t[7]) != "-":
            route53["edge_location"] = value
        if (value := t[8]) != "-":
            source: dict[str, Any] = {"address": value}
            if IP_SEEN.get(value) or is_ip(value):  # a zone sees the same few thousand resolvers over and over
                source["ip"] = value
                network["type"] = "ipv6" if ":" in value else "ipv4"
                related["ip"] = [value]
            doc["source"] = source
        if (value := t[9]) != "-":
            route53["edns_client_subnet"] = value
        if n > _COLUMNS:
            route53["extra_fields"] = t[_COLUMNS:]
        if related:
            doc["related"] = related

        doc["cloud"] = self._cloud()
        if self._cloudwatch:
            doc["aws"]["cloudwatch"] = self._cloudwatch.copy()
        if self._keep:
            event["original"] = line
        return doc


PARSER = Route53PublicParser
