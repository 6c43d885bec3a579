"""Golden tests for Route 53 public DNS query log lines, on real samples from the shared corpus."""

from __future__ import annotations

from typing import Any

import pytest

from tests.corpus import CORPUS, read_lines, read_text
from worker.parsers import ParseContext, ParseError, Reroute, get_parser
from worker.parsers._fields import flatten
from worker.parsers.route53_public import Route53PublicParser

AWSDOCS = "route53_public/awsdocs_query-logs_example.log"
ELASTIC = "route53_public/elastic-integrations_test-route53.log"
FILES = (AWSDOCS, ELASTIC)


def parse(line: str, **ctx: Any) -> dict[str, Any]:
    doc = Route53PublicParser(ParseContext(**ctx)).parse(line)
    assert doc is not None
    return doc


def test_registry() -> None:
    cls = get_parser("route53_public")
    assert cls is Route53PublicParser
    assert cls.framing == "lines"
    assert cls.fields["source.ip"] == "ip"
    assert cls.fields["related.ip"] == "ip"
    assert cls.fields["@timestamp"] == "date"


def test_first_awsdocs_line_whole_document() -> None:
    assert parse(read_lines(AWSDOCS)[0]) == {
        "@timestamp": "2017-12-13T08:16:02.130Z",
        "event": {"kind": "event", "category": ["network"], "type": ["protocol"], "outcome": "success"},
        "network": {"protocol": "dns", "transport": "udp", "iana_number": "17", "type": "ipv4"},
        "aws": {"route53": {"version": "1.0", "hosted_zone_id": "Z123412341234", "edge_location": "Region"}},
        "dns": {"question": {"name": "example.com", "type": "A"}, "response_code": "NOERROR"},
        "source": {"address": "192.168.1.1", "ip": "192.168.1.1"},
        "related": {"hosts": ["example.com"], "ip": ["192.168.1.1"]},
        "cloud": {"provider": "aws"},
    }


def test_tcp_with_edns_client_subnet() -> None:
    doc = parse(read_lines(ELASTIC)[1])
    assert doc["@timestamp"] == "2017-12-13T08:15:50.235Z"
    assert doc["network"] == {"protocol": "dns", "transport": "tcp", "iana_number": "6", "type": "ipv4"}
    assert doc["aws"]["route53"] == {
        "version": "1.0",
        "hosted_zone_id": "Z123412341234",
        "edge_location": "IAD12",
        "edns_client_subnet": "192.168.222.0/24",
    }
    assert doc["dns"]["question"] == {"name": "example.com", "type": "AAAA"}
    assert doc["source"] == {"address": "55.36.5.7", "ip": "55.36.5.7"}


def test_ipv6_resolver_and_subnet() -> None:
    doc = parse(read_lines(ELASTIC)[2])
    assert doc["source"] == {"address": "2001:db8::1234", "ip": "2001:db8::1234"}
    assert doc["network"]["type"] == "ipv6"
    assert doc["aws"]["route53"]["edns_client_subnet"] == "2001:db8:abcd::/48"
    assert doc["aws"]["route53"]["edge_location"] == "FRA6"
    assert doc["dns"]["question"]["type"] == "ANY"
    assert doc["related"] == {"hosts": ["example.com"], "ip": ["2001:db8::1234"]}


def test_nxdomain_is_a_failure() -> None:
    doc = parse(read_lines(AWSDOCS)[3])
    assert doc["dns"] == {"question": {"name": "bad.example.com", "type": "A"}, "response_code": "NXDOMAIN"}
    assert doc["event"]["outcome"] == "failure"
    assert doc["@timestamp"] == "2017-12-13T08:15:50.342Z"


def test_absent_subnet_is_left_out_and_no_dash_anywhere() -> None:
    for relative in FILES:
        for line in read_lines(relative):
            doc = parse(line)
            for key, value in flatten(doc).items():
                assert value != "-", key
                if isinstance(value, list):
                    assert "-" not in value, key
            if line.endswith(" -"):
                assert "edns_client_subnet" not in doc["aws"]["route53"]


def test_newer_edge_location_forms_and_odd_names() -> None:
    line = "1.0 2017-12-13T08:17:05.744Z Z123412341234 _spf.example.com SPF NOERROR UDP DEN50-C1 89.160.20.112 -"
    doc = parse(line)
    assert doc["aws"]["route53"]["edge_location"] == "DEN50-C1"
    assert doc["dns"]["question"] == {"name": "_spf.example.com", "type": "SPF"}


def test_non_ip_resolver_is_an_address_only() -> None:
    doc = parse("1.0 2017-12-13T08:16:02.130Z Z1 example.com A NOERROR UDP FRA6 not-an-ip -")
    assert doc["source"] == {"address": "not-an-ip"}
    assert "type" not in doc["network"]
    assert "ip" not in doc.get("related", {})


def test_format_drift_extra_columns_are_kept() -> None:
    doc = parse(read_lines(AWSDOCS)[0] + " newcol 42")
    assert doc["aws"]["route53"]["extra_fields"] == ["newcol", "42"]
    assert doc["source"]["ip"] == "192.168.1.1"


def test_tabs_and_doubled_spaces_still_split() -> None:
    doc = parse("1.0\t2017-12-13T08:16:02.130Z  Z123412341234 example.com A NOERROR UDP FRA6 192.0.2.1 -")
    assert doc["aws"]["route53"]["hosted_zone_id"] == "Z123412341234"
    assert doc["source"]["ip"] == "192.0.2.1"


def test_other_timestamp_forms() -> None:
    doc = parse("1.0 2017-12-13T08:16:02Z Z1 example.com A NOERROR UDP FRA6 192.0.2.1 -")
    assert doc["@timestamp"] == "2017-12-13T08:16:02.000Z"
    doc = parse("1.0 2017-12-13T08:16:02.123456Z Z1 example.com A NOERROR UDP FRA6 192.0.2.1 -")
    assert doc["@timestamp"] == "2017-12-13T08:16:02.123Z"


def test_context_fields() -> None:
    doc = parse(
        read_lines(AWSDOCS)[0],
        account_id="123456789012",
        region="us-east-1",
        log_group="/aws/route53/example.com",
        log_stream="Z123412341234/FRA6",
    )
    assert doc["cloud"] == {"provider": "aws", "account": {"id": "123456789012"}, "region": "us-east-1"}
    assert doc["aws"]["cloudwatch"] == {"log_group": "/aws/route53/example.com", "log_stream": "Z123412341234/FRA6"}


def test_event_original_only_with_keep_original() -> None:
    line = read_lines(ELASTIC)[0]
    assert "original" not in parse(line)["event"]
    assert parse(line, keep_original=True)["event"]["original"] == line


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("1.0 2017-12-13T08:16:02.130Z Z1 example.com A NOERROR UDP", "has 7 fields, 10 expected"),
        ("1.0 yesterday Z1 example.com A NOERROR UDP FRA6 192.0.2.1 -", "time: not an ISO 8601 timestamp"),
        ("1.0 2017-13-13T08:16:02.130Z Z1 example.com A NOERROR UDP FRA6 192.0.2.1 -", "time: not an ISO 8601"),
        ("1.0 2017-12-13T08:61:02.130Z Z1 example.com A NOERROR UDP FRA6 192.0.2.1 -", "time: not an ISO 8601"),
        ("http 2017-12-13T08:16:02.130Z Z1 example.com A NOERROR UDP FRA6 192.0.2.1 -", "not a Route 53 query log"),
    ],
)
def test_malformed_lines(line: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        Route53PublicParser(ParseContext()).parse(line)


def test_resolver_json_is_rerouted() -> None:
    line = read_lines("route53_resolver/awsdocs_resolver-query-logs-example-json.log")[0]
    with pytest.raises(Reroute) as caught:
        Route53PublicParser(ParseContext()).parse(line)
    assert caught.value.log_type == "route53_resolver"


def test_blank_lines_are_not_events() -> None:
    p = Route53PublicParser(ParseContext())
    assert p.parse("") is None
    assert p.parse("   ") is None


def test_no_silent_drops() -> None:
    """Every corpus line is a document (there are no header or comment lines in this format)."""
    parsed = 0
    for relative in FILES:
        p = Route53PublicParser(ParseContext())
        lines = read_lines(relative)
        docs = [p.parse(line) for line in lines]
        assert all(isinstance(doc, dict) for doc in docs), relative
        parsed += len(docs)
    assert parsed == 10


def test_sniff() -> None:
    for relative in FILES:
        assert Route53PublicParser.sniff(read_text(relative)[:65536]), relative
    others = [
        p for p in CORPUS.rglob("*")
        if p.is_file() and p.parent.name not in ("route53_public", "_mappings", "LICENSES")
        and not p.name.endswith("-expected.json")
    ]
    assert len(others) > 20
    for path in others:
        head = read_text(str(path.relative_to(CORPUS)))[:65536]
        assert not Route53PublicParser.sniff(head), path
    assert not Route53PublicParser.sniff("")
    assert not Route53PublicParser.sniff("1.0 2017-12-13T08:16:02.130Z z123 example.com A NOERROR UDP FRA6 1.2.3.4 -")
    assert not Route53PublicParser.sniff("1.0 2017-12-13T08:16:02.130Z Z123 example.com A NOERROR UDP FRA6")


def test_every_emitted_typed_field_is_declared() -> None:
    declared = Route53PublicParser.fields
    for relative in FILES:
        for line in read_lines(relative):
            doc = parse(line, account_id="123456789012", region="us-east-1", log_group="g", log_stream="s")
            for key in flatten(doc):
                assert key in declared, key
