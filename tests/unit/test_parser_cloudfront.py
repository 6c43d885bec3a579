"""Golden tests for CloudFront standard access logs, on real samples from the shared corpus."""

from __future__ import annotations

from typing import Any

import pytest

from tests.corpus import CORPUS, load_expected, read_lines, read_text
from worker.parsers import ParseContext, ParseError, Reroute, get_parser
from worker.parsers._fields import flatten
from worker.parsers.cloudfront import STANDARD_COLUMNS, CloudFrontParser, epoch_timestamp, w3c_timestamp

FOLDER = "cloudfront_standard"
ELASTIC = f"{FOLDER}/elastic-integrations_test-cloudfront.log"
EXPECTED = f"{FOLDER}/elastic-integrations_test-cloudfront.log-expected.json"
AWSDOCS = f"{FOLDER}/awsdocs_AccessLogs_example-log-file.log"
CLO = f"{FOLDER}/clo_cloudfront.log"
CLO_GZ = f"{FOLDER}/clo_cloudfront.log.gz"
FILES = (AWSDOCS, CLO, CLO_GZ, ELASTIC)

HEADER = "#Fields: " + " ".join(STANDARD_COLUMNS)


def parser(**ctx: Any) -> CloudFrontParser:
    return CloudFrontParser(ParseContext(**ctx))


def parse(line: str, **ctx: Any) -> dict[str, Any]:
    doc = parser(**ctx).parse(line)
    assert doc is not None
    return doc


def parse_file(relative: str, **ctx: Any) -> list[dict[str, Any] | ParseError | None]:
    """One parser for the whole file, as the pipeline does for one S3 object."""
    p = parser(**ctx)
    out: list[dict[str, Any] | ParseError | None] = []
    for line in read_lines(relative):
        try:
            out.append(p.parse(line))
        except ParseError as exc:
            out.append(exc)
    return out


def assert_no_dash(doc: dict[str, Any]) -> None:
    for key, value in flatten(doc).items():
        assert value != "-", key
        assert value != "", key
        if isinstance(value, list):
            assert "-" not in value, key


def test_registry() -> None:
    cls = get_parser("cloudfront")
    assert cls is CloudFrontParser
    assert cls.framing == "lines"
    assert cls.fields["@timestamp"] == "date"
    assert cls.fields["source.ip"] == "ip"
    assert cls.fields["network.forwarded_ip"] == "ip"
    assert cls.fields["http.response.bytes"] == "long"
    assert cls.fields["aws.cloudfront.time_to_first_byte"] == "float"
    assert cls.routing and cls.example


def test_example_is_a_corpus_record() -> None:
    assert CloudFrontParser.example in read_lines(AWSDOCS)
    doc = parse(CloudFrontParser.example)
    assert doc["event"]["id"] == "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ=="


def test_header_lines_are_not_events_and_declare_columns() -> None:
    p = parser()
    lines = read_lines(AWSDOCS)
    assert lines[0] == "#Version: 1.0"
    assert p.parse(lines[0]) is None
    assert p.parse(lines[1]) is None
    assert p.parse("") is None
    assert p.parse("#Software: Amazon CloudFront") is None


def test_hit_over_https_every_field() -> None:
    lines = read_lines(AWSDOCS)
    p = parser(keep_original=True, account_id="123456789012")
    p.parse(lines[0])
    p.parse(lines[1])
    doc = p.parse(lines[2])
    assert doc == {
        "@timestamp": "2019-12-04T21:02:31.000Z",
        "event": {
            "kind": "event",
            "category": ["web"],
            "type": ["access"],
            "outcome": "success",
            "id": "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==",
            "duration": 1_000_000,
            "original": lines[2],
        },
        "aws": {
            "cloudfront": {
                "edge_location": "LAX1",
                "edge_result_type": "Hit",
                "edge_response_result_type": "Hit",
                "edge_detailed_result_type": "Hit",
                "time_to_first_byte": 0.001,
                "content_type": "text/html",
                "domain": "d111111abcdef8.cloudfront.net",
            }
        },
        "source": {"address": "192.0.2.100", "ip": "192.0.2.100", "port": 11040},
        "network": {"type": "ipv4", "protocol": "https"},
        "destination": {"address": "d111111abcdef8.cloudfront.net", "domain": "d111111abcdef8.cloudfront.net"},
        "url": {
            "path": "/index.html",
            "extension": "html",
            "scheme": "https",
            "domain": "d111111abcdef8.cloudfront.net",
            "full": "https://d111111abcdef8.cloudfront.net/index.html",
        },
        "user_agent": {
            "original": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/78.0.3904.108 Safari/537.36"
        },
        "tls": {"version_protocol": "tls", "version": "1.2", "cipher": "ECDHE-RSA-AES128-GCM-SHA256"},
        "http": {
            "version": "2.0",
            "request": {
                "bytes": 23,
                "method": "GET",
                "id": "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==",
            },
            "response": {"bytes": 392, "status_code": 200, "mime_type": "text/html", "body": {"bytes": 78}},
        },
        "related": {"ip": ["192.0.2.100"], "hosts": ["d111111abcdef8.cloudfront.net"]},
        "cloud": {"provider": "aws", "account": {"id": "123456789012"}},
    }


def test_origin_error_over_http_with_alternate_domain() -> None:
    docs = parse_file(ELASTIC)
    doc = docs[5]
    assert isinstance(doc, dict)
    assert doc["@timestamp"] == "2019-12-13T22:36:27.000Z"
    assert doc["event"]["outcome"] == "failure"
    assert doc["event"]["duration"] == 102_000_000
    assert doc["http"]["response"]["status_code"] == 502
    assert doc["http"]["request"]["referrer"] == "http://www.example.com/"
    assert doc["http"]["version"] == "1.1"
    assert doc["aws"]["cloudfront"]["edge_detailed_result_type"] == "OriginDnsError"
    assert doc["aws"]["cloudfront"]["edge_location"] == "SEA19-C1"
    # cs(Host) is the distribution, x-host-header the name the viewer asked for
    assert doc["aws"]["cloudfront"]["domain"] == "d111111abcdef8.cloudfront.net"
    assert doc["destination"] == {"address": "www.example.com", "domain": "www.example.com"}
    assert doc["url"]["full"] == "http://www.example.com/favicon.ico"
    assert doc["related"]["hosts"] == ["d111111abcdef8.cloudfront.net", "www.example.com"]
    assert "tls" not in doc
    assert_no_dash(doc)


def test_ipv6_viewer() -> None:
    doc = parse_file(ELASTIC)[3]
    assert isinstance(doc, dict)
    assert doc["source"]["ip"] == "2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6"
    assert doc["network"]["type"] == "ipv6"
    assert doc["aws"]["cloudfront"]["time_to_first_byte"] == 0.0
    assert "duration" in doc["event"] and doc["event"]["duration"] == 0


def test_query_string_and_status_000() -> None:
    docs = parse_file(ELASTIC)
    post, aborted = docs[8], docs[9]
    assert isinstance(post, dict) and isinstance(aborted, dict)
    assert post["http"]["request"]["method"] == "POST"
    assert post["url"]["query"] == "source=global"
    assert post["url"]["full"] == "https://test.com/getApplications?source=global"
    assert "extension" not in post["url"]
    assert post["http"]["response"]["mime_type"] == "application/json;charset=UTF-8"
    assert "body" not in post["http"]["response"]
    assert post["tls"] == {"version_protocol": "tls", "version": "1.3", "cipher": "TLS_AES_128_GCM_SHA256"}
    assert post["event"]["outcome"] == "success"
    # 000: the viewer closed the connection before the response
    assert aborted["http"]["response"]["status_code"] == 0
    assert aborted["event"]["outcome"] == "failure"


def test_forwarded_for_lists() -> None:
    docs = parse_file(ELASTIC)
    plain, spaced, local = docs[10], docs[11], docs[12]
    assert isinstance(plain, dict) and isinstance(spaced, dict) and isinstance(local, dict)
    assert plain["network"]["forwarded_ip"] == ["81.2.69.142", "216.160.83.56"]
    assert plain["related"]["ip"] == ["81.2.69.143", "81.2.69.142", "216.160.83.56"]
    assert spaced["network"]["forwarded_ip"] == ["81.2.69.142", "216.160.83.56"]
    assert "x_forwarded_for" not in spaced["aws"]["cloudfront"]
    # Elastic maps a `localhost:port` entry to the loopback address
    assert local["network"]["forwarded_ip"] == ["127.0.0.1"]


def test_short_line_of_an_older_layout_cookie_and_encoded_user_agent() -> None:
    line = read_lines(ELASTIC)[-1]
    assert len(line.split("\t")) == 31
    doc = parse(line)
    assert doc["@timestamp"] == "2024-07-13T15:29:45.000Z"
    assert doc["url"]["path"] == "/en(test)"
    assert doc["http"]["response"]["status_code"] == 404
    assert doc["aws"]["cloudfront"]["cookies"] == "cookie"
    assert doc["user_agent"]["original"] == (
        "User-Agent: Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 5.1; 360SE)"
    )
    assert "body" not in doc["http"]["response"] and "range_start" not in doc["aws"]["cloudfront"]
    assert doc["http"]["response"]["mime_type"] == "text/html"


def test_header_without_trailing_newline_file() -> None:
    docs = parse_file(CLO)
    assert docs[:2] == [None, None]
    last = docs[3]
    assert isinstance(last, dict)
    assert last["@timestamp"] == "2022-03-24T22:14:13.000Z"
    assert last["event"]["duration"] == 1_044_000_000
    assert last["http"]["request"]["referrer"] == "https://d5szyetdhzssss.cloudfront.net/clusters/opensearch-domains"
    assert "mime_type" not in last["http"]["response"]


def test_synthetic_gz_sample_with_fractional_content_length_is_refused() -> None:
    docs = parse_file(CLO_GZ)
    assert docs[:2] == [None, None]
    for result in docs[2:]:
        assert isinstance(result, ParseError)
        assert "sc-content-len" in str(result) and "not an integer" in str(result)
    # The same line with a whole content length parses, raw spaces in the user agent and all.
    line = read_lines(CLO_GZ)[2].replace("570129.7648412298", "570129")
    doc = parse(line)
    assert doc["http"]["response"]["body"] == {"bytes": 570129}
    assert doc["user_agent"]["original"].startswith("Mozilla/5.0 (iPad; CPU iPad OS 12_4_8 like Mac OS X)")
    assert doc["network"]["protocol"] == "ws"
    assert doc["url"]["full"] == "ws://test.cloudfront.net/Javascript-Master.png"
    assert doc["aws"]["cloudfront"]["edge_result_type"] == "RefreshHit"
    assert "fle_encrypted_fields" not in doc["aws"]["cloudfront"]  # ` -`
    assert doc["event"]["duration"] == 1_100_059_023


def test_no_silent_drops() -> None:
    counts = {"docs": 0, "headers": 0, "refused": 0}
    for relative in FILES:
        lines = read_lines(relative)
        results = parse_file(relative)
        assert len(results) == len(lines)
        for line, result in zip(lines, results, strict=True):
            if result is None:
                assert line.startswith("#"), line
                counts["headers"] += 1
            elif isinstance(result, ParseError):
                counts["refused"] += 1
            else:
                counts["docs"] += 1
                assert_no_dash(result)
                for name in flatten(result):
                    assert name in CloudFrontParser.fields, name
    assert counts == {"docs": 20, "headers": 8, "refused": 2}


def test_agrees_with_elastic_expected_documents() -> None:
    """Every field both sides have agrees, for every expected document (paired by event.original)."""
    ours_by_line = {}
    p = parser(keep_original=True)
    for line in read_lines(ELASTIC):
        ours_by_line[line] = p.parse(line)
    skipped = ("source.geo.", "source.as.", "ecs.", "tags", "event.original")
    compared = 0
    for theirs in load_expected(EXPECTED):
        original = theirs["event"]["original"]
        # four expected documents come from an older, space-separated copy of the input
        ours = ours_by_line.get(original) or parse(original)
        assert ours is not None
        flat = flatten(ours)
        for key, value in flatten(theirs).items():
            if key.startswith(skipped) or key not in flat:
                continue
            mine = flat[key]
            if isinstance(mine, list) and not isinstance(value, list):
                value = [value]
            assert mine == value or sorted(map(str, mine)) == sorted(map(str, value)), (key, mine, value)
            compared += 1
        assert flat["event.id"] == theirs["event"]["id"]
    assert compared > 250


def test_space_separated_copy_of_a_line() -> None:
    line = read_lines(ELASTIC)[9]
    assert parse(line.replace("\t", " ")) == parse(line)


def test_custom_header_reorders_and_keeps_unknown_columns() -> None:
    p = parser()
    assert p.parse("#Version: 1.0") is None
    assert p.parse("#Fields: time date c-ip sc-status cs(X-Tenant) cs-uri-stem") is None
    doc = p.parse("08:01:02\t2024-02-29\t198.51.100.7\t304\tacme%20corp\t/a%20b/c.css\tleftover")
    assert doc is not None
    assert doc["@timestamp"] == "2024-02-29T08:01:02.000Z"
    assert doc["source"]["ip"] == "198.51.100.7"
    assert doc["http"]["response"]["status_code"] == 304
    assert doc["url"] == {"path": "/a b/c.css", "extension": "css"}
    assert doc["aws"]["cloudfront"]["cs_x_tenant"] == "acme%20corp"
    assert doc["aws"]["cloudfront"]["extra_fields"] == ["leftover"]


def test_standard_logging_v2_epoch_columns() -> None:
    p = parser()
    p.parse("#Fields: timestamp(ms) DistributionId c-ip sc-status c-country asn")
    doc = p.parse("1719850143123\tE1R2AYG0L5JQ2M\t203.0.113.9\t200\tDE\t3320")
    assert doc is not None
    assert doc["@timestamp"] == "2024-07-01T16:09:03.123Z"
    assert doc["aws"]["cloudfront"]["distribution_id"] == "E1R2AYG0L5JQ2M"
    assert doc["source"]["geo"] == {"country_iso_code": "DE"}
    assert doc["source"]["as"] == {"number": 3320}


def test_format_drift_extra_trailing_column_is_kept() -> None:
    line = read_lines(AWSDOCS)[3]
    doc = parse(line + "\tnew-value\t-")
    assert doc["aws"]["cloudfront"]["extra_fields"] == ["new-value", "-"]
    # a trailing tab (an empty 34th column) is not data
    trailing = read_lines(AWSDOCS)[4]
    assert trailing.endswith("\t")
    assert "extra_fields" not in parse(trailing)["aws"]["cloudfront"]


def test_headerless_prefix_of_the_default_layout() -> None:
    """Files from before 2019 carry fewer columns; without a header the documented order is assumed."""
    line = "\t".join(read_lines(AWSDOCS)[2].split("\t")[:18])
    doc = parse(line)
    assert doc["http"]["request"]["bytes"] == 23
    assert "tls" not in doc and "duration" not in doc["event"]


def test_decoding_follows_cloudfront_encoding() -> None:
    fields = read_lines(AWSDOCS)[2].split("\t")
    fields[7] = "/caf%C3%A9/menu%2520v2.pdf"
    fields[10] = "Mozilla/5.0%20(compatible;%20bingbot/2.0;%20+http://www.bing.com/bingbot.htm)"
    fields[11] = "q=a%2520b&lang=fr"
    doc = parse("\t".join(fields))
    assert doc["url"]["path"] == "/café/menu%20v2.pdf"
    assert doc["url"]["query"] == "q=a%20b&lang=fr"
    assert doc["url"]["full"].endswith("/caf%C3%A9/menu%2520v2.pdf?q=a%2520b&lang=fr")
    # `+` is not part of CloudFront's encoding: it stays a plus sign
    assert doc["user_agent"]["original"] == "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"


def test_unusual_values_are_kept_not_guessed() -> None:
    fields = read_lines(AWSDOCS)[2].split("\t")
    fields[19] = "203.0.113.50, unknown"
    fields[20] = "PQv2-hybrid"
    fields[4] = "not-an-ip"
    doc = parse("\t".join(fields))
    assert doc["network"]["forwarded_ip"] == ["203.0.113.50"]
    assert doc["aws"]["cloudfront"]["x_forwarded_for"] == "203.0.113.50, unknown"
    assert doc["tls"] == {"cipher": "ECDHE-RSA-AES128-GCM-SHA256"}
    assert doc["aws"]["cloudfront"]["ssl_protocol"] == "PQv2-hybrid"
    assert doc["source"] == {"address": "not-an-ip", "port": 11040}
    assert doc["related"] == {"hosts": ["d111111abcdef8.cloudfront.net"], "ip": ["203.0.113.50"]}
    assert "type" not in doc["network"]


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("this is not a log line at all", "date/time"),
        ("garbage", "no tab-separated columns"),
        ("2019-12-04\t25:02:31\tLAX1\t392", "date/time"),
        ("2019/12/04\t21:02:31\tLAX1\t392", "date/time"),
        ("2019-12-04", "no tab-separated columns"),
        ("2019-12-04\t", "date/time"),
        ("2019-12-04\t21:02:31\tLAX1\tmany", "sc-bytes: not an integer"),
        ("2019-12-04\t21:02:31\tLAX1\t392\t192.0.2.1\tGET\td.cloudfront.net\t/\tOK", "sc-status: not an integer"),
    ],
)
def test_malformed_lines(line: str, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parser().parse(line)


def test_empty_fields_header_is_refused() -> None:
    with pytest.raises(ParseError, match="no columns"):
        parser().parse("#Fields: ")


def test_real_time_record_without_header_is_rerouted() -> None:
    with pytest.raises(Reroute) as info:
        parser().parse("1591112398.123\t192.0.2.1\t0.002\t200\t3196\tGET\thttps")
    assert info.value.log_type == "cloudfront_realtime"
    # ... but not when a header says the first column is an epoch timestamp
    p = parser()
    p.parse("#Fields: timestamp c-ip sc-status")
    doc = p.parse("1591112398.123\t192.0.2.1\t200")
    assert doc is not None and doc["@timestamp"] == "2020-06-02T15:39:58.123Z"


def test_event_original_only_with_keep_original() -> None:
    line = read_lines(AWSDOCS)[2]
    assert "original" not in parse(line)["event"]
    assert parse(line, keep_original=True)["event"]["original"] == line


def test_cloud_region_from_context() -> None:
    doc = parse(read_lines(AWSDOCS)[2], region="us-east-1")
    assert doc["cloud"] == {"provider": "aws", "region": "us-east-1"}


def test_timestamp_helpers() -> None:
    assert w3c_timestamp("2019-12-04", "21:02:31") == "2019-12-04T21:02:31.000Z"
    assert epoch_timestamp("1591112398.1") == "2020-06-02T15:39:58.100Z"
    assert epoch_timestamp("1591112398") == "2020-06-02T15:39:58.000Z"
    assert epoch_timestamp("1591112398123", millis=True) == "2020-06-02T15:39:58.123Z"
    with pytest.raises(ParseError):
        epoch_timestamp("yesterday")
    with pytest.raises(ParseError):
        w3c_timestamp("2019-13-01", "10:00:00")


@pytest.mark.parametrize("relative", FILES)
def test_sniff_corpus_samples(relative: str) -> None:
    assert CloudFrontParser.sniff(read_text(relative)[:65536])


def test_sniff_headerless_stream() -> None:
    lines = read_lines(AWSDOCS)[2:]
    assert CloudFrontParser.sniff("\n".join(lines))
    assert not CloudFrontParser.sniff("\n".join(line.replace("\t", " ") for line in lines))


def other_samples() -> list[str]:
    out = []
    for path in sorted(CORPUS.rglob("*")):
        relative = path.relative_to(CORPUS).as_posix()
        if not path.is_file() or relative.startswith((FOLDER, "LICENSES", "_mappings")) or path.suffix == ".md":
            continue
        out.append(relative)
    return out


@pytest.mark.parametrize("relative", other_samples())
def test_sniff_false_on_other_types(relative: str) -> None:
    try:
        head = read_text(relative)[:65536]
    except UnicodeDecodeError:
        pytest.skip("binary sample")
    assert not CloudFrontParser.sniff(head)
