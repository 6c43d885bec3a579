"""Golden tests for Network Load Balancer (TLS listener) access logs, on real samples from the shared corpus."""

from __future__ import annotations

from typing import Any

import pytest

from tests.corpus import read_lines
from worker.parsers import ParseContext, ParseError, Reroute, get_parser
from worker.parsers._fields import flatten
from worker.parsers.nlb import NlbParser

AWSDOCS = "elb/awsdocs_nlb_load-balancer-access-logs_examples.log"
MIXED = "elb/elastic-integrations_test-alb.log"
"""Lines 2-5 of Elastic's mixed test file are NLB lines."""
OTHER_TYPES = (
    "elb/awsdocs_alb_load-balancer-access-logs_examples.log",
    "elb/awsdocs_clb_access-log-collection_examples.log",
    "elb/beats_elb-tcp.log",
    "elb/beats_elb-http.log",
    "vpcflow/elastic-integrations_test-v5-all-fields.log",
    "s3access/elastic-integrations_test-s3-server-access.log",
    "cloudfront_standard/elastic-integrations_test-cloudfront.log",
    "route53_public/elastic-integrations_test-route53.log",
)


def nlb_lines() -> list[str]:
    return read_lines(AWSDOCS) + read_lines(MIXED)[2:6]


def parse(line: str, **ctx: Any) -> dict[str, Any]:
    doc = NlbParser(ParseContext(**ctx)).parse(line)
    assert doc is not None
    return doc


def assert_no_dash(doc: dict[str, Any]) -> None:
    for key, value in flatten(doc).items():
        assert value != "-", key
        if isinstance(value, list):
            assert "-" not in value, key


def test_registry() -> None:
    cls = get_parser("nlb")
    assert cls is NlbParser
    assert cls.framing == "lines"
    assert NlbParser.example in read_lines(AWSDOCS)


def test_2018_line_all_fields() -> None:
    line = read_lines(AWSDOCS)[0]
    doc = parse(line, keep_original=True)
    assert doc["@timestamp"] == "2018-12-20T02:59:40.000Z"
    assert doc["event"] == {
        "kind": "event",
        "category": ["network"],
        "end": "2018-12-20T02:59:40.000Z",
        "original": line,
    }
    assert doc["source"] == {"address": "72.21.218.154", "ip": "72.21.218.154", "port": 51341, "bytes": 98}
    assert doc["destination"] == {
        "bytes": 246,
        "domain": "my-network-loadbalancer-c6e77e28c25b2234.elb.us-east-2.amazonaws.com",
    }
    assert doc["aws"]["elb"] == {
        "type": "tls",
        "version": "2.0",
        "name": "net/my-network-loadbalancer/c6e77e28c25b2234",
        "listener": "g3d4b5e8bb8464cd",
        "protocol": "tcp",
        "backend": {"ip": "172.100.100.185", "port": "443"},
        "connection_time": {"ms": 5},
        "tls_handshake_time": {"ms": 2},
        "chosen_cert": {
            "arn": "arn:aws:acm:us-east-2:671290407336:certificate/2a108f19-aded-46b0-8493-c63eb1ef4a99",
        },
        "ssl_cipher": "ECDHE-RSA-AES128-SHA",
        "ssl_protocol": "tlsv12",
    }
    assert doc["tls"] == {"cipher": "ECDHE-RSA-AES128-SHA", "version": "1.2", "version_protocol": "tls"}
    # account and region come from the certificate ARN when the S3 key did not give them
    assert doc["cloud"] == {"provider": "aws", "account": {"id": "671290407336"}, "region": "us-east-2"}
    assert_no_dash(doc)


def test_alpn_columns() -> None:
    doc = parse(read_lines(AWSDOCS)[1])
    elb = doc["aws"]["elb"]
    assert elb["alpn_fe_protocol"] == "h2"
    assert elb["alpn_be_protocol"] == "h2"
    assert elb["alpn_client_preference_list"] == ["h2", "http/1.1"]
    assert doc["tls"]["next_protocol"] == "h2"
    assert "tls_connection_creation_time" not in elb and "start" not in doc["event"]
    assert_no_dash(doc)


def test_connection_creation_time_and_escaped_quotes() -> None:
    doc = parse(read_lines(MIXED)[3])
    assert doc["aws"]["elb"]["tls_connection_creation_time"] == "2020-04-01T08:51:20.000Z"
    assert doc["event"]["start"] == "2020-04-01T08:51:20.000Z"
    assert doc["event"]["end"] == "2020-04-01T08:51:42.000Z"
    assert doc["source"]["ip"] == "192.168.131.39"
    escaped = parse(read_lines(MIXED)[4])
    assert escaped["aws"]["elb"]["alpn_client_preference_list"] == ["http/1.1"]
    assert escaped["aws"]["elb"]["connection_time"] == {"ms": 108}
    assert escaped["source"]["bytes"] == 256
    # an account id that is not 12 digits (redacted here) is not taken from the certificate ARN
    assert escaped["cloud"] == {"provider": "aws"}


def test_failed_handshake_line() -> None:
    doc = parse(read_lines(MIXED)[5])
    elb = doc["aws"]["elb"]
    assert elb["connection_time"] == {"ms": 0}
    assert "tls_handshake_time" not in elb and "chosen_cert" not in elb and "ssl_cipher" not in elb
    assert "tls" not in doc
    assert doc["source"]["bytes"] == 0
    assert doc["destination"] == {"bytes": 0}
    assert elb["tls_connection_creation_time"] == "2024-10-25T17:33:59.000Z"
    assert_no_dash(doc)


def test_named_group_serial_and_alert() -> None:
    tokens = read_lines(AWSDOCS)[1].split()
    tokens[11], tokens[13], tokens[16] = "40", "0A1B2C", "x25519"
    doc = parse(" ".join(tokens))
    elb = doc["aws"]["elb"]
    assert elb["incoming_tls_alert"] == "40"
    assert elb["chosen_cert"]["serial"] == "0A1B2C"
    assert elb["tls_named_group"] == "x25519"
    assert doc["tls"]["curve"] == "x25519"


def test_format_drift_extra_columns_kept() -> None:
    doc = parse(read_lines(MIXED)[3] + " future 42")
    assert doc["aws"]["elb"]["extra_fields"] == ["future", "42"]


def test_context_account_and_region_win() -> None:
    doc = parse(read_lines(AWSDOCS)[0], account_id="999999999999", region="eu-west-1")
    assert doc["cloud"] == {"provider": "aws", "account": {"id": "999999999999"}, "region": "eu-west-1"}


def test_keep_original_only_when_asked() -> None:
    line = read_lines(AWSDOCS)[1]
    assert "original" not in parse(line)["event"]
    assert parse(line, keep_original=True)["event"]["original"] == line


@pytest.mark.parametrize(
    ("relative", "index", "target"),
    [
        ("elb/awsdocs_alb_load-balancer-access-logs_examples.log", 0, "alb"),
        (MIXED, 0, "alb"),
        (MIXED, 7, "alb"),
        (MIXED, 8, "alb"),
        ("elb/awsdocs_clb_access-log-collection_examples.log", 2, "elb"),
        ("elb/beats_elb-http.log", 0, "elb"),
    ],
)
def test_sibling_formats_are_rerouted(relative: str, index: int, target: str) -> None:
    with pytest.raises(Reroute) as info:
        NlbParser(ParseContext()).parse(read_lines(relative)[index])
    assert info.value.log_type == target


def test_malformed_lines() -> None:
    line = read_lines(AWSDOCS)[1]
    parser = NlbParser(ParseContext())
    with pytest.raises(ParseError, match="at least 18"):
        parser.parse(" ".join(line.split()[:12]))
    with pytest.raises(ParseError, match="connection_time"):
        parser.parse(line.replace(" 5 2 98 ", " five 2 98 ", 1))
    with pytest.raises(ParseError, match="received_bytes"):
        parser.parse(line.replace(" 5 2 98 ", " 5 2 lots ", 1))
    with pytest.raises(ParseError, match="time"):
        parser.parse(line.replace("2020-04-01T08", "2020-04-01T28", 1))
    with pytest.raises(ParseError, match="not an NLB"):
        parser.parse(line.replace("tls 2.0", "udp 2.0", 1))
    assert parser.parse("") is None


def test_sniff() -> None:
    assert NlbParser.sniff("\n".join(read_lines(AWSDOCS)))
    assert NlbParser.sniff(read_lines(MIXED)[5] + "\n")
    for relative in (*OTHER_TYPES, MIXED):
        assert not NlbParser.sniff("\n".join(read_lines(relative))), relative
    assert not NlbParser.sniff("")


def test_no_silent_drops() -> None:
    """Every NLB line of the corpus is a document."""
    parser = NlbParser(ParseContext())
    docs = [parser.parse(line) for line in nlb_lines()]
    assert all(isinstance(doc, dict) for doc in docs)
    assert len(docs) == 6
    for doc in docs:
        assert doc is not None
        assert_no_dash(doc)


def test_every_emitted_typed_field_is_declared() -> None:
    declared = NlbParser.fields
    for line in nlb_lines():
        for key, value in flatten(parse(line)).items():
            if isinstance(value, int):
                assert declared.get(key) == "long", key
            if isinstance(value, float):
                assert declared.get(key) == "float", key
            if key.endswith(".ip") or key in ("@timestamp", "event.start", "event.end"):
                assert key in declared, key
            if key.endswith("creation_time"):
                assert declared.get(key) == "date", key
