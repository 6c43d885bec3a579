"""Golden tests for CloudTrail records, on real samples from the shared corpus."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.corpus import read_json_records
from worker.parsers import ParseContext, ParseError, get_parser
from worker.parsers._fields import flatten, snake_case
from worker.parsers.cloudtrail import CloudTrailParser

CONSOLE = "cloudtrail/elastic-integrations_test-console-login-json.log"
TLS = "cloudtrail/elastic-integrations_test-tls-details-json.log"


def parse(record: dict[str, Any], **ctx: Any) -> dict[str, Any]:
    doc = CloudTrailParser(ParseContext(**ctx)).parse(record)
    assert doc is not None
    return doc


def test_registry() -> None:
    cls = get_parser("cloudtrail")
    assert cls is CloudTrailParser
    assert cls.framing == "json_records"


def test_console_login_success() -> None:
    doc = parse(read_json_records(CONSOLE)[0])
    assert doc["@timestamp"] == "2014-07-16T15:49:27.000Z"
    assert doc["event"] == {
        "kind": "event",
        "category": ["authentication"],
        "type": ["info"],
        "action": "ConsoleLogin",
        "provider": "signin.amazonaws.com",
        "id": "3fcfb182-98f8-4744-bd45-10aEXAMPLE",
        "outcome": "success",
    }
    assert doc["source"] == {"address": "89.160.20.156", "ip": "89.160.20.156"}
    assert doc["user"] == {"id": "AIDACKCEVSQ6C2EXAMPLE", "name": "JohnDoe"}
    assert doc["related"] == {"user": ["JohnDoe"]}
    assert doc["cloud"] == {"provider": "aws", "region": "us-east-2", "account": {"id": "111122223333"}}
    assert doc["user_agent"]["original"].startswith("Mozilla/5.0 (Windows NT 6.1; WOW64; rv:24.0)")
    ct = doc["aws"]["cloudtrail"]
    assert ct["event_version"] == "1.05"
    assert ct["user_identity"] == {"type": "IAMUser", "arn": "arn:aws:iam::111122223333:user/JohnDoe"}
    assert ct["response_elements"] == {"ConsoleLogin": "Success"}
    assert ct["additional_eventdata"] == {
        "MobileVersion": "No",
        "LoginTo": "https://console.aws.amazon.com/s3/",
        "MFAUsed": "No",
    }
    assert ct["console_login"] == {
        "additional_eventdata": {
            "mobile_version": False,
            "login_to": "https://console.aws.amazon.com/s3/",
            "mfa_used": False,
        }
    }
    assert "request_parameters" not in ct  # null in the record


def test_console_login_failure_and_assumed_role() -> None:
    failed = parse(read_json_records(CONSOLE)[1])
    assert failed["event"]["outcome"] == "failure"
    assert failed["aws"]["cloudtrail"]["error_message"] == "Failed authentication"
    role = parse(read_json_records(CONSOLE)[2])
    # for an assumed role the acting identity is the role, named by the session issuer
    assert role["user"] == {"id": "AROAIDPPEZS35WEXAMPLE:AssumedRoleSessionName", "name": "RoleToBeAssumed"}
    assert "related" not in role
    identity = role["aws"]["cloudtrail"]["user_identity"]
    assert identity["access_key_id"] == "AKIAIOSFODNN7EXAMPLE"
    assert identity["session_context"] == {
        "mfa_authenticated": "false",
        "creation_date": "2013-11-02T01:06:28.000Z",  # basic ISO format in the record
        "session_issuer": {
            "type": "Role",
            "principal_id": "AROAIDPPEZS35WEXAMPLE",
            "arn": "arn:aws:iam::123456789012:role/RoleToBeAssumed",
            "account_id": "123456789012",
        },
    }
    assert role["cloud"]["account"]["id"] == "123456789012"


def test_tls_details_and_invoked_by() -> None:
    doc = parse(read_json_records(TLS)[0])
    assert doc["tls"] == {
        "version_protocol": "tls",
        "version": "1.2",
        "cipher": "ECDHE-RSA-AES128-GCM-SHA256",
        "client": {"server_name": "ssm.us-west-2.amazonaws.com"},
    }
    ct = doc["aws"]["cloudtrail"]
    assert ct["user_identity"]["invoked_by"] == "signin.amazonaws.com"
    assert ct["request_id"] == "EXAMPLE-44b9-41cd-90f2-EXAMPLE"
    assert ct["event_type"] == "AwsApiCall"
    assert ct["recipient_account_id"] == "0123456789012"
    assert ct["request_parameters"]["userName"] == "Alice"
    assert ct["response_elements"]["sSHPublicKey"]["status"] == "Active"
    assert doc["user"]["target"] == {"name": "Alice"}
    assert "tls_details" not in ct and "unmapped" not in ct


def test_non_ip_source_error_code_and_booleans() -> None:
    doc = parse(read_json_records(TLS)[1])
    assert doc["source"] == {"address": "81.2.69.142, 192.168.10.10"}  # not one IP: no source.ip
    assert doc["event"]["outcome"] == "failure"  # errorCode present, whatever its value
    ct = doc["aws"]["cloudtrail"]
    assert ct["error_code"] == "200"
    assert ct["management_event"] is True
    assert ct["read_only"] is False
    assert ct["event_category"] == "Management"
    assert ct["additional_eventdata"]["user"]["userId"] == 13
    assert "tls" in doc and "version" not in doc["tls"]  # "tlsVersion" is not a TLS version
    assert ct["user_identity"] == {"type": "SAMLUser"}
    assert doc["user"] == {"name": "some.user@my.company.com"}


def test_service_name_source_is_an_address_only() -> None:
    record = dict(read_json_records(CONSOLE)[0], sourceIPAddress="ec2.amazonaws.com")
    doc = parse(record)
    assert doc["source"] == {"address": "ec2.amazonaws.com"}
    ipv6 = parse(dict(record, sourceIPAddress="2001:db8::5"))
    assert ipv6["source"]["ip"] == "2001:db8::5"


def test_new_top_level_keys() -> None:
    record = read_json_records(TLS)[2]
    doc = parse(record)
    ct = doc["aws"]["cloudtrail"]
    assert ct["session_credential_from_console"] == "true"
    extra = dict(record, newScalarField="x", edgeDeviceDetails={"deviceId": "d-1"}, emptyThing="")
    ct = parse(extra)["aws"]["cloudtrail"]
    assert ct["new_scalar_field"] == "x"
    assert ct["unmapped"] == {"edgeDeviceDetails": {"deviceId": "d-1"}}
    assert "empty_thing" not in ct


def test_records_of_one_shape_are_read_by_their_own_values() -> None:
    """What to copy is planned per set of keys: records sharing keys, or the same keys in another order, or with
    an empty free-form part, still give each its own document."""
    record = read_json_records(TLS)[2]
    parser = CloudTrailParser(ParseContext())
    first = parser.parse(record)
    same_keys = dict(record, eventName="Other", requestParameters={}, errorCode="")
    second = parser.parse(same_keys)
    reordered = parser.parse(dict(reversed(list(record.items()))))
    assert first is not None and second is not None and reordered is not None
    assert second["event"]["action"] == "Other"
    assert "request_parameters" not in second["aws"]["cloudtrail"]
    assert "error_code" not in second["aws"]["cloudtrail"]
    assert reordered == first
    assert parser.parse(dict(record, digestStartTime="x")) is None
    with pytest.raises(ParseError):
        parser.parse({"Records": [record]})


def test_records_file_examples_categorisation() -> None:
    create_user = parse(read_json_records("cloudtrail/awsdocs_cloudtrail-log-file-examples_block5.json")[0])
    assert create_user["event"]["category"] == ["iam"]
    assert create_user["event"]["type"] == ["user", "creation"]
    assert create_user["user"] == {"id": "EX_PRINCIPAL_ID", "name": "Alice",
                                   "target": {"name": "Bob", "id": "EXAMPLEUSERID"}}
    assert create_user["related"] == {"user": ["Alice", "Bob"]}
    add = parse(read_json_records("cloudtrail/awsdocs_cloudtrail-log-file-examples_block6.json")[0])
    assert add["event"]["type"] == ["group", "change"]
    assert add["group"] == {"name": "admin"}
    start = parse(read_json_records("cloudtrail/awsdocs_cloudtrail-log-file-examples_block2.json")[0])
    assert start["event"]["type"] == ["info"]
    assert "category" not in start["event"]
    assert start["aws"]["cloudtrail"]["request_parameters"] == {
        "instancesSet": {"items": [{"instanceId": "i-ebeaf9e2"}]}
    }
    failed = parse(read_json_records("cloudtrail/awsdocs_cloudtrail-log-file-examples_block8.json")[0])
    assert failed["event"]["outcome"] == "failure"
    assert failed["aws"]["cloudtrail"]["error_code"] == "TrailNotFoundException"


def test_assume_role_resources_deduplicated() -> None:
    record = read_json_records("cloudtrail/elastic-integrations_test-assume-role-json.log")[0]
    doc = parse(record)
    assert doc["event"]["category"] == ["authentication"]
    assert doc["aws"]["cloudtrail"]["resources"] == [
        {"arn": "arn:aws:iam::111122223333:role/JohnRole2", "account_id": "111111111111", "type": "AWS::IAM::Role"}
    ]
    doubled = dict(record, resources=record["resources"] * 2)
    assert len(parse(doubled)["aws"]["cloudtrail"]["resources"]) == 1


@pytest.mark.parametrize(
    "relative",
    [
        "cloudtrail/elastic-integrations_test-cloudtrail-digest-json.log",
        "cloudtrail/awsdocs_digest-file-structure_block2.json",
        "cloudtrail/awsdocs_digest-file-structure_block3.json",
    ],
)
def test_digest_records_are_not_events(relative: str) -> None:
    for record in read_json_records(relative):
        assert CloudTrailParser(ParseContext()).parse(record) is None


def test_insight_events_are_kept() -> None:
    records = read_json_records("cloudtrail/awsdocs_cloudtrail-log-file-examples_block9.json")
    assert len(records) == 2
    doc = parse(records[0])
    ct = doc["aws"]["cloudtrail"]
    assert ct["event_type"] == "AwsCloudTrailInsight"
    assert ct["event_category"] == "Insight"
    assert ct["insight_details"]["insightType"] == "ApiCallRateInsight"
    assert ct["insight_details"]["state"] == "Start"
    assert ct["shared_event_id"] == "EXAMPLE2-1729-42f1-b735-5d8c0EXAMPLE"
    assert doc["cloud"]["account"]["id"] == "123456789012"  # no userIdentity: the recipient account
    assert doc["@timestamp"] == "2019-11-14T00:51:00.000Z"
    assert "action" not in doc["event"]
    beats = parse(read_json_records("cloudtrail/beats_insight-json.log")[0])
    assert beats["aws"]["cloudtrail"]["insight_details"]["eventName"] == "AttachUserPolicy"


def test_keep_original_is_the_record_as_json() -> None:
    record = read_json_records(CONSOLE)[0]
    doc = parse(record, keep_original=True)
    assert json.loads(doc["event"]["original"]) == record


def test_bad_records() -> None:
    p = CloudTrailParser(ParseContext())
    with pytest.raises(ParseError, match="not an object"):
        p.parse(["a"])
    with pytest.raises(ParseError, match="eventTime"):
        p.parse({"eventName": "X"})
    with pytest.raises(ParseError, match="eventTime"):
        p.parse({"eventName": "X", "eventTime": "last tuesday"})
    with pytest.raises(ParseError, match="Records"):
        p.parse({"Records": []})


def test_free_form_objects_are_declared_flattened() -> None:
    fields = CloudTrailParser.fields
    for name in ("request_parameters", "response_elements", "additional_eventdata", "service_event_details",
                 "insight_details", "unmapped"):
        assert fields[f"aws.cloudtrail.{name}"] == "flattened"
    assert fields["source.ip"] == "ip"
    assert fields["@timestamp"] == "date"
    assert fields["aws.cloudtrail.user_identity.session_context.creation_date"] == "date"


def test_every_emitted_typed_field_is_declared() -> None:
    """Outside flattened objects, every bool/number/date/ip leaf must be declared."""
    flattened = tuple(k + "." for k, v in CloudTrailParser.fields.items() if v == "flattened")
    files = [CONSOLE, TLS, "cloudtrail/elastic-integrations_test-assume-role-json.log",
             "cloudtrail/awsdocs_cloudtrail-log-file-examples_block4.json",
             "cloudtrail/opensearch-catalog_aws_cloudtrail-raw-sample.json"]
    for relative in files:
        for record in read_json_records(relative):
            for key, value in flatten(parse(record)).items():
                if key.startswith(flattened):
                    continue
                if isinstance(value, bool):
                    assert CloudTrailParser.fields.get(key) == "boolean", key
                elif isinstance(value, (int, float)):
                    raise AssertionError(f"undeclared number {key}")
                if key.endswith(("date", ".ip")) or key == "@timestamp":
                    assert key in CloudTrailParser.fields, key


def test_snake_case() -> None:
    assert snake_case("eventVersion") == "event_version"
    assert snake_case("requestID") == "request_id"
    assert snake_case("sourceIPAddress") == "source_ip_address"
    assert snake_case("pkt-srcaddr") == "pkt_srcaddr"
