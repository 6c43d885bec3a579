"""Golden tests for Route 53 Resolver query logs (and DNS Firewall matches), on real corpus samples."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.corpus import CORPUS, read_json_records, read_lines, read_text
from worker.decoding import JsonRecordsFramer
from worker.parsers import ParseContext, ParseError, Reroute, get_parser
from worker.parsers.route53_resolver import Route53ResolverParser, ptr_address

ELASTIC = "route53_resolver/elastic-integrations_test-route53.log"
AWSDOCS = "route53_resolver/awsdocs_resolver-query-logs-example-json.log"


def parse(record: dict[str, Any], **ctx: Any) -> dict[str, Any]:
    doc = Route53ResolverParser(ParseContext(**ctx)).parse(record)
    assert doc is not None
    return doc


def leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    else:
        yield value


def test_registry() -> None:
    cls = get_parser("route53_resolver")
    assert cls is Route53ResolverParser
    assert cls.framing == "json_records"
    assert cls.fields["source.ip"] == "ip"
    assert cls.fields["related.ip"] == "ip"
    assert parse(orjson.loads(cls.example))["dns"]["question"]["name"] == "abcd.example.com"


def test_nxdomain_query() -> None:
    doc = parse(read_json_records(ELASTIC)[0])
    assert doc == {
        "@timestamp": "2021-12-11T22:46:23.000Z",
        "event": {"kind": "event", "category": ["network"], "type": ["protocol"], "outcome": "failure"},
        "cloud": {"provider": "aws", "account": {"id": "626345947581"}, "region": "us-east-1"},
        "network": {"protocol": "dns", "type": "ipv4", "transport": "udp", "iana_number": "17"},
        "dns": {"question": {"name": "does-not-exist.abc.com", "type": "A", "class": "IN"},
                "response_code": "NXDOMAIN"},
        "source": {"address": "172.31.86.159", "ip": "172.31.86.159", "port": 48701},
        "aws": {"vpc_id": "vpc-01e31a7c", "route53": {"version": "1.100000"}},
        "related": {"ip": ["172.31.86.159"], "hosts": ["does-not-exist.abc.com"]},
    }


def test_ptr_query() -> None:
    doc = parse(read_json_records(ELASTIC)[1])
    assert doc["event"]["outcome"] == "success"
    assert doc["dns"]["answers"] == [{"class": "IN", "type": "PTR", "data": "ip-172-31-86-159.ec2.internal"}]
    # a PTR query: the address it asks about is related, the name is not a host
    assert doc["related"] == {"ip": ["172.31.86.159"], "hosts": ["ip-172-31-86-159.ec2.internal"]}


def test_cname_and_address_answers() -> None:
    record = next(r for r in read_json_records(ELASTIC) if r["query_name"] == "abcd.example.com.")
    doc = parse(record)
    assert doc["dns"]["answers"] == [
        {"class": "IN", "type": "CNAME", "data": "test.example.com", "name": "test.example.com"},
        {"class": "IN", "type": "A", "data": "1.128.3.4"},
    ]
    assert doc["related"] == {"ip": ["172.31.86.159", "1.128.3.4"], "hosts": ["test.example.com", "abcd.example.com"]}
    assert doc["aws"]["instance_id"] == "i-079c44232510ca8ff"
    assert doc["cloud"]["instance"] == {"id": "i-079c44232510ca8ff"}


def test_dns_firewall_block() -> None:
    record = next(r for r in read_json_records(ELASTIC) if "firewall_rule_action" in r)
    doc = parse(record)
    assert doc["@timestamp"] == "2021-02-04T17:51:55.000Z"
    assert doc["aws"]["route53"]["firewall"] == {
        "action": "BLOCK",
        "rule_group": {"id": "rslvr-frg-01234567890abcdef"},
        "domain_list": {"id": "rslvr-fdl-01234567890abcdef"},
    }
    assert doc["aws"]["vpc_id"] == "vpc-7example"
    assert doc["cloud"]["account"] == {"id": "111122223333"}
    assert doc["source"] == {"address": "81.2.69.143", "ip": "81.2.69.143", "port": 56067}
    assert doc["related"]["ip"] == ["81.2.69.143", "175.16.199.15"]
    aws_doc = parse(read_json_records(AWSDOCS)[0])
    assert aws_doc["dns"]["question"] == {"name": "15.3.4.32.in-addr.arpa", "type": "PTR", "class": "IN"}
    assert aws_doc["related"]["ip"] == ["4.5.64.102", "32.4.3.15"]
    assert aws_doc["aws"]["route53"]["firewall"]["action"] == "BLOCK"


def test_ipv6_ptr_and_helper() -> None:
    record = read_json_records(ELASTIC)[-1]
    doc = parse(record)
    assert doc["dns"]["question"]["name"].endswith(".ip6.arpa")  # written without the root dot
    assert doc["related"]["ip"] == ["172.31.86.159", "2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6"]
    assert ptr_address("1.0.0.127.in-addr.arpa") == "127.0.0.1"
    assert ptr_address("0.0.127.in-addr.arpa") is None  # a zone, not an address
    assert ptr_address("300.0.0.1.in-addr.arpa") is None
    assert ptr_address("1.0.ip6.arpa") is None
    assert ptr_address("example.com") is None


def test_resolver_endpoint_ids_tcp_ipv6_and_drift() -> None:
    record = dict(
        read_json_records(ELASTIC)[0],
        srcaddr="2001:db8::7",
        srcport=53,
        transport="TCP",
        srcids={"resolver_endpoint": "rslvr-in-0123456789abcdef", "resolver_network_interface": "rni-0123"},
        firewall_protection="DGA",
        query_timestamp="2021-12-11T22:46:23.123456Z",
        new_scalar="x",
        new_object={"a": 1},
    )
    doc = parse(record)
    assert doc["@timestamp"] == "2021-12-11T22:46:23.123Z"
    assert doc["network"] == {"protocol": "dns", "type": "ipv6", "transport": "tcp", "iana_number": "6"}
    assert doc["source"] == {"address": "2001:db8::7", "ip": "2001:db8::7", "port": 53}
    route53 = doc["aws"]["route53"]
    assert route53["srcids"] == {"resolver_endpoint": "rslvr-in-0123456789abcdef",
                                 "resolver_network_interface": "rni-0123"}
    assert route53["firewall"] == {"protection": "DGA"}
    assert route53["new_scalar"] == "x"
    assert route53["unmapped"] == {"new_object": {"a": 1}}
    assert "instance_id" not in doc["aws"] and "instance" not in doc["cloud"]


def test_context_fills_missing_account_and_region() -> None:
    record = {k: v for k, v in read_json_records(ELASTIC)[0].items() if k not in ("account_id", "region")}
    doc = parse(record, account_id="123456789012", region="eu-west-1")
    assert doc["cloud"] == {"provider": "aws", "account": {"id": "123456789012"}, "region": "eu-west-1"}


def test_malformed_records() -> None:
    parser = Route53ResolverParser(ParseContext())
    good = read_json_records(ELASTIC)[0]
    with pytest.raises(ParseError, match="JSON list, not an object"):
        parser.parse([good])
    with pytest.raises(ParseError, match="no query_timestamp"):
        parser.parse({k: v for k, v in good.items() if k != "query_timestamp"})
    with pytest.raises(ParseError, match="query_timestamp: not an ISO 8601"):
        parser.parse(dict(good, query_timestamp="yesterday"))
    with pytest.raises(ParseError, match="not a Route 53 Resolver query-log record"):
        parser.parse({"hello": "world"})
    odd = parser.parse(dict(good, srcaddr="-", srcport="-", rcode="SERVFAIL", answers=[None, {"Rdata": "-"}]))
    assert odd is not None
    assert "source" not in odd and "dns" in odd and "answers" not in odd["dns"]
    assert odd["event"]["outcome"] == "failure"


def test_sibling_records_are_rerouted() -> None:
    waf = read_json_records("waf/elastic-integrations_test-waf.log")[0]
    with pytest.raises(Reroute) as exc:
        parse(waf)
    assert exc.value.log_type == "waf"
    firewall = read_json_records("network_firewall/elastic-integrations_test-firewall.log")[1]
    with pytest.raises(Reroute) as exc:
        parse(firewall)
    assert exc.value.log_type == "network_firewall"


def test_event_original_only_with_keep_original() -> None:
    record = read_json_records(ELASTIC)[0]
    assert "original" not in parse(record)["event"]
    assert parse(record, keep_original=True)["event"]["original"] == read_lines(ELASTIC)[0]


def test_sniff() -> None:
    assert Route53ResolverParser.sniff(read_text(ELASTIC)[:65536])
    assert Route53ResolverParser.sniff(read_text(AWSDOCS)[:65536])
    others = (
        "waf/elastic-integrations_test-waf.log",
        "network_firewall/elastic-integrations_test-firewall.log",
        "cloudtrail/elastic-integrations_test-console-login-json.log",
        "vpcflow/elastic-integrations_test-v5-all-fields.log",
    )
    for name in others:
        assert not Route53ResolverParser.sniff(read_text(name)[:65536]), name
    for path in sorted((CORPUS / "route53_public").iterdir()):
        assert not Route53ResolverParser.sniff(read_text(f"route53_public/{path.name}")[:65536]), path.name


def _frame(path: Path) -> tuple[list[Any], list[Any]]:
    framer = JsonRecordsFramer()
    framer.feed(path.read_bytes())
    return framer.finish()


def test_no_silent_drops_and_no_dash() -> None:
    counts = {}
    for path in sorted((CORPUS / "route53_resolver").iterdir()):
        records, errors = _frame(path)
        assert not errors, errors
        parser = Route53ResolverParser(ParseContext(keep_original=True))
        docs = [parser.parse(record) for _, record in records]
        for doc in docs:
            assert isinstance(doc, dict)
            assert "-" not in list(leaves(doc)), doc
            assert doc["dns"]["question"]["name"][-1] != "."
        counts[path.name] = len(docs)
    assert counts == {"awsdocs_resolver-query-logs-example-json.log": 1, "elastic-integrations_test-route53.log": 34}
