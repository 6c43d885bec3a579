"""Golden tests for CloudFront real-time log records.

The corpus has no real-time sample, so the records below are written after the CloudFront developer guide
("Real-time logs": fields, their order and formats) in the shape Kinesis delivers them: one tab-separated
line per request, URL-encoded values, `-` for "no value".
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.corpus import CORPUS, read_lines, read_text
from worker.parsers import ParseContext, ParseError, Reroute, get_parser
from worker.parsers._fields import flatten
from worker.parsers.cloudfront import FIELDS
from worker.parsers.cloudfront_realtime import REALTIME_COLUMNS, CloudFrontRealtimeParser, field_list


def record(*values: str) -> str:
    assert len(values) == len(REALTIME_COLUMNS), len(values)
    return "\t".join(values)


# All 45 documented fields (the default field list), in delivery order.
HIT = record(
    "1591112398.123", "198.51.100.23", "0.002", "200", "3196", "GET", "https", "www.example.com",
    "/images/cat.jpg?size=large", "412", "IAD89-C1", "f4dmmyMb4rF7ZlCt2yZNGadoaG4Y3OaUjcsDF4lK2RFnhBuhWg1h6w==",
    "d111111abcdef8.cloudfront.net", "0.003", "HTTP/2.0", "IPv4",
    "Mozilla/5.0%20(X11;%20Linux%20x86_64;%20rv:109.0)%20Gecko/20100101%20Firefox/115.0",
    "https://www.example.com/", "-", "size=large", "Hit", "-", "TLSv1.3", "TLS_AES_128_GCM_SHA256", "Hit", "-",
    "-", "image/jpeg", "2738", "-", "-", "50512", "Hit", "US", "gzip,%20deflate,%20br",
    "image/avif,image/webp,*/*", "/images/*",
    "host:www.example.com%0Aaccept:image/avif,image/webp,*/*%0Aaccept-encoding:gzip,%20deflate,%20br%0A",
    "host%0Aaccept%0Aaccept-encoding%0A", "3", "-", "-", "-", "-", "64496",
)
MISS_IPV6 = record(
    "1700000000.5", "2001:db8:4006:812::200e", "0.118", "206", "1049010", "GET", "https", "media.example.com",
    "/video/intro.mp4", "388", "FRA56-P7", "x2jZ7Hn0pQbW-2t1v8sPq9mJcXyZ3kLr7VxN0eJdPqMwQ4rBn5Tg1A==",
    "d2222222abcdef8.cloudfront.net", "0.254", "HTTP/1.1", "IPv6",
    "AppleCoreMedia/1.0.0.21A329%20(iPhone;%20U;%20CPU%20OS%2017_0%20like%20Mac%20OS%20X;%20en_us)",
    "-", "session-id=17%3Aab", "-", "Miss", "203.0.113.77,%20198.51.100.4", "TLSv1.2",
    "ECDHE-RSA-AES128-GCM-SHA256", "Miss", "-", "-", "video/mp4", "1048576", "0", "1048575", "61234", "Miss",
    "DE", "identity", "*/*", "/video/*", "host:media.example.com%0Arange:bytes=0-1048575%0A",
    "host%0Arange%0A", "2", "E2STAGINGEXAMPLE", "d3333333abcdef8.cloudfront.net", "0.101", "0.240", "3320",
)
ORIGIN_ERROR = record(
    "1700000123.007", "192.0.2.44", "5.013", "504", "915", "POST", "http", "api.example.com", "/v1/orders",
    "1877", "NRT57-C2", "Zb1Q3Zb1Q3Zb1Q3Zb1Q3Zb1Q3Zb1Q3Zb1Q3Zb1Q3Zb1Q3Zb1Q3ZZ==", "d4444444abcdef8.cloudfront.net",
    "5.013", "HTTP/1.1", "IPv4", "okhttp/4.12.0", "-", "-", "-", "Error", "-", "-", "-", "Error", "-", "-",
    "text/html", "-", "-", "-", "43120", "OriginReadError", "JP", "gzip", "application/json", "/v1/*",
    "host:api.example.com%0Acontent-type:application/json%0A", "host%0Acontent-type%0A", "2", "-", "-", "-",
    "-", "2516",
)
CLOSED = record(
    "1700000999.999", "203.0.113.200", "-", "000", "0", "GET", "wss", "chat.example.com", "/socket", "623",
    "SEA19-C3", "lLv0WvQ1lLv0WvQ1lLv0WvQ1lLv0WvQ1lLv0WvQ1lLv0WvQ1lLv0Ww==", "d5555555abcdef8.cloudfront.net",
    "312.400", "HTTP/1.1", "IPv4", "-", "-", "-", "room=42", "Error", "-", "TLSv1.3", "TLS_AES_256_GCM_SHA384",
    "Error", "-", "-", "-", "-", "-", "-", "58888", "ClientCommError", "US", "-", "-", "Default (*)", "-", "-",
    "-", "-", "-", "-", "-", "-",
)
RECORDS = [HIT, MISS_IPV6, ORIGIN_ERROR, CLOSED]

# A configuration of a subset of fields, the example list of the task (timestamp first, etc.).
SUBSET = ["timestamp", "c-ip", "time-to-first-byte", "sc-status", "sc-bytes", "cs-method", "cs-protocol",
          "cs-host", "cs-uri-stem", "x-edge-location", "x-edge-request-id", "cs-user-agent", "x-edge-result-type"]
SUBSET_RECORD = "\t".join(
    ["1591112398.456", "192.0.2.10", "0.001", "301", "512", "GET", "http", "example.org", "/old?x=1",
     "LHR61-P2", "s0Me1d-s0Me1d-s0Me1d-s0Me1d-s0Me1d-s0Me1d-s0Me1d==", "curl/8.4.0", "Redirect"]
)


def parser(**ctx: Any) -> CloudFrontRealtimeParser:
    return CloudFrontRealtimeParser(ParseContext(**ctx))


def parse(line: str, **ctx: Any) -> dict[str, Any]:
    doc = parser(**ctx).parse(line)
    assert doc is not None
    return doc


def assert_no_dash(doc: dict[str, Any]) -> None:
    for key, value in flatten(doc).items():
        assert value != "-", key
        assert value != "", key
        if isinstance(value, list):
            assert "-" not in value, key


def test_registry() -> None:
    cls = get_parser("cloudfront_realtime")
    assert cls is CloudFrontRealtimeParser
    assert cls.framing == "lines"
    assert cls.fields is FIELDS  # the same index mapping as standard logs
    assert cls.routing and cls.example


def test_default_field_list_is_the_documented_one() -> None:
    assert len(REALTIME_COLUMNS) == 45
    assert REALTIME_COLUMNS[:4] == ("timestamp", "c-ip", "time-to-first-byte", "sc-status")
    assert REALTIME_COLUMNS[-5:] == (
        "primary-distribution-id", "primary-distribution-dns-name", "origin-fbl", "origin-lbl", "asn",
    )
    assert field_list(None) == REALTIME_COLUMNS


def test_example_parses() -> None:
    doc = parse(CloudFrontRealtimeParser.example)
    assert doc["@timestamp"] == "2020-06-02T15:39:58.123Z"
    assert_no_dash(doc)


def test_cache_hit_all_fields() -> None:
    doc = parse(HIT, keep_original=True, account_id="111122223333")
    assert doc == {
        "@timestamp": "2020-06-02T15:39:58.123Z",
        "event": {
            "kind": "event",
            "category": ["web"],
            "type": ["access"],
            "outcome": "success",
            "id": "f4dmmyMb4rF7ZlCt2yZNGadoaG4Y3OaUjcsDF4lK2RFnhBuhWg1h6w==",
            "duration": 3_000_000,
            "original": HIT,
        },
        "aws": {
            "cloudfront": {
                "edge_location": "IAD89-C1",
                "edge_result_type": "Hit",
                "edge_response_result_type": "Hit",
                "edge_detailed_result_type": "Hit",
                "time_to_first_byte": 0.002,
                "content_type": "image/jpeg",
                "domain": "d111111abcdef8.cloudfront.net",
                "cache_behavior_path_pattern": "/images/*",
                "accept_encoding": "gzip, deflate, br",
                "accept": "image/avif,image/webp,*/*",
                "headers": {
                    "host": "www.example.com",
                    "accept": "image/avif,image/webp,*/*",
                    "accept-encoding": "gzip, deflate, br",
                },
                "header_names": ["host", "accept", "accept-encoding"],
                "headers_count": 3,
            }
        },
        "source": {
            "address": "198.51.100.23",
            "ip": "198.51.100.23",
            "port": 50512,
            "geo": {"country_iso_code": "US"},
            "as": {"number": 64496},
        },
        "network": {"type": "ipv4", "protocol": "https"},
        "destination": {"address": "www.example.com", "domain": "www.example.com"},
        "url": {
            "path": "/images/cat.jpg",
            "extension": "jpg",
            "query": "size=large",
            "scheme": "https",
            "domain": "www.example.com",
            "full": "https://www.example.com/images/cat.jpg?size=large",
        },
        "user_agent": {"original": "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0"},
        "tls": {"version_protocol": "tls", "version": "1.3", "cipher": "TLS_AES_128_GCM_SHA256"},
        "http": {
            "version": "2.0",
            "request": {
                "bytes": 412,
                "method": "GET",
                "referrer": "https://www.example.com/",
                "id": "f4dmmyMb4rF7ZlCt2yZNGadoaG4Y3OaUjcsDF4lK2RFnhBuhWg1h6w==",
            },
            "response": {"bytes": 3196, "status_code": 200, "mime_type": "image/jpeg", "body": {"bytes": 2738}},
        },
        "related": {"ip": ["198.51.100.23"], "hosts": ["d111111abcdef8.cloudfront.net", "www.example.com"]},
        "cloud": {"provider": "aws", "account": {"id": "111122223333"}},
    }


def test_ipv6_range_request_through_proxies_from_a_staging_distribution() -> None:
    doc = parse(MISS_IPV6)
    assert doc["@timestamp"] == "2023-11-14T22:13:20.500Z"
    assert doc["source"]["ip"] == "2001:db8:4006:812::200e"
    assert doc["network"]["type"] == "ipv6"
    assert doc["network"]["forwarded_ip"] == ["203.0.113.77", "198.51.100.4"]
    assert doc["related"]["ip"] == ["2001:db8:4006:812::200e", "203.0.113.77", "198.51.100.4"]
    cf = doc["aws"]["cloudfront"]
    assert cf["range_start"] == 0 and cf["range_end"] == 1048575
    assert cf["origin_fbl"] == 0.101 and cf["origin_lbl"] == 0.24
    assert cf["primary_distribution_id"] == "E2STAGINGEXAMPLE"
    assert cf["primary_distribution_dns_name"] == "d3333333abcdef8.cloudfront.net"
    assert cf["cookies"] == "session-id=17%3Aab"  # kept as logged, as Elastic does for standard logs
    assert cf["headers"] == {"host": "media.example.com", "range": "bytes=0-1048575"}
    assert doc["http"]["response"] == {
        "bytes": 1049010, "status_code": 206, "mime_type": "video/mp4", "body": {"bytes": 1048576},
    }
    assert doc["user_agent"]["original"].startswith("AppleCoreMedia/1.0.0.21A329 (iPhone; U; CPU OS 17_0")
    assert doc["source"]["as"] == {"number": 3320}
    assert "query" not in doc["url"]
    assert_no_dash(doc)


def test_origin_error_over_http() -> None:
    doc = parse(ORIGIN_ERROR)
    assert doc["@timestamp"] == "2023-11-14T22:15:23.007Z"
    assert doc["event"]["outcome"] == "failure"
    assert doc["event"]["duration"] == 5_013_000_000
    assert doc["http"]["response"]["status_code"] == 504
    assert doc["aws"]["cloudfront"]["edge_detailed_result_type"] == "OriginReadError"
    assert doc["url"]["full"] == "http://api.example.com/v1/orders"
    assert "tls" not in doc and "referrer" not in doc["http"]["request"]
    assert_no_dash(doc)


def test_websocket_closed_before_response() -> None:
    doc = parse(CLOSED)
    assert doc["http"]["response"]["status_code"] == 0
    assert doc["event"]["outcome"] == "failure"
    assert doc["network"]["protocol"] == "wss"
    assert doc["url"]["full"] == "wss://chat.example.com/socket?room=42"
    assert doc["aws"]["cloudfront"]["cache_behavior_path_pattern"] == "Default (*)"
    assert "time_to_first_byte" not in doc["aws"]["cloudfront"] and "user_agent" not in doc
    assert doc["event"]["duration"] == 312_400_000_000
    assert_no_dash(doc)


def test_configured_subset_of_fields() -> None:
    doc = parse(SUBSET_RECORD, options={"fields": SUBSET})
    assert doc["@timestamp"] == "2020-06-02T15:39:58.456Z"
    assert doc["http"]["response"] == {"bytes": 512, "status_code": 301}
    assert doc["url"] == {
        "path": "/old", "query": "x=1", "scheme": "http", "domain": "example.org", "full": "http://example.org/old?x=1",
    }
    assert doc["destination"] == {"address": "example.org", "domain": "example.org"}
    assert doc["aws"]["cloudfront"] == {
        "edge_location": "LHR61-P2", "edge_result_type": "Redirect", "time_to_first_byte": 0.001,
    }
    assert doc["user_agent"] == {"original": "curl/8.4.0"}
    assert_no_dash(doc)


@pytest.mark.parametrize(
    "option",
    [
        ",".join(SUBSET),
        " ".join(SUBSET),
        ", ".join(SUBSET),
        list(reversed(SUBSET)),  # CloudFront delivers documented fields in its own order
    ],
)
def test_fields_option_forms(option: Any) -> None:
    assert parse(SUBSET_RECORD, options={"fields": option}) == parse(SUBSET_RECORD, options={"fields": SUBSET})


def test_field_order_given_keeps_the_option_order() -> None:
    names = ["c-ip", "timestamp", "sc-status"]
    assert field_list(names) == ("timestamp", "c-ip", "sc-status")
    assert field_list(names, "given") == tuple(names)
    doc = parse("192.0.2.1\t1591112398.000\t404", options={"fields": names, "field_order": "given"})
    assert doc["source"]["ip"] == "192.0.2.1" and doc["http"]["response"]["status_code"] == 404
    # a name CloudFront does not document has no known position: the option's order is kept
    assert field_list(["c-ip", "timestamp", "x-new-field"]) == ("c-ip", "timestamp", "x-new-field")


def test_unknown_configured_field_is_kept() -> None:
    options = {"fields": "timestamp c-ip distribution-tenant-id"}
    doc = parse("1591112398.000\t192.0.2.1\tEXAMPLE-TENANT", options=options)
    assert doc["aws"]["cloudfront"]["distribution_tenant_id"] == "EXAMPLE-TENANT"


def test_format_drift_extra_trailing_column_is_kept() -> None:
    doc = parse(HIT + "\tcmcd-value\t-")
    assert doc["aws"]["cloudfront"]["extra_fields"] == ["cmcd-value", "-"]


def test_record_shorter_than_the_field_list_is_refused() -> None:
    with pytest.raises(ParseError, match=r"13 fields, the field list has 45: set the source's `fields` option"):
        parser().parse(SUBSET_RECORD)


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"fields": 42}, "expected a list of field names"),
        ({"fields": ["timestamp", "c-ip", "timestamp"]}, "listed twice"),
        ({"fields": ["c-ip", "sc-status"]}, "no timestamp field"),
        ({"fields": SUBSET, "field_order": "random"}, "field_order"),
    ],
)
def test_bad_options_refuse_every_record_with_the_reason(options: dict[str, Any], reason: str) -> None:
    p = parser(options=options)
    with pytest.raises(ParseError, match=reason):
        p.parse(SUBSET_RECORD)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (HIT.replace("1591112398.123", "yesterday"), "not epoch seconds"),
        (HIT.replace("\t200\t3196\t", "\tOK\t3196\t"), "sc-status: not an integer"),
        (HIT.replace("\t0.003\t", "\tslow\t"), "time-taken: not a number"),
        (HIT.replace("\t64496", "\tAS64496"), "asn: not an integer"),
        ("just some text", "1 fields, the field list has 45"),
    ],
)
def test_malformed_records(line: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parser().parse(line)


def test_standard_log_lines_are_rerouted() -> None:
    standard = read_lines("cloudfront_standard/awsdocs_AccessLogs_example-log-file.log")
    for line in standard:
        with pytest.raises(Reroute) as info:
            parser().parse(line)
        assert info.value.log_type == "cloudfront"


def test_blank_lines_are_not_events() -> None:
    assert parser().parse("") is None
    assert parser().parse("   ") is None


def test_no_silent_drops() -> None:
    p = parser()
    results = [p.parse(line) for line in RECORDS]
    assert all(isinstance(doc, dict) for doc in results)
    for doc in results:
        assert doc is not None
        assert_no_dash(doc)
        for name in flatten(doc):
            assert name in FIELDS or name.startswith("aws.cloudfront.headers."), name
    assert FIELDS["aws.cloudfront.headers"] == "flattened"


def test_event_original_only_with_keep_original() -> None:
    assert "original" not in parse(HIT)["event"]
    assert parse(HIT, keep_original=True)["event"]["original"] == HIT


def test_never_sniffed() -> None:
    assert not CloudFrontRealtimeParser.sniff("\n".join(RECORDS))
    for path in sorted((CORPUS / "cloudfront_standard").iterdir()):
        assert not CloudFrontRealtimeParser.sniff(read_text(f"cloudfront_standard/{path.name}")[:65536])
