"""Golden tests for Amazon S3 server access logs, on real samples from the shared corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.corpus import CORPUS, load_expected, read_lines, read_text
from worker.parsers import ParseContext, ParseError, get_parser
from worker.parsers._fields import flatten
from worker.parsers.s3_access import S3AccessParser, region_of_host

FOLDER = "s3access"
ELASTIC = f"{FOLDER}/elastic-integrations_test-s3-server-access.log"
AWSDOCS = f"{FOLDER}/awsdocs_LogFormat_example.log"
CLO = f"{FOLDER}/clo_s3.log"
FILES = (ELASTIC, AWSDOCS, CLO)
OWNER = "36c1f05b76016b78528454e6e0c60e2b7ff7aa20c0a5e4c748276e5b0a2debd2"
HEAD = f'{OWNER} b [24/Dec/2020:20:00:00 +0000] 10.0.0.1 - ID1 REST.GET.OBJECT k "GET /k HTTP/1.1" 200 - 1 1 2 1'
UNQUOTED = f"{OWNER} b [24/Dec/2020:20:00:00 +0000] 10.0.0.1 - ID1 BATCH.DELETE.OBJECT k - 204 - 1 1 2 1 - - - HID"


def parse(line: str, **ctx: Any) -> dict[str, Any]:
    doc = S3AccessParser(ParseContext(**ctx)).parse(line)
    assert doc is not None
    return doc


def assert_no_dash(doc: dict[str, Any]) -> None:
    for key, value in flatten(doc).items():
        assert value != "-", key
        assert value != "", key
        if isinstance(value, list):
            assert "-" not in value, key


def test_registry() -> None:
    cls = get_parser("s3_access")
    assert cls is S3AccessParser
    assert cls.framing == "lines"
    assert cls.fields["aws.s3access.remote_ip"] == "ip"
    assert cls.fields["event.duration"] == "long"
    assert parse(cls.example)["aws"]["s3access"]["aclrequired"] == "Yes"


def test_elastic_line_whole_document() -> None:
    line = read_lines(ELASTIC)[2]
    doc = parse(line, keep_original=True)
    requester = (
        "arn:aws:sts::123456:assumed-role/AWSServiceRoleForTrustedAdvisor/"
        "TrustedAdvisor_627959692251_784ab70b-8cc9-4d37-a2ec-2ff4d0c08af9"
    )
    ua = (
        "AWS-Support-TrustedAdvisor, aws-internal/3 aws-sdk-java/1.11.590 "
        "Linux/4.9.137-0.1.ac.218.74.329.metal1.x86_64 OpenJDK_64-Bit_Server_VM/25.212-b03 java/1.8.0_212 "
        "vendor/Oracle_Corporation"
    )
    assert doc == {
        "@timestamp": "2019-08-01T00:24:43.000Z",
        "event": {
            "kind": "event",
            "category": ["web"],
            "type": ["access"],
            "id": "4DD6D17D1C5C401C",
            "action": "REST.GET.BUCKET",
            "outcome": "success",
            "duration": 2_000_000,
            "original": line,
        },
        "aws": {
            "s3access": {
                "bucket_owner": OWNER,
                "bucket": "test-s3-ks",
                "remote_ip": "89.160.20.156",
                "requester": requester,
                "request_id": "4DD6D17D1C5C401C",
                "operation": "REST.GET.BUCKET",
                "request_uri": "GET /test-s3-ks/?max-keys=0&encoding-type=url&aws-account=627959692251 HTTP/1.1",
                "http_status": 200,
                "bytes_sent": 265,
                "total_time": 2,
                "turn_around_time": 1,
                "user_agent": ua,
                "host_id": "KzvchfojYQnuFC4PABYVJVxIlv/f6r17LRaTSvw7x+bxj4PkkPKT1kX9x8wbqtq40iD4PC881iE=",
                "signature_version": "SigV4",
                "cipher_suite": "ECDHE-RSA-AES128-SHA",
                "authentication_type": "AuthHeader",
                "host_header": "s3.ap-southeast-1.amazonaws.com",
                "tls_version": "TLSv1.2",
            }
        },
        "client": {"address": "89.160.20.156", "ip": "89.160.20.156", "user": {"id": requester}},
        "related": {"ip": ["89.160.20.156"], "user": [OWNER]},
        "http": {
            "request": {"method": "GET"},
            "version": "1.1",
            "response": {"status_code": 200, "body": {"bytes": 265}},
        },
        "url": {
            "original": "/test-s3-ks/?max-keys=0&encoding-type=url&aws-account=627959692251",
            "path": "/test-s3-ks/",
            "query": "max-keys=0&encoding-type=url&aws-account=627959692251",
        },
        "user_agent": {"original": ua},
        "tls": {"cipher": "ECDHE-RSA-AES128-SHA", "version": "1.2", "version_protocol": "tls"},
        "cloud": {"provider": "aws", "region": "ap-southeast-1"},
    }


# Elastic fields that are enrichment, not parsing (GeoIP, the user_agent processor) or ingest bookkeeping.
_NOT_PARSING = ("geo.", "client.geo.", "ecs.", "tags", "event.original", "user_agent.")


@pytest.mark.parametrize("index", range(7))
def test_matches_elastic_expected(index: int) -> None:
    """Every field Elastic's pipeline parses for the 7 expected documents, value for value."""
    theirs = load_expected(f"{ELASTIC}-expected.json")[index]
    ours = flatten(parse(theirs["event"]["original"]))
    expected = {
        key: value
        for key, value in flatten(theirs).items()
        if not key.startswith(_NOT_PARSING) or key == "user_agent.original"
    }
    assert {key: ours.get(key) for key in expected} == expected
    # and nothing Elastic leaves out, apart from the raw line
    assert set(ours) == set(expected)


def test_awsdocs_access_point_acl_and_uppercase_tls() -> None:
    doc = parse(read_lines(AWSDOCS)[0])
    s3 = doc["aws"]["s3access"]
    assert s3["access_point_arn"] == "arn:aws:s3:us-west-1:123456789012:accesspoint/example-AP"
    assert s3["aclrequired"] == "Yes"
    assert s3["tls_version"] == "TLSV1.2"
    assert doc["tls"] == {"cipher": "ECDHE-RSA-AES128-GCM-SHA256", "version": "1.2", "version_protocol": "tls"}
    assert doc["cloud"] == {"provider": "aws", "region": "us-west-1"}
    assert doc["url"] == {
        "original": "/DOC-EXAMPLE-BUCKET1?versioning", "path": "/DOC-EXAMPLE-BUCKET1", "query": "versioning",
    }


def test_error_code_is_failure_and_trailing_space_ignored() -> None:
    line = read_lines(AWSDOCS)[2]
    assert line.endswith("Yes ")
    doc = parse(line)
    assert doc["event"]["outcome"] == "failure"
    assert doc["event"]["code"] == "NoSuchBucketPolicy"
    assert doc["aws"]["s3access"]["error_code"] == "NoSuchBucketPolicy"
    assert doc["http"]["response"] == {"status_code": 404, "body": {"bytes": 297}}
    assert doc["aws"]["s3access"]["aclrequired"] == "Yes"
    assert "extra_fields" not in doc["aws"]["s3access"]


def test_put_object_sizes_and_duration() -> None:
    doc = parse(read_lines(AWSDOCS)[4])
    s3 = doc["aws"]["s3access"]
    assert (s3["key"], s3["object_size"], s3["total_time"], s3["turn_around_time"]) == ("s3-dg.pdf", 4406583, 41754, 28)
    assert "bytes_sent" not in s3
    assert doc["event"]["duration"] == 41_754_000_000
    assert doc["http"] == {"request": {"method": "PUT"}, "version": "1.1", "response": {"status_code": 200}}
    assert doc["url"]["extension"] == "pdf"


def test_clo_assumed_role_requester() -> None:
    doc = parse(read_lines(CLO)[1], account_id="123456789012")
    assert doc["client"]["user"]["id"].startswith("arn:aws:sts::123456789012:assumed-role/LogHub-")
    assert doc["cloud"] == {"provider": "aws", "account": {"id": "123456789012"}, "region": "eu-west-1"}
    assert doc["@timestamp"] == "2021-12-13T09:29:21.000Z"
    assert doc["user_agent"]["original"].startswith("aws-cli/1.18.198 Python/2.7.18")


def test_unquoted_batch_delete_line() -> None:
    doc = parse(read_lines(ELASTIC)[4])
    s3 = doc["aws"]["s3access"]
    assert s3["operation"] == "BATCH.DELETE.OBJECT"
    assert s3["key"] == "jolokia-war-1.5.0.war"
    assert s3["object_size"] == 344017
    assert s3["http_status"] == 204
    for absent in ("request_uri", "bytes_sent", "total_time", "referrer", "user_agent", "version_id"):
        assert absent not in s3
    assert "url" not in doc
    assert "duration" not in doc["event"]
    assert doc["cloud"]["region"] == "eu-central-1"


def test_service_requester_without_remote_ip() -> None:
    doc = parse(read_lines(ELASTIC)[7])
    assert doc["client"] == {"user": {"id": "svc:delivery.logs.amazonaws.com"}}
    assert doc["related"] == {"user": ["67797214d75628047d9c76b18a78cded1a4b069b71f2a9d5a53649c38da8770b"]}
    assert "remote_ip" not in doc["aws"]["s3access"]
    assert doc["aws"]["s3access"]["access_point_arn"].endswith(":accesspoint/example-AP")
    assert doc["cloud"]["region"] == "us-gov-west-1"


def test_missing_status_stays_absent() -> None:
    doc = parse(read_lines(ELASTIC)[8])
    assert "http_status" not in doc["aws"]["s3access"]
    assert "response" not in doc["http"]
    assert doc["event"]["outcome"] == "success"  # as Elastic: failure only with an error code


def test_lifecycle_expiry_line() -> None:
    doc = parse(read_lines(ELASTIC)[9])
    s3 = doc["aws"]["s3access"]
    assert doc["@timestamp"] == "2025-03-25T19:28:02.000Z"
    assert s3["operation"] == "S3.EXPIRE.OBJECT"
    assert s3["requester"] == "AmazonS3"
    assert s3["version_id"] == "qsEq9bDa2VyxyZ4cz0c7oBnF67VYTTij"
    assert s3["host_id"] == "DMlPb9al4CvVBck150CgpEIIYgtSI3HC/atetNVYwPtHZffW6jfpg+BrffhbT9/B"
    assert s3["object_size"] == 317
    assert "request_uri" not in s3  # `"-"`
    for absent in ("http", "url", "user_agent", "tls"):
        assert absent not in doc
    assert doc["client"] == {"user": {"id": "AmazonS3"}}
    assert doc["cloud"] == {"provider": "aws"}


@pytest.mark.parametrize("relative", FILES)
def test_no_silent_drops_and_no_dashes(relative: str) -> None:
    lines = read_lines(relative)
    parser = S3AccessParser(ParseContext())
    docs, refused, skipped = 0, 0, 0
    for line in lines:
        try:
            doc = parser.parse(line)
        except ParseError:
            refused += 1
            continue
        if doc is None:
            skipped += 1
            continue
        docs += 1
        assert_no_dash(doc)
        assert doc["@timestamp"].endswith(".000Z")
    assert docs + refused + skipped == len(lines)
    assert (docs, refused, skipped) == (len(lines), 0, 0)


def test_corpus_line_counts() -> None:
    assert [len(read_lines(f)) for f in FILES] == [10, 5, 6]


def test_keep_original_only_when_asked() -> None:
    line = read_lines(CLO)[0]
    assert "original" not in parse(line)["event"]
    assert parse(line, keep_original=True)["event"]["original"] == line


def test_blank_line_is_not_an_event() -> None:
    parser = S3AccessParser(ParseContext())
    assert parser.parse("") is None
    assert parser.parse("   ") is None


def test_format_drift_extra_columns_kept() -> None:
    line = read_lines(AWSDOCS)[0] + " eu-west-3 newcol1 newcol-2"
    doc = parse(line)
    s3 = doc["aws"]["s3access"]
    assert s3["source_region"] == "eu-west-3"
    assert s3["extra_fields"] == ["newcol1", "newcol-2"]
    assert s3["aclrequired"] == "Yes"


def test_old_short_line_without_newer_columns() -> None:
    doc = parse(HEAD + ' "-" "curl/8.0"')
    s3 = doc["aws"]["s3access"]
    assert s3["user_agent"] == "curl/8.0"
    assert "host_id" not in s3
    assert "tls" not in doc
    assert doc["cloud"] == {"provider": "aws"}


def test_ctx_region_and_account_fallback() -> None:
    line = HEAD + ' "-" "-" - HID SigV4 ECDHE-RSA-AES128-GCM-SHA256 AuthHeader s3.amazonaws.com TLSv1.3'
    doc = parse(line, account_id="111122223333", region="us-east-1")
    assert doc["cloud"] == {"provider": "aws", "account": {"id": "111122223333"}, "region": "us-east-1"}
    assert doc["tls"]["version"] == "1.3"
    # a region the record names wins over the key's
    line = line.replace("s3.amazonaws.com", "b.s3.dualstack.eu-north-1.amazonaws.com")
    assert parse(line, region="us-east-1")["cloud"]["region"] == "eu-north-1"


@pytest.mark.parametrize(("host", "region"), [
    ("s3.ap-southeast-1.amazonaws.com", "ap-southeast-1"),
    ("flow-log-test.s3.us-gov-west-1.amazonaws.com", "us-gov-west-1"),
    ("s3-us-west-2.amazonaws.com", "us-west-2"),
    ("s3-ap-northeast-1.amazonaws.com", "ap-northeast-1"),
    ("b.s3-website-us-east-1.amazonaws.com", "us-east-1"),
    ("b.s3-website.eu-central-1.amazonaws.com", "eu-central-1"),
    ("ap-123456789012.s3-accesspoint.ap-south-1.amazonaws.com", "ap-south-1"),
    ("b.s3.cn-north-1.amazonaws.com.cn", "cn-north-1"),
    ("s3.amazonaws.com", ""),
    ("us-east-1.example.com", ""),
    ("static.example.com", ""),
])
def test_region_of_host(host: str, region: str) -> None:
    assert region_of_host(host) == region


def test_stray_quotes_in_uri_referrer_and_user_agent() -> None:
    # S3 does not escape quotes inside its quoted columns.
    line = (
        f'{OWNER} testing-1234 [20/Jun/2019:03:51:36 +0000] 1.2.3.4 - 63DAF67A2BC0B6C3 REST.GET.OBJECT %2522 '
        '"GET /" HTTP/1.1" 403 AccessDenied 243 - 8 - "ref "x"" "Safari/604.1"" - HID= - '
        "ECDHE-RSA-AES128-GCM-SHA256 - testing-1234.s3.amazonaws.com TLSv1.2"
    )
    s3 = parse(line)["aws"]["s3access"]
    assert s3["request_uri"] == 'GET /" HTTP/1.1'
    assert (s3["http_status"], s3["error_code"], s3["bytes_sent"], s3["total_time"]) == (403, "AccessDenied", 243, 8)
    assert s3["referrer"] == 'ref "x"'
    assert s3["user_agent"] == 'Safari/604.1"'
    assert s3["host_id"] == "HID="
    assert s3["tls_version"] == "TLSv1.2"


def test_quoted_uri_with_unquoted_referrer_and_user_agent() -> None:
    doc = parse(HEAD + " - - - HID")
    assert doc["aws"]["s3access"]["request_uri"] == "GET /k HTTP/1.1"
    assert doc["aws"]["s3access"]["host_id"] == "HID"
    assert "user_agent" not in doc


def test_non_ip_remote_address_is_not_an_ip_field() -> None:
    doc = parse(HEAD.replace("10.0.0.1", "not-an-ip") + ' "-" "-"')
    assert doc["client"] == {"address": "not-an-ip"}
    assert "remote_ip" not in doc["aws"]["s3access"]
    assert "ip" not in doc.get("related", {})


def test_ipv6_remote_address() -> None:
    doc = parse(HEAD.replace("10.0.0.1", "2001:db8::1") + ' "-" "-"')
    assert doc["client"]["ip"] == "2001:db8::1"
    assert doc["related"]["ip"] == ["2001:db8::1"]


def test_time_offset_converted_to_utc() -> None:
    doc = parse(HEAD.replace("[24/Dec/2020:20:00:00 +0000]", "[31/Dec/2020:23:30:00 -0130]") + ' "-" "-"')
    assert doc["@timestamp"] == "2021-01-01T01:00:00.000Z"


@pytest.mark.parametrize(("line", "reason"), [
    ("hello world", "third field is not a [dd/Mon/yyyy:HH:MM:SS +0000] time"),
    (f"{OWNER} b [24/Dec/2020:20:00:00 +0000] 10.0.0.1 - ID1 REST.GET.OBJECT", "fields, at least 18 expected"),
    (HEAD.replace("24/Dec/2020", "24/Foo/2020") + ' "-" "-"', "S3 access log time"),
    (HEAD.replace("20:00:00", "25:00:00") + ' "-" "-"', "S3 access log time"),
    (HEAD.replace(" 200 ", " OK ") + ' "-" "-"', "http_status: not an integer: 'OK'"),
    (UNQUOTED.replace(" 1 1 2 1", " 1 big 2 1"), "object_size: not an integer: 'big'"),
    (UNQUOTED.replace(" 1 1 2 1", " 1 1 2.5 1"), "total_time: not an integer: '2.5'"),
    (HEAD + ' "-" "unterminated', "columns do not line up"),
    (HEAD.replace(" 200 ", " OK ") + ' "-" "a"b"', "columns do not line up"),
])
def test_malformed_lines_are_refused_with_a_reason(line: str, reason: str) -> None:
    with pytest.raises(ParseError) as info:
        S3AccessParser(ParseContext()).parse(line)
    assert reason in str(info.value)


def test_sniff_true_on_samples() -> None:
    for relative in FILES:
        assert S3AccessParser.sniff(read_text(relative)[:65536]), relative
    assert S3AccessParser.sniff("\ufeff" + read_text(ELASTIC))


def _other_corpus_files() -> list[Path]:
    return sorted(
        path for path in CORPUS.glob("*/*")
        if path.is_file() and path.parent.name not in (FOLDER, "_mappings", "LICENSES")
    )


def test_sniff_false_on_other_types() -> None:
    others = _other_corpus_files()
    assert len(others) > 10
    for path in others:
        head = read_text(str(path.relative_to(CORPUS)))[:65536]
        assert not S3AccessParser.sniff(head), path
    assert not S3AccessParser.sniff("")
    assert not S3AccessParser.sniff("hello world\n")
    assert not S3AccessParser.sniff(read_text(f"{ELASTIC}-expected.json"))
