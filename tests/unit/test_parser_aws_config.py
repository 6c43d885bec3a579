"""Golden tests for AWS Config configuration items, on real snapshot and history files from the shared corpus."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from tests.corpus import CORPUS, read_text
from worker.parsers import ParseContext, ParseError, get_parser
from worker.parsers._fields import flatten
from worker.parsers.aws_config import AwsConfigParser

AWSDOCS = "aws_config/awsdocs_deliver-snapshot-cli_example-snapshot.json"
HISTORY = "aws_config/clo_config-history.log"
SNAPSHOT = "aws_config/clo_config-snapshot.log"
FILES = (AWSDOCS, HISTORY, SNAPSHOT)
HISTORY_KEY = "AWSLogs/123456789012/Config/eu-west-1/2022/5/5/ConfigHistory/123456789012_Config_eu-west-1_x.json.gz"
SNAPSHOT_KEY = "AWSLogs/123456789012/Config/eu-west-1/2021/11/15/ConfigSnapshot/123456789012_Config_eu-west-1_x.json.gz"


def items(relative: str) -> list[dict[str, Any]]:
    whole = json.loads(read_text(relative))
    return list(whole["configurationItems"])


def parse(record: dict[str, Any], **ctx: Any) -> dict[str, Any]:
    doc = AwsConfigParser(ParseContext(**ctx)).parse(record)
    assert doc is not None
    return doc


def test_registry() -> None:
    cls = get_parser("aws_config")
    assert cls is AwsConfigParser
    assert cls.framing == "json_records"
    for name in ("configuration", "supplementary_configuration", "tags", "unmapped", "configuration_item_diff"):
        assert cls.fields[f"aws.config.{name}"] == "flattened"
    assert cls.fields["aws.config.resource_creation_time"] == "date"


def test_history_item_lambda_function() -> None:
    item = items(HISTORY)[0]
    doc = parse(item, key=HISTORY_KEY)
    assert doc["@timestamp"] == "2022-05-05T01:36:21.252Z"
    assert doc["event"] == {"kind": "state", "category": ["configuration"], "type": ["change"]}
    assert doc["cloud"] == {"provider": "aws", "account": {"id": "123456789012"}, "region": "eu-west-1"}
    cfg = doc["aws"]["config"]
    assert cfg["resource_type"] == "AWS::Lambda::Function"
    assert cfg["resource_id"] == "VPCFlowLog-LogPipelineLogProcessorFnA0D1C329-vaRLrF25GIlg"
    assert cfg["resource_name"] == "VPCFlowLog-LogPipelineLogProcessorFnA0D1C329-vaRLrF25GIlg"
    assert cfg["resource_arn"] == (
        "arn:aws:lambda:eu-west-1:123456789012:function:VPCFlowLog-LogPipelineLogProcessorFnA0D1C329-vaRLrF25GIlg"
    )
    assert cfg["configuration_item_status"] == "OK"
    assert cfg["configuration_item_version"] == "1.3"
    assert cfg["configuration_state_id"] == "1651714581252"  # a number in the file, text in the document
    assert cfg["availability_zone"] == "Not Applicable"
    assert "availability_zone" not in doc["cloud"]
    assert "configuration_item_md5_hash" not in cfg  # empty in the file
    assert "related_events" not in cfg  # [] in the file
    assert cfg["tags"] == {
        "aws:cloudformation:stack-name": "VPCFlowLog",
        "aws:cloudformation:stack-id": "arn:aws:cloudformation:eu-west-1:123456789012:stack/VPCFlowLog/"
        "d996adf0-cb91-11ec-b2cc-06b9218e039b",
        "aws:cloudformation:logical-id": "LogPipelineLogProcessorFnA0D1C329",
    }
    assert cfg["configuration"] == item["configuration"]
    assert cfg["configuration"]["memorySize"] == 1024
    assert cfg["configuration"]["vpcConfig"]["securityGroupIds"] == ["sg-04b03782612cb485f"]
    assert cfg["supplementary_configuration"] == {"Tags": item["tags"]}
    assert cfg["relationships"][0] == {
        "resource_name": "VPCFlowLog-LogPipelineLogProcessorFnServiceRole8A2-1DP4NCG0TI5I",
        "resource_type": "AWS::IAM::Role",
        "name": "Is associated with",
    }
    assert cfg["relationships"][3] == {
        "resource_id": "subnet-0b873d0b6e73c2f9c",
        "resource_type": "AWS::EC2::Subnet",
        "name": "Is contained in",
    }
    assert "unmapped" not in cfg
    assert "original" not in doc["event"]


def test_history_second_item_is_a_later_state() -> None:
    doc = parse(items(HISTORY)[1], key=HISTORY_KEY)
    assert doc["@timestamp"] == "2022-05-05T01:38:31.323Z"
    assert doc["aws"]["config"]["configuration"]["codeSize"] == 83802


def test_snapshot_items_status_and_event_type() -> None:
    stage, stack = items(SNAPSHOT)
    doc = parse(stage, key=SNAPSHOT_KEY)
    assert doc["@timestamp"] == "2021-11-15T09:11:24.624Z"
    assert doc["event"]["type"] == ["info"]  # an OK item in a snapshot: the resource was listed, not changed
    cfg = doc["aws"]["config"]
    assert cfg["resource_type"] == "AWS::ApiGatewayV2::Stage"
    assert cfg["resource_name"] == "$default"
    assert cfg["resource_creation_time"] == "2021-11-15T05:54:59.676Z"
    assert cfg["configuration"]["autoDeploy"] is True
    assert "supplementary_configuration" not in cfg  # {} in the file
    assert "tags" not in cfg

    doc = parse(stack, key=SNAPSHOT_KEY)
    assert doc["event"]["type"] == ["creation"]
    cfg = doc["aws"]["config"]
    assert cfg["configuration_item_status"] == "ResourceDiscovered"
    assert cfg["availability_zone"] == "Regional"
    assert "availability_zone" not in doc["cloud"]
    assert len(cfg["relationships"]) == 15
    assert cfg["relationships"][-1]["resource_type"] == "AWS::IAM::Role"
    assert cfg["configuration"]["stackName"] == "LogHub-Pipe-89871"


def test_old_style_awsdocs_items() -> None:
    volume, instance = items(AWSDOCS)
    doc = parse(volume, region="us-west-2")
    assert doc["@timestamp"] == "2014-03-07T23:47:08.918Z"
    # `accountId`, `arn`, `configurationStateID` and the misspelled `availibilityZone` of early files.
    assert doc["cloud"] == {
        "provider": "aws",
        "account": {"id": "12345678910"},
        "region": "us-west-2",
        "availability_zone": "us-west-2b",
    }
    cfg = doc["aws"]["config"]
    assert cfg["resource_arn"] == "arn:aws:us-west-2b:123456789012:volume/vol-ce676ccc"
    assert cfg["configuration_state_id"] == "3e660fdf-4e34-4f32-afeb-0ace5bf3d63a"
    assert cfg["related_events"] == ["06c12a39-eb35-11de-ae07-adb69edbb1e4", "c376e30d-71a2-4694-89b7-a5a04ad92281"]
    assert cfg["resource_creation_time"] == "2014-02-27T21:43:53.885Z"
    assert cfg["configuration"]["size"] == 1

    cfg = parse(instance)["aws"]["config"]
    assert cfg["tags"] == {"Name": "integ-test-1", "examplename": "examplevalue"}
    assert cfg["relationships"][1] == {
        "resource_id": "vol-ef0e06ed",
        "resource_type": "AWS::EC2::Volume",
        "name": "Attached Volume",
        "direction": "OUT",
    }
    assert cfg["configuration"]["state"] == {"code": 16, "name": "running"}


def test_record_values_win_over_context() -> None:
    doc = parse(items(HISTORY)[0], account_id="999999999999", region="us-east-1")
    assert doc["cloud"]["account"] == {"id": "123456789012"}
    assert doc["cloud"]["region"] == "eu-west-1"


def test_configuration_as_json_text_is_decoded() -> None:
    item = dict(items(HISTORY)[0])
    item["configuration"] = json.dumps(item["configuration"])
    item["supplementaryConfiguration"] = {"BucketPolicy": '{"policyText": null}', "Plain": "text"}
    cfg = parse(item)["aws"]["config"]
    assert cfg["configuration"]["functionName"] == "VPCFlowLog-LogPipelineLogProcessorFnA0D1C329-vaRLrF25GIlg"
    assert cfg["supplementary_configuration"] == {"BucketPolicy": {"policyText": None}, "Plain": "text"}


def test_configuration_that_is_not_an_object_is_kept_in_unmapped() -> None:
    item = dict(items(HISTORY)[0])
    item["configuration"] = "{truncated"
    cfg = parse(item)["aws"]["config"]
    assert "configuration" not in cfg
    assert cfg["unmapped"] == {"configuration": "{truncated"}


def test_unknown_keys_are_kept() -> None:
    item = dict(items(SNAPSHOT)[0])
    item["recordingFrequency"] = "DAILY"
    item["configurationItemDeliveryTime"] = "2021-11-15T09:12:00.000Z"
    item["brandNewScalar"] = "x"
    item["brandNewObject"] = {"a": 1}
    item["resourceCreationTime"] = "sometime"
    cfg = parse(item)["aws"]["config"]
    assert cfg["recording_frequency"] == "DAILY"
    assert cfg["configuration_item_delivery_time"] == "2021-11-15T09:12:00.000Z"
    assert cfg["brand_new_scalar"] == "x"
    assert cfg["unmapped"] == {"brandNewObject": {"a": 1}, "resourceCreationTime": "sometime"}
    assert "resource_creation_time" not in cfg


@pytest.mark.parametrize(
    ("status", "event_type"),
    [("ResourceDeleted", "deletion"), ("ResourceDeletedNotRecorded", "deletion"), ("ResourceNotRecorded", "info"),
     ("SomethingNew", "info")],
)
def test_status_to_event_type(status: str, event_type: str) -> None:
    item = dict(items(HISTORY)[0], configurationItemStatus=status, configuration=None)
    doc = parse(item)
    assert doc["event"]["type"] == [event_type]
    assert "configuration" not in doc["aws"]["config"]


def test_change_notification_is_unwrapped() -> None:
    item = items(HISTORY)[1]
    notification = {
        "configurationItemDiff": {"changedProperties": {"Configuration.codeSize": {"previousValue": 83801,
                                                                                     "updatedValue": 83802}},
                                  "changeType": "UPDATE"},
        "configurationItem": item,
        "notificationCreationTime": "2022-05-05T01:38:40.123Z",
        "messageType": "ConfigurationItemChangeNotification",
        "recordVersion": "1.3",
    }
    doc = parse(notification)
    cfg = doc["aws"]["config"]
    assert doc["@timestamp"] == "2022-05-05T01:38:31.323Z"
    assert cfg["resource_type"] == "AWS::Lambda::Function"
    assert cfg["message_type"] == "ConfigurationItemChangeNotification"
    assert cfg["notification_creation_time"] == "2022-05-05T01:38:40.123Z"
    assert cfg["record_version"] == "1.3"
    assert cfg["configuration_item_diff"]["changeType"] == "UPDATE"


def test_event_original_only_with_keep_original() -> None:
    item = items(SNAPSHOT)[0]
    doc = parse(item, keep_original=True)
    assert orjson.loads(doc["event"]["original"]) == item


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ([1, 2], "is a JSON list, not an object"),
        ({"fileVersion": "1.0", "configurationItems": []}, "whole AWS Config file object"),
        ({"resourceType": "AWS::S3::Bucket", "resourceId": "b"}, "has no configurationItemCaptureTime"),
        ({"hello": "world"}, "not an AWS Config configuration item"),
        ({"resourceType": "AWS::S3::Bucket", "configurationItemCaptureTime": "later"}, "not an ISO 8601"),
        ({"resourceType": "AWS::S3::Bucket", "configurationItemCaptureTime": True}, "not a timestamp"),
        ({"messageType": "ComplianceChangeNotification", "newEvaluationResult": {}},
         "ComplianceChangeNotification notification is not a configuration item"),
    ],
)
def test_bad_records(record: Any, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        AwsConfigParser(ParseContext()).parse(record)


def test_no_silent_drops() -> None:
    """Every configuration item of every corpus file becomes a document."""
    count = 0
    for relative in FILES:
        p = AwsConfigParser(ParseContext())
        for item in items(relative):
            assert isinstance(p.parse(item), dict), relative
            count += 1
    assert count == 6


def test_no_dash_and_declared_fields() -> None:
    """Outside flattened objects (kept as written) every leaf is declared and nothing is `-` or empty."""
    flattened = tuple(k + "." for k, v in AwsConfigParser.fields.items() if v == "flattened")
    for relative in FILES:
        for item in items(relative):
            doc = parse(item, account_id="123456789012", region="eu-west-1")
            for key, value in flatten(doc).items():
                if key.startswith(flattened):
                    continue
                assert key in AwsConfigParser.fields or key == "aws.config.relationships", key
                assert value != "-" and value != "" and value != [], key
            for rel in doc["aws"]["config"].get("relationships", []):
                for name, value in rel.items():
                    assert f"aws.config.relationships.{name}" in AwsConfigParser.fields, name
                    assert value != "-" and value != "", name


def test_example_parses() -> None:
    doc = parse(orjson.loads(AwsConfigParser.example))
    assert doc["aws"]["config"]["resource_type"] == "AWS::ApiGatewayV2::Stage"


def test_sniff() -> None:
    for relative in FILES:
        assert AwsConfigParser.sniff(read_text(relative)[:65536]), relative
    ndjson = "\n".join(json.dumps(item) for item in items(HISTORY))
    assert AwsConfigParser.sniff(ndjson)
    others = [
        p for p in CORPUS.rglob("*")
        if p.is_file() and p.parent.name not in ("aws_config", "_mappings", "LICENSES")
        and not p.name.endswith("-expected.json")
    ]
    assert len(others) > 20
    for path in others:
        assert not AwsConfigParser.sniff(read_text(str(path.relative_to(CORPUS)))[:65536]), path
    assert not AwsConfigParser.sniff('{"configurationItems": []}')
    assert not AwsConfigParser.sniff("fileVersion configurationItems")
