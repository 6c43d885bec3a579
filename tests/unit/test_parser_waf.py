"""Golden tests for AWS WAF logs, on real samples from the shared corpus."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.corpus import CORPUS, read_json_records, read_lines, read_text
from worker.decoding import JsonRecordsFramer
from worker.parsers import ParseContext, ParseError, Reroute, get_parser
from worker.parsers.waf import WafParser, clean

ELASTIC = "waf/elastic-integrations_test-waf.log"
AWSDOCS = "waf/awsdocs_waf-logging-examples.log"
CLO = "waf/clo_waf.log"


def parse(record: dict[str, Any], **ctx: Any) -> dict[str, Any]:
    doc = WafParser(ParseContext(**ctx)).parse(record)
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
    cls = get_parser("waf")
    assert cls is WafParser
    assert cls.framing == "json_records"
    assert cls.fields["aws.waf.request.headers"] == "flattened"
    assert cls.fields["source.ip"] == "ip"
    assert parse(orjson.loads(cls.example))["rule"]["id"] == "RG-Reference"


def test_blocked_sql_injection() -> None:
    doc = parse(read_json_records(ELASTIC)[0])
    assert doc["@timestamp"] == "2019-12-13T23:40:12.771Z"
    assert doc["event"] == {"kind": "event", "category": ["web"], "action": "BLOCK", "type": ["access", "denied"]}
    assert doc["cloud"] == {"provider": "aws", "service": {"name": "wafv2"}, "region": "ap-southeast-2",
                            "account": {"id": "EXAMPLE12345"}}
    waf = doc["aws"]["waf"]
    assert waf["arn"] == ("arn:aws:wafv2:ap-southeast-2:EXAMPLE12345:regional/webacl/STMTest/"
                          "1EXAMPLE-2ARN-3ARN-4ARN-123456EXAMPLE")
    assert waf["id"] == "regional/webacl/STMTest/1EXAMPLE-2ARN-3ARN-4ARN-123456EXAMPLE"
    assert waf["web_acl_name"] == "STMTest"
    assert waf["format_version"] == "1"
    assert waf["request"]["headers"] == {
        "host": "localhost:1989", "user-agent": "curl/7.61.1", "accept": "*/*", "x-stm-test": "10 AND 1=1",
    }
    assert waf["terminating_rule_match_details"] == [
        {"conditionType": "SQL_INJECTION", "location": "HEADER", "matchedData": ["10", "AND", "1"]}
    ]
    assert waf["labels"] == [{"name": "value"}]
    assert "source" not in waf  # httpSourceName/Id are "-"
    assert "rule_group_list" not in waf and "rate_based_rule_list" not in waf  # empty lists
    assert doc["rule"] == {"id": "STMTest_SQLi_XSS", "ruleset": "REGULAR"}
    assert doc["source"] == {"address": "89.160.20.156", "ip": "89.160.20.156", "geo": {"country_iso_code": "AU"}}
    assert doc["related"] == {"ip": ["89.160.20.156"]}
    assert doc["http"] == {"version": "1.1", "request": {"id": "rid", "method": "GET"}}
    assert doc["network"] == {"protocol": "http", "transport": "tcp"}
    assert doc["url"] == {"path": "/foo"}  # args "" -> no url.query
    assert doc["user_agent"] == {"original": "curl/7.61.1"}


def test_allowed_with_counted_rule() -> None:
    doc = parse(read_json_records(ELASTIC)[1])
    assert doc["@timestamp"] == "2020-06-17T01:26:32.516Z"
    assert doc["event"]["type"] == ["access", "allowed"]
    assert doc["aws"]["waf"]["non_terminating_matching_rules"] == [
        {"action": "COUNT", "ruleId": "TestRule",
         "ruleMatchDetails": [{"conditionType": "SQL_INJECTION", "location": "HEADER",
                               "matchedData": ["10", "and", "1"]}]}
    ]
    assert doc["aws"]["waf"]["id"] == "global/webacl/hello-world/5933d6d9-9dde-js82-v8aw-9ck28nv9"
    assert doc["cloud"]["region"] == "us-east-1"


def test_rule_group_nulls_are_dropped() -> None:
    doc = parse(read_json_records(ELASTIC)[2])
    assert doc["rule"] == {"id": "RG-Reference", "ruleset": "GROUP"}
    groups = doc["aws"]["waf"]["rule_group_list"]
    assert groups == [{
        "nonTerminatingMatchingRules": [{
            "action": "COUNT", "ruleId": "RuleB-SQLi",
            "ruleMatchDetails": [{"conditionType": "SQL_INJECTION", "location": "HEADER",
                                  "matchedData": ["10", "and", "1"]}],
        }],
        "ruleGroupId": ("arn:aws:wafv2:us-east-1:123456789012:global/rulegroup/hello-world/"
                        "c05lb698-1f11-4m41-aef4-99a506d53f4b"),
        "terminatingRule": {"action": "BLOCK", "ruleId": "RuleA-XSS"},  # ruleMatchDetails null, excludedRules null
    }]
    assert list(groups[0]) == sorted(groups[0])


def test_source_names_and_empty_request() -> None:
    doc = parse(read_json_records(ELASTIC)[3])
    assert doc["aws"]["waf"]["source"] == {"name": "ALB", "id": "alb"}
    assert doc["http"]["request"] == {"id": "null", "method": "POST"}
    assert "url" not in doc and "request" not in doc["aws"]["waf"]
    assert "response_code_sent" not in doc["aws"]["waf"]  # null


def test_captcha_records() -> None:
    records = read_json_records(AWSDOCS)
    allowed = parse(records[4])
    waf = allowed["aws"]["waf"]
    assert waf["non_terminating_matching_rules"] == [
        {"action": "CAPTCHA", "captchaResponse": {"responseCode": 0, "solveTimestamp": 1632420429},
         "ruleId": "captcha-rule"}
    ]
    assert waf["request_headers_inserted"] == {"x-amzn-waf-test-header-name": "test-header-value"}
    assert allowed["http"]["request"]["referrer"] == (
        "https://b34myvfw0b.gamma.execute-api.us-east-1.amazonaws.com/pen-test/pets"
    )
    assert allowed["aws"]["waf"]["web_acl_name"] == "captcha-web-acl"
    captcha = parse(records[5])
    assert captcha["event"]["action"] == "CAPTCHA"
    assert captcha["event"]["type"] == ["access"]
    assert captcha["aws"]["waf"]["response_code_sent"] == 405
    # solveTimestamp 0 means "never solved": no date
    assert captcha["aws"]["waf"]["captcha_response"] == {"response_code": 405, "failure_reason": "TOKEN_MISSING"}
    solved = dict(records[5], captchaResponse={"responseCode": 200, "solveTimestamp": 1632420429})
    assert parse(solved)["aws"]["waf"]["captcha_response"] == {
        "response_code": 200, "solve_timestamp": "2021-09-23T18:07:09.000Z"
    }
    challenge = dict(records[5], challengeResponse={"responseCode": "202", "solveTimestamp": 1632420429309})
    assert parse(challenge)["aws"]["waf"]["challenge_response"] == {
        "response_code": 202, "solve_timestamp": "2021-09-23T18:07:09.309Z"
    }


def test_headers_without_value_and_sensitivity_level() -> None:
    records = read_json_records(AWSDOCS)
    doc = parse(records[1])
    # the doc's example writes {"name": "myHeader", "myValue": ...}: no value, no header
    assert doc["aws"]["waf"]["request"]["headers"] == {"host": "localhost:1989", "user-agent": "curl/7.61.1",
                                                       "accept": "*/*"}
    assert doc["aws"]["waf"]["non_terminating_matching_rules"][0]["ruleMatchDetails"][0]["sensitivityLevel"] == "HIGH"


def test_repeated_and_mixed_case_headers() -> None:
    record = copy.deepcopy(read_json_records(ELASTIC)[0])
    record["httpRequest"]["headers"] += [
        {"name": "X-Forwarded-For", "value": "1.1.1.1"},
        {"name": "x-forwarded-for", "value": "2.2.2.2"},
        {"name": "X-FORWARDED-FOR", "value": "3.3.3.3"},
        {"name": "Empty", "value": ""},
        {"name": "Dash", "value": "-"},
        "not a header",
    ]
    headers = parse(record)["aws"]["waf"]["request"]["headers"]
    assert headers["x-forwarded-for"] == ["1.1.1.1", "2.2.2.2", "3.3.3.3"]
    assert "empty" not in headers and "dash" not in headers


def test_appsync_managed_rule_group() -> None:
    doc = parse(read_json_records(CLO)[0])
    assert doc["@timestamp"] == "2022-03-25T03:41:22.260Z"
    waf = doc["aws"]["waf"]
    assert waf["rule_group_list"] == [{"ruleGroupId": "AWS#AWSManagedRulesBotControlRuleSet"}]
    assert waf["source"] == {"name": "APPSYNC",
                             "id": "arn:aws:appsync:eu-west-1:123456789012:apis/ntyfs5efpfdtxpy2x6i6nvbidq"}
    assert waf["request"]["headers"]["x-forwarded-for"] == "101.93.195.253, 130.176.4.138"
    assert waf["request"]["headers"]["content-length"] == "1678"
    assert doc["http"]["version"] == "1.0"
    assert doc["source"]["geo"] == {"country_iso_code": "CN"}
    assert doc["cloud"]["region"] == "eu-west-1"


def test_new_fields_and_format_drift_are_kept() -> None:
    record = dict(
        read_json_records(ELASTIC)[0],
        requestBodySize=1024,
        requestBodySizeInspectedByWAF="1024",
        ja3Fingerprint="e7a3b1c",
        ja4Fingerprint="t13d1516h2_8daaf6152771_02713d6af862",
        oversizeFields=["REQUEST_JSON_BODY"],
        rateBasedRuleList=[{"rateBasedRuleId": "r1", "limitKey": "IP", "maxRateAllowed": 100,
                            "rateBasedRuleName": "rate", "limitValue": "89.160.20.156", "customValues": None}],
        someNewScalar="x",
        someNewObject={"a": 1},
    )
    waf = parse(record)["aws"]["waf"]
    assert waf["request_body_size"] == 1024
    assert waf["request_body_size_inspected_by_waf"] == 1024
    assert waf["ja4_fingerprint"] == "t13d1516h2_8daaf6152771_02713d6af862"
    assert waf["oversize_fields"] == ["REQUEST_JSON_BODY"]
    assert waf["rate_based_rule_list"] == [{"limitKey": "IP", "limitValue": "89.160.20.156", "maxRateAllowed": 100,
                                            "rateBasedRuleId": "r1", "rateBasedRuleName": "rate"}]
    assert waf["some_new_scalar"] == "x"
    assert waf["unmapped"] == {"someNewObject": {"a": 1}}
    assert parse(record)["tls"] == {"client": {"ja3": "e7a3b1c"}}
    request = dict(record["httpRequest"], scheme="https", fragment="top", host="example.com", args="a=1")
    doc = parse(dict(record, httpRequest=request))
    assert doc["url"] == {"path": "/foo", "query": "a=1", "fragment": "top", "scheme": "https"}
    assert doc["host"] == {"domain": "example.com"}


def test_classic_web_acl_id_uses_the_key_context() -> None:
    record = dict(read_json_records(ELASTIC)[0], webaclId="1EXAMPLE-2ARN-3ARN-4ARN-123456EXAMPLE")
    doc = parse(record, account_id="111122223333", region="eu-west-1")
    assert doc["cloud"] == {"provider": "aws", "region": "eu-west-1", "account": {"id": "111122223333"}}
    assert doc["aws"]["waf"]["arn"] == "1EXAMPLE-2ARN-3ARN-4ARN-123456EXAMPLE"
    assert "id" not in doc["aws"]["waf"] and "web_acl_name" not in doc["aws"]["waf"]


def test_non_ip_client_and_http3() -> None:
    record = copy.deepcopy(read_json_records(ELASTIC)[0])
    record["httpRequest"]["clientIp"] = "unknown"
    record["httpRequest"]["httpVersion"] = "HTTP/3.0"
    doc = parse(record)
    assert doc["source"] == {"address": "unknown", "geo": {"country_iso_code": "AU"}}
    assert "related" not in doc
    assert doc["network"] == {"protocol": "http", "transport": "udp"}
    assert doc["http"]["version"] == "3.0"


def test_malformed_records() -> None:
    good = read_json_records(ELASTIC)[0]
    parser = WafParser(ParseContext())
    with pytest.raises(ParseError, match="JSON list, not an object"):
        parser.parse([good])
    with pytest.raises(ParseError, match="no epoch-millisecond timestamp"):
        parser.parse({k: v for k, v in good.items() if k != "timestamp"})
    with pytest.raises(ParseError, match="no epoch-millisecond timestamp"):
        parser.parse(dict(good, timestamp="2019-12-13T23:40:12Z"))
    with pytest.raises(ParseError, match="out of range"):
        parser.parse(dict(good, timestamp=10**20))
    with pytest.raises(ParseError, match="httpRequest is a JSON str"):
        parser.parse(dict(good, httpRequest="GET /"))
    with pytest.raises(ParseError, match="not a WAF log record"):
        parser.parse({"hello": "world"})
    doc = parser.parse(dict(good, timestamp="1576280412771"))
    assert doc is not None and doc["@timestamp"] == "2019-12-13T23:40:12.771Z"


def test_sibling_records_are_rerouted() -> None:
    firewall = read_json_records("network_firewall/elastic-integrations_test-firewall.log")[0]
    with pytest.raises(Reroute) as exc:
        parse(firewall)
    assert exc.value.log_type == "network_firewall"
    resolver = read_json_records("route53_resolver/awsdocs_resolver-query-logs-example-json.log")[0]
    with pytest.raises(Reroute) as exc:
        parse(resolver)
    assert exc.value.log_type == "route53_resolver"


def test_event_original_only_with_keep_original() -> None:
    record = read_json_records(ELASTIC)[0]
    assert "original" not in parse(record)["event"]
    original = parse(record, keep_original=True)["event"]["original"]
    assert orjson.loads(original) == record
    assert original == read_lines(ELASTIC)[0]  # compact input re-serialises byte for byte


def test_clean() -> None:
    assert clean({"b": [None, {}, {"x": None}, "-", ""], "a": {"c": "-"}, "d": 0}) == {"b": ["-", ""], "d": 0}


def test_sniff() -> None:
    for name in (ELASTIC, AWSDOCS, CLO):
        assert WafParser.sniff(read_text(name)[:65536]), name
    assert WafParser.sniff("[" + read_lines(ELASTIC)[0] + "]")
    others = (
        "network_firewall/elastic-integrations_test-firewall.log",
        "network_firewall/opensearch-catalog_amazon_networkfirewall-sample.json",
        "route53_resolver/elastic-integrations_test-route53.log",
        "cloudtrail/elastic-integrations_test-console-login-json.log",
        "elb/elastic-integrations_test-alb.log",
        "vpcflow/elastic-integrations_test-v5-all-fields.log",
    )
    for name in others:
        assert not WafParser.sniff(read_text(name)[:65536]), name


def _frame(path: Path) -> tuple[list[Any], list[Any]]:
    framer = JsonRecordsFramer()
    framer.feed(path.read_bytes())
    return framer.finish()


def test_no_silent_drops_and_no_dash() -> None:
    """Every record of every WAF sample, framed as in production, becomes a document; none carries `-`."""
    counts = {}
    for path in sorted((CORPUS / "waf").glob("*.log")):
        records, errors = _frame(path)
        assert not errors, errors
        parser = WafParser(ParseContext(keep_original=True))
        docs = [parser.parse(record) for _, record in records]
        assert all(isinstance(doc, dict) for doc in docs)
        for doc in docs:
            assert doc is not None
            assert "-" not in list(leaves(doc)), doc
            assert doc["@timestamp"].endswith("Z") and len(doc["@timestamp"]) == 24
        counts[path.name] = len(docs)
    assert counts == {
        "awsdocs_waf-logging-examples.log": 6,
        "clo_waf.log": 2,
        "elastic-integrations_test-waf.log": 4,
    }
