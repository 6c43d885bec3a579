"""Route 53 Resolver query logs (VPC DNS queries, DNS Firewall matches) -> ECS, as Elastic's
`aws.route53_resolver_logs` pipeline names them.

One JSON object per query: `query_name` / `query_type` / `query_class` -> `dns.question.*` (the trailing root
dot removed), `rcode` -> `dns.response_code` and `event.outcome` (`success` only for NOERROR), `answers` ->
`dns.answers` (`data`, `type`, `class`, and `name` for CNAMEs, trailing dots removed), `srcaddr` / `srcport` ->
`source.*`, `transport` -> `network.transport` with its IANA number, `account_id` / `region` -> `cloud.*`,
`vpc_id` -> `aws.vpc_id`, `srcids.instance` -> `aws.instance_id` and `cloud.instance.id`, DNS Firewall's
`firewall_rule_action` / `firewall_rule_group_id` / `firewall_domain_list_id` -> `aws.route53.firewall.action` /
`.rule_group.id` / `.domain_list.id` (and `firewall_protection` -> `aws.route53.firewall.protection`).
`related.ip` gets the source, A/AAAA answers and the address a PTR query asks about; `related.hosts` the queried
name (not for PTR queries) and CNAME/PTR answers, as Elastic does.

Not done: Elastic's `registered_domain` split (`dns.question.registered_domain`, `subdomain`,
`top_level_domain`) needs the public suffix list, which this project does not ship; a naive last-two-labels
split would be wrong for `co.uk`-style suffixes, so it is left out rather than guessed.

Other identifiers AWS adds over time are kept: `srcids.resolver_endpoint` / `resolver_network_interface` (and
any new `srcids` key) under `aws.route53.srcids.*`, unknown scalars as `aws.route53.<key>`, unknown objects and
lists in `aws.route53.unmapped` (flattened).
"""

from __future__ import annotations

import ipaddress
from typing import Any, ClassVar

from worker.parsers._fields import is_ip, iso_to_utc_ms
from worker.parsers._json_records import json_head, json_original, keep_unmapped, present, reroute_sibling
from worker.parsers.base import FieldType, LogParser, ParseError

_TRANSPORT_NUMBERS = {"tcp": "6", "udp": "17"}
_HANDLED = frozenset((
    "version", "account_id", "region", "vpc_id", "query_timestamp", "query_name", "query_type", "query_class",
    "rcode", "answers", "srcaddr", "srcport", "transport", "srcids", "firewall_rule_action",
    "firewall_rule_group_id", "firewall_domain_list_id", "firewall_protection",
))
_ADDRESS_ANSWERS = frozenset(("A", "AAAA"))
_NAME_ANSWERS = frozenset(("CNAME", "PTR"))


def _strip_dot(value: Any) -> Any:
    if isinstance(value, str) and len(value) > 1 and value[-1] == ".":
        return value[:-1]
    return value


def ptr_address(name: str) -> str | None:
    """`15.3.4.32.in-addr.arpa` -> `32.4.3.15`; a full `ip6.arpa` nibble name -> the IPv6 address; else None."""
    if name.endswith(".in-addr.arpa"):
        labels = name[: -len(".in-addr.arpa")].split(".")
        if len(labels) != 4:
            return None
        candidate = ".".join(reversed(labels))
    elif name.endswith(".ip6.arpa"):
        nibbles = name[: -len(".ip6.arpa")].split(".")
        if len(nibbles) != 32 or any(len(n) != 1 for n in nibbles):
            return None
        digits = "".join(reversed(nibbles))
        candidate = ":".join(digits[i : i + 4] for i in range(0, 32, 4))
    else:
        return None
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


class Route53ResolverParser(LogParser):
    """Stateless; one Resolver query-log record (a JSON object) at a time."""

    log_type: ClassVar[str] = "route53_resolver"
    framing = "json_records"
    fields: ClassVar[dict[str, FieldType]] = {
        "@timestamp": "date",
        "event.kind": "keyword",
        "event.category": "keyword",
        "event.type": "keyword",
        "event.outcome": "keyword",
        "cloud.provider": "keyword",
        "cloud.account.id": "keyword",
        "cloud.region": "keyword",
        "cloud.instance.id": "keyword",
        "source.address": "keyword",
        "source.ip": "ip",
        "source.port": "long",
        "network.transport": "keyword",
        "network.iana_number": "keyword",
        "network.protocol": "keyword",
        "network.type": "keyword",
        "dns.question.name": "keyword",
        "dns.question.type": "keyword",
        "dns.question.class": "keyword",
        "dns.response_code": "keyword",
        "dns.answers.name": "keyword",
        "dns.answers.data": "keyword",
        "dns.answers.type": "keyword",
        "dns.answers.class": "keyword",
        "related.ip": "ip",
        "related.hosts": "keyword",
        "aws.vpc_id": "keyword",
        "aws.instance_id": "keyword",
        "aws.route53.version": "keyword",
        "aws.route53.firewall.action": "keyword",
        "aws.route53.firewall.rule_group.id": "keyword",
        "aws.route53.firewall.domain_list.id": "keyword",
        "aws.route53.firewall.protection": "keyword",
        "aws.route53.srcids.resolver_endpoint": "keyword",
        "aws.route53.srcids.resolver_network_interface": "keyword",
        "aws.route53.unmapped": "flattened",
    }
    example = (
        '{"version":"1.100000","account_id":"626345947581","region":"us-east-1","vpc_id":"vpc-01e31a7c",'
        '"query_timestamp":"2021-12-11T22:48:33Z","query_name":"abcd.example.com.","query_type":"A",'
        '"query_class":"IN","rcode":"NOERROR","answers":[{"Rdata":"test.example.com.","Type":"CNAME","Class":'
        '"IN"},{"Rdata":"1.128.3.4","Type":"A","Class":"IN"}],"srcaddr":"172.31.86.159","srcport":"52785",'
        '"transport":"UDP","srcids":{"instance":"i-079c44232510ca8ff"}}'
    )
    routing = (
        "S3 key `AWSLogs/<account>/vpcdnsquerylogs/<vpc-id>/...`; CloudWatch Logs groups named in the source's "
        "`log_groups`; content: a JSON object with `query_name` and `srcaddr`."
    )

    @classmethod
    def sniff(cls, head: str) -> bool:
        first = json_head(head)
        return '"query_name"' in first and '"srcaddr"' in first and '"query_timestamp"' in first

    def parse(self, record: Any) -> dict[str, Any] | None:
        if not isinstance(record, dict):
            raise ParseError(f"Resolver query-log record is a JSON {type(record).__name__}, not an object")
        stamp = record.get("query_timestamp")
        if stamp is None and "query_name" not in record:
            reroute_sibling(record, self.log_type)
            raise ParseError("not a Route 53 Resolver query-log record: no query_timestamp and no query_name")
        if not isinstance(stamp, str):
            raise ParseError(f"Resolver query-log record has no query_timestamp (got {stamp!r})")
        try:
            timestamp = iso_to_utc_ms(stamp)
        except ValueError as exc:
            raise ParseError(f"Resolver query_timestamp: {exc}") from None

        event: dict[str, Any] = {"kind": "event", "category": ["network"], "type": ["protocol"]}
        cloud: dict[str, Any] = {"provider": "aws"}
        network: dict[str, Any] = {"protocol": "dns"}
        dns: dict[str, Any] = {}
        aws: dict[str, Any] = {}
        route53: dict[str, Any] = {}
        related_ip: list[str] = []
        related_hosts: list[str] = []
        doc: dict[str, Any] = {"@timestamp": timestamp, "event": event, "cloud": cloud, "network": network,
                               "dns": dns}

        if present(account := record.get("account_id")) or (account := self.ctx.account_id):
            cloud["account"] = {"id": account}
        if present(region := record.get("region")) or (region := self.ctx.region):
            cloud["region"] = region
        if present(value := record.get("vpc_id")):
            aws["vpc_id"] = value
        srcids = record.get("srcids")
        if isinstance(srcids, dict):
            other: dict[str, Any] = {}
            for key, value in srcids.items():
                if not present(value):
                    continue
                if key == "instance":
                    aws["instance_id"] = value
                    cloud["instance"] = {"id": value}
                else:
                    other[key] = value
            if other:
                route53["srcids"] = other
        if present(value := record.get("version")):
            route53["version"] = value

        address = record.get("srcaddr")
        source: dict[str, Any] = {}
        if present(address):
            source["address"] = address
            if isinstance(address, str) and is_ip(address):
                source["ip"] = address
                network["type"] = "ipv6" if ":" in address else "ipv4"
                related_ip.append(address)
        port = record.get("srcport")
        if isinstance(port, int) and not isinstance(port, bool):
            source["port"] = port
        elif isinstance(port, str) and port.isdigit():
            source["port"] = int(port)
        if source:
            doc["source"] = source
        transport = record.get("transport")
        if isinstance(transport, str) and transport:
            transport = transport.lower()
            network["transport"] = transport
            if (number := _TRANSPORT_NUMBERS.get(transport)) is not None:
                network["iana_number"] = number

        question: dict[str, Any] = {}
        name = _strip_dot(record.get("query_name"))
        if present(name):
            question["name"] = name
        qtype = record.get("query_type")
        if present(qtype):
            question["type"] = qtype
        if present(value := record.get("query_class")):
            question["class"] = value
        if question:
            dns["question"] = question
        rcode = record.get("rcode")
        if present(rcode):
            dns["response_code"] = rcode
        event["outcome"] = "success" if rcode == "NOERROR" else "failure"
        answers = record.get("answers")
        if isinstance(answers, list) and answers:
            out = []
            for answer in answers:
                if not isinstance(answer, dict):
                    continue
                item: dict[str, Any] = {}
                if present(value := answer.get("Class")):
                    item["class"] = value
                atype = answer.get("Type")
                if present(atype):
                    item["type"] = atype
                data = _strip_dot(answer.get("Rdata"))
                if present(data):
                    item["data"] = data
                    if atype == "CNAME":
                        item["name"] = data
                    if isinstance(data, str):
                        if atype in _ADDRESS_ANSWERS and is_ip(data):
                            if data not in related_ip:
                                related_ip.append(data)
                        elif atype in _NAME_ANSWERS and data not in related_hosts:
                            related_hosts.append(data)
                if item:
                    out.append(item)
            if out:
                dns["answers"] = out
        if isinstance(name, str) and name:
            if qtype == "PTR":
                if (ip := ptr_address(name)) is not None and ip not in related_ip:
                    related_ip.append(ip)
            elif name not in related_hosts:
                related_hosts.append(name)
        if not dns:
            del doc["dns"]

        firewall: dict[str, Any] = {}
        if present(value := record.get("firewall_rule_action")):
            firewall["action"] = value
        if present(value := record.get("firewall_rule_group_id")):
            firewall["rule_group"] = {"id": value}
        if present(value := record.get("firewall_domain_list_id")):
            firewall["domain_list"] = {"id": value}
        if present(value := record.get("firewall_protection")):
            firewall["protection"] = value
        if firewall:
            route53["firewall"] = firewall

        keep_unmapped(record, _HANDLED, route53)
        if route53:
            aws["route53"] = route53
        if aws:
            doc["aws"] = aws
        related: dict[str, Any] = {}
        if related_ip:
            related["ip"] = related_ip
        if related_hosts:
            related["hosts"] = related_hosts
        if related:
            doc["related"] = related

        if self.ctx.keep_original:
            event["original"] = json_original(record)
        return doc


PARSER = Route53ResolverParser
