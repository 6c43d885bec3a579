"""Golden tests for Classic Load Balancer access logs, on real samples from the shared corpus."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.corpus import read_lines, read_text
from worker.parsers import ParseContext, ParseError, Reroute, get_parser
from worker.parsers._fields import flatten
from worker.parsers.elb import ElbParser

AWSDOCS = "elb/awsdocs_clb_access-log-collection_examples.log"
HTTP = "elb/beats_elb-http.log"
TCP = "elb/beats_elb-tcp.log"
CORPUS_FILES = (AWSDOCS, HTTP, TCP)
OTHER_TYPES = (
    "elb/awsdocs_alb_load-balancer-access-logs_examples.log",
    "elb/awsdocs_nlb_load-balancer-access-logs_examples.log",
    "elb/elastic-integrations_test-alb.log",
    "vpcflow/elastic-integrations_test-v5-all-fields.log",
    "s3access/elastic-integrations_test-s3-server-access.log",
    "cloudfront_standard/elastic-integrations_test-cloudfront.log",
    "route53_public/elastic-integrations_test-route53.log",
)


def parse(line: str, **ctx: Any) -> dict[str, Any]:
    doc = ElbParser(ParseContext(**ctx)).parse(line)
    assert doc is not None
    return doc


def assert_no_dash(doc: dict[str, Any]) -> None:
    for key, value in flatten(doc).items():
        assert value != "-", key
        if isinstance(value, list):
            assert "-" not in value, key


def test_registry() -> None:
    cls = get_parser("elb")
    assert cls is ElbParser
    assert cls.framing == "lines"
    assert ElbParser.example in read_lines(AWSDOCS)


def test_http_line_all_fields() -> None:
    line = read_lines(AWSDOCS)[0]
    doc = parse(line, keep_original=True)
    assert doc["@timestamp"] == "2015-05-13T23:39:43.945Z"
    assert doc["event"] == {
        "kind": "event",
        "category": ["web"],
        "end": "2015-05-13T23:39:43.945Z",
        "outcome": "success",
        "original": line,
    }
    assert doc["source"] == {"address": "192.168.131.39", "ip": "192.168.131.39", "port": 2817}
    assert doc["aws"]["elb"] == {
        "name": "my-loadbalancer",
        "protocol": "http",
        "backend": {"ip": "10.0.0.1", "port": "80", "http": {"response": {"status_code": 200}}},
        "request_processing_time": {"sec": pytest.approx(0.000073)},
        "backend_processing_time": {"sec": pytest.approx(0.001048)},
        "response_processing_time": {"sec": pytest.approx(0.000057)},
    }
    assert doc["http"] == {
        "version": "1.1",
        "request": {"method": "GET", "body": {"bytes": 0}},
        "response": {"status_code": 200, "body": {"bytes": 29}},
    }
    assert doc["url"] == {
        "original": "http://www.example.com:80/",
        "scheme": "http",
        "domain": "www.example.com",
        "port": 80,
        "path": "/",
    }
    assert doc["user_agent"] == {"original": "curl/7.38.0"}
    assert "tls" not in doc and "destination" not in doc
    assert doc["cloud"] == {"provider": "aws"}
    assert_no_dash(doc)


def test_https_line() -> None:
    doc = parse(read_lines(AWSDOCS)[1])
    assert doc["tls"] == {"cipher": "DHE-RSA-AES128-SHA", "version": "1.2", "version_protocol": "tls"}
    assert doc["aws"]["elb"]["ssl_cipher"] == "DHE-RSA-AES128-SHA"
    assert doc["aws"]["elb"]["ssl_protocol"] == "TLSv1.2"
    assert doc["url"]["scheme"] == "https"
    assert doc["url"]["port"] == 443
    assert doc["http"]["response"]["body"]["bytes"] == 57


def test_tcp_and_ssl_listener_lines() -> None:
    tcp = parse(read_lines(AWSDOCS)[2])
    assert tcp["aws"]["elb"]["protocol"] == "tcp"
    assert tcp["event"] == {"kind": "event", "category": ["network"], "end": "2015-05-13T23:39:43.945Z"}
    assert tcp["source"]["bytes"] == 82
    assert tcp["destination"] == {"bytes": 305}
    for absent in ("http", "url", "user_agent", "tls"):
        assert absent not in tcp, absent
    assert tcp["aws"]["elb"]["backend"] == {"ip": "10.0.0.1", "port": "80"}
    assert_no_dash(tcp)
    ssl = parse(read_lines(AWSDOCS)[3])
    assert ssl["aws"]["elb"]["protocol"] == "tcp"
    assert ssl["tls"] == {"cipher": "ECDHE-ECDSA-AES128-GCM-SHA256", "version": "1.2", "version_protocol": "tls"}
    assert ssl["destination"] == {"bytes": 502}
    assert_no_dash(ssl)


def test_beats_http_lines() -> None:
    docs = [parse(line) for line in read_lines(HTTP) if line]
    assert len(docs) == 5
    first = docs[0]
    assert first["@timestamp"] == "2019-10-14T12:00:20.694Z"
    assert first["source"] == {"address": "175.16.199.1", "ip": "175.16.199.1", "port": 54106}
    assert first["user_agent"]["original"].startswith("Mozilla/5.0 (Windows NT 6.1)")
    assert first["url"]["domain"] == "18.194.223.56"
    assert docs[2]["url"]["domain"] == "filebeat-aws-elb-test-1703142762.eu-central-1.elb.amazonaws.com"
    assert docs[2]["user_agent"] == {"original": "curl/7.58.0"}
    assert [d["aws"]["elb"]["backend_processing_time"]["sec"] for d in docs] == pytest.approx(
        [0.000785, 0.00491, 0.00079, 0.001184, 0.000787]
    )
    for doc in docs:
        assert doc["aws"]["elb"]["name"] == "filebeat-aws-elb-test"
        assert doc["http"]["response"]["body"]["bytes"] == 612
        assert_no_dash(doc)


def test_beats_tcp_lines_match_filebeat_expected_output() -> None:
    """Filebeat's flat expected documents, paired by `log.offset`: every parsed field agrees."""
    lines = read_lines(TCP)
    by_offset: dict[int, str] = {}
    offset = 0
    for line in lines:
        by_offset[offset] = line
        offset += len(line.encode()) + 1
    skip = ("source.geo.", "source.as.", "log.offset", "input.type", "service.type", "fileset.", "event.module",
            "event.dataset", "tags", "ecs.version")
    expected = json.loads(read_text(TCP + "-expected.json"))
    assert len(expected) == 6
    compared = 0
    for theirs in expected:
        ours = flatten(parse(by_offset[theirs["log.offset"]]))
        for key, value in theirs.items():
            if key.startswith(skip):
                continue
            compared += 1
            if key == "event.category":
                assert ours[key] == [value]
            elif key == "source.port":
                assert ours[key] == int(value)
            elif key in ("@timestamp", "event.end"):
                assert ours[key] == value, key
            elif isinstance(value, float):
                assert ours[key] == pytest.approx(value), key
            else:
                assert ours[key] == value, key
    assert compared == 6 * 16


def test_context_account_and_region() -> None:
    doc = parse(read_lines(TCP)[0], account_id="999999999999", region="eu-west-1")
    assert doc["cloud"] == {"provider": "aws", "account": {"id": "999999999999"}, "region": "eu-west-1"}


def test_no_backend_error_status_and_ipv6_client() -> None:
    line = (
        "2015-05-13T23:39:43.945958Z my-lb 2001:db8::1:2817 - -1 -1 -1 503 - 0 0 "
        '"GET http://www.example.com:80/a.png?x=1 HTTP/1.1" "curl/7.38.0" - -'
    )
    doc = parse(line)
    assert doc["source"] == {"address": "2001:db8::1", "ip": "2001:db8::1", "port": 2817}
    elb = doc["aws"]["elb"]
    for absent in ("backend", "request_processing_time", "backend_processing_time", "response_processing_time"):
        assert absent not in elb, absent
    assert doc["http"]["response"]["status_code"] == 503
    assert doc["event"]["outcome"] == "failure"
    assert doc["url"]["extension"] == "png"
    assert doc["url"]["query"] == "x=1"
    assert_no_dash(doc)


def test_older_lines_without_user_agent_and_tls_columns() -> None:
    line = " ".join(read_lines(AWSDOCS)[0].split(' "curl')[:1])
    doc = parse(line)
    assert doc["http"]["request"]["method"] == "GET"
    assert "user_agent" not in doc and "tls" not in doc


def test_format_drift_extra_columns_kept() -> None:
    doc = parse(read_lines(AWSDOCS)[1] + ' future "quoted col"')
    assert doc["aws"]["elb"]["extra_fields"] == ["future", "quoted col"]
    assert doc["tls"]["version"] == "1.2"


def test_escaped_quote_in_user_agent() -> None:
    doc = parse(read_lines(AWSDOCS)[0].replace('"curl/7.38.0"', '"curl \\"x\\" y"'))
    assert doc["user_agent"]["original"] == 'curl "x" y'
    assert "tls" not in doc


def test_keep_original_only_when_asked() -> None:
    line = read_lines(TCP)[0]
    assert "original" not in parse(line)["event"]
    assert parse(line, keep_original=True)["event"]["original"] == line


@pytest.mark.parametrize(
    ("relative", "index", "target"),
    [
        ("elb/awsdocs_alb_load-balancer-access-logs_examples.log", 0, "alb"),
        ("elb/elastic-integrations_test-alb.log", 2, "nlb"),
        ("elb/awsdocs_nlb_load-balancer-access-logs_examples.log", 1, "nlb"),
        ("elb/elastic-integrations_test-alb.log", 6, "alb"),
        ("elb/elastic-integrations_test-alb.log", 8, "alb"),
    ],
)
def test_sibling_formats_are_rerouted(relative: str, index: int, target: str) -> None:
    with pytest.raises(Reroute) as info:
        ElbParser(ParseContext()).parse(read_lines(relative)[index])
    assert info.value.log_type == target


def test_malformed_lines() -> None:
    line = read_lines(AWSDOCS)[0]
    parser = ElbParser(ParseContext())
    with pytest.raises(ParseError, match="at least 12"):
        parser.parse(" ".join(line.split()[:8]))
    with pytest.raises(ParseError, match="unbalanced"):
        parser.parse(line + ' "oops')
    with pytest.raises(ParseError, match="elb_status_code"):
        parser.parse(line.replace(" 200 200 ", " OK 200 ", 1))
    with pytest.raises(ParseError, match="request_processing_time"):
        parser.parse(line.replace(" 0.000073 ", " fast ", 1))
    with pytest.raises(ParseError, match="received_bytes"):
        parser.parse(line.replace(" 0 29 ", " x 29 ", 1))
    with pytest.raises(ParseError, match="time"):
        parser.parse(line.replace("2015-05-13T23", "2015-05-13T25", 1))
    with pytest.raises(ParseError, match="not a Classic ELB"):
        parser.parse("hello world " * 10)
    assert parser.parse("") is None


def test_sniff() -> None:
    for relative in CORPUS_FILES:
        assert ElbParser.sniff("\n".join(read_lines(relative))), relative
    for relative in OTHER_TYPES:
        assert not ElbParser.sniff("\n".join(read_lines(relative))), relative
    assert not ElbParser.sniff("")


def test_no_silent_drops() -> None:
    """Every line of every Classic ELB corpus file is a document, except the blank last line of one file."""
    docs = blanks = 0
    for relative in CORPUS_FILES:
        parser = ElbParser(ParseContext())
        for line in read_lines(relative):
            doc = parser.parse(line)
            if doc is None:
                assert line == ""
                blanks += 1
            else:
                assert_no_dash(doc)
                docs += 1
    assert (docs, blanks) == (15, 1)


def test_every_emitted_typed_field_is_declared() -> None:
    declared = ElbParser.fields
    for relative in CORPUS_FILES:
        for line in read_lines(relative):
            if not line:
                continue
            for key, value in flatten(parse(line)).items():
                if isinstance(value, int):
                    assert declared.get(key) == "long", key
                if isinstance(value, float):
                    assert declared.get(key) == "float", key
                if key.endswith(".ip") or key in ("@timestamp", "event.end"):
                    assert key in declared, key
