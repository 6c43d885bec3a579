"""AWS Config configuration items (snapshot and history files on S3) -> one ECS `state` document per item.

AWS Config delivers `{"fileVersion": "1.0", ["configSnapshotId": ...,] "configurationItems": [...]}` objects
under `AWSLogs/<account>/Config/<region>/<y>/<m>/<d>/ConfigSnapshot|ConfigHistory/`; the framer splits
`configurationItems`, so `parse` sees one configuration item: the recorded state of one resource at one time.
Elastic has no AWS Config integration and ECS has no resource fields, so the item's own fields go under
`aws.config.*` with snake_case names, and only what ECS does have is mapped there:

- `@timestamp` = `configurationItemCaptureTime` (when Config recorded the state); `cloud.account.id` =
  `awsAccountId` (`accountId` in older items), `cloud.region` = `awsRegion`, `cloud.availability_zone` =
  `availabilityZone` when it is a real zone (Config also writes "Not Applicable", "Regional", "Multiple
  Availability Zones"; the value as written is always kept in `aws.config.availability_zone`).
- `aws.config.resource_type` / `resource_id` / `resource_name` / `resource_arn` (`ARN` or `arn`),
  `resource_creation_time`, `configuration_item_status`, `configuration_item_version` (`version` in API
  items), `configuration_state_id` (a number in current files, a UUID in old ones: kept as text),
  `configuration_item_md5_hash`, `configuration_item_delivery_time`, `recording_frequency`, `related_events`
  (CloudTrail event ids), `relationships` (a list of `{resource_type, resource_id, resource_name, name,
  direction}`; Config pads `name` with a trailing space, which is stripped).
- `event.kind: state`, `event.category: [configuration]`, `event.type`: `creation` for ResourceDiscovered,
  `deletion` for ResourceDeleted(NotRecorded), `info` for ResourceNotRecorded and for OK items of a snapshot
  (a `/ConfigSnapshot/` key: the resource was merely listed), `change` for OK items otherwise (history).

Why `flattened` for `aws.config.configuration`, `supplementary_configuration`, `tags` and `unmapped`: their
keys are defined per resource type and AWS Config records hundreds of resource types, each with its own nested
schema (an EC2 instance has ~60 keys, an IAM policy embeds whole policy documents). Mapped as objects they
would exhaust the index's field limit, and one resource type logging `state` as an object (EC2) where another
logs a string (EBS) would reject documents. As `flattened` each is one mapping entry with every leaf still
searchable by key (`aws.config.configuration.instanceType: t3.micro`). Older items and API output sometimes
carry `configuration` (and `supplementaryConfiguration` values) as JSON-encoded text: it is decoded.
Anything else the item carries is kept, scalars as `aws.config.<snake_case key>`, containers in `unmapped`.

A `ConfigurationItemChangeNotification` (the SNS / EventBridge message around one item, if a source forwards
those) is unwrapped: its item is parsed as above and its `configurationItemDiff` kept as flattened
`aws.config.configuration_item_diff`. Other Config notifications (compliance changes, delivery status) are not
configuration items and are refused with their message type as the reason.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from worker.parsers._fields import iso_to_utc_ms, snake_case
from worker.parsers._json_records import json_original
from worker.parsers.base import FieldType, LogParser, ParseContext, ParseError
from worker.parsers.generic import epoch_number_to_iso

_SCALARS: dict[str, str] = {
    "configurationItemVersion": "configuration_item_version",
    "version": "configuration_item_version",
    "configurationItemStatus": "configuration_item_status",
    "configurationItemMD5Hash": "configuration_item_md5_hash",
    "configurationStateMd5Hash": "configuration_item_md5_hash",
    "resourceType": "resource_type",
    "resourceId": "resource_id",
    "resourceName": "resource_name",
    "ARN": "resource_arn",
    "arn": "resource_arn",
    "recordingFrequency": "recording_frequency",
}
_DATES: dict[str, str] = {
    "resourceCreationTime": "resource_creation_time",
    "configurationItemDeliveryTime": "configuration_item_delivery_time",
}
_TIME_KEYS = ("configurationItemCaptureTime", "configurationItemDeliveryTime")
_HANDLED = frozenset(
    set(_SCALARS)
    | set(_DATES)
    | {
        "configurationItemCaptureTime", "configurationStateId", "configurationStateID", "awsAccountId",
        "accountId", "awsRegion", "availabilityZone", "availibilityZone", "tags", "relatedEvents",
        "relationships", "configuration", "supplementaryConfiguration",
    }
)
_NOTIFICATION_ITEM_KEYS = frozenset(("configurationItem", "configurationItemSummary"))
_NOT_A_ZONE = frozenset(("Not Applicable", "Regional", "Multiple Availability Zones"))
_EVENT_TYPES = {
    "ResourceDiscovered": "creation",
    "ResourceDeleted": "deletion",
    "ResourceDeletedNotRecorded": "deletion",
    "ResourceNotRecorded": "info",
}


def _time(value: Any, name: str) -> str:
    if isinstance(value, str):
        try:
            return iso_to_utc_ms(value)
        except ValueError as exc:
            raise ParseError(f"AWS Config {name}: {exc}") from None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        stamp = epoch_number_to_iso(value)  # boto3/CLI output written back as epoch seconds
        if stamp is not None:
            return stamp
    raise ParseError(f"AWS Config {name}: not a timestamp: {value!r}"[:200])


def _decoded(value: Any) -> Any:
    """JSON-encoded text (`"{\\"volumeId\\": ...}"`) -> the object it encodes; anything else unchanged."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _is_zone(value: str) -> bool:
    """`us-west-2b`, `us-west-2-lax-1a`: lowercase, dash-separated, ending in a letter."""
    return (
        value not in _NOT_A_ZONE
        and "-" in value
        and " " not in value
        and value.islower()
        and value[-1:].isalpha()
    )


class AwsConfigParser(LogParser):
    """Stateless; gets one configuration item of a `{"configurationItems": [...]}` file at a time."""

    log_type: ClassVar[str] = "aws_config"
    framing = "json_records"
    fields: ClassVar[dict[str, FieldType]] = {
        "@timestamp": "date",
        "event.kind": "keyword",
        "event.category": "keyword",
        "event.type": "keyword",
        "cloud.provider": "keyword",
        "cloud.account.id": "keyword",
        "cloud.region": "keyword",
        "cloud.availability_zone": "keyword",
        "aws.config.resource_type": "keyword",
        "aws.config.resource_id": "keyword",
        "aws.config.resource_name": "keyword",
        "aws.config.resource_arn": "keyword",
        "aws.config.resource_creation_time": "date",
        "aws.config.availability_zone": "keyword",
        "aws.config.configuration_item_status": "keyword",
        "aws.config.configuration_item_version": "keyword",
        "aws.config.configuration_item_md5_hash": "keyword",
        "aws.config.configuration_item_delivery_time": "date",
        "aws.config.configuration_state_id": "keyword",
        "aws.config.recording_frequency": "keyword",
        "aws.config.related_events": "keyword",
        "aws.config.relationships.resource_type": "keyword",
        "aws.config.relationships.resource_id": "keyword",
        "aws.config.relationships.resource_name": "keyword",
        "aws.config.relationships.name": "keyword",
        "aws.config.relationships.direction": "keyword",
        "aws.config.tags": "flattened",
        "aws.config.configuration": "flattened",
        "aws.config.supplementary_configuration": "flattened",
        "aws.config.configuration_item_diff": "flattened",
        "aws.config.message_type": "keyword",
        "aws.config.notification_creation_time": "date",
        "aws.config.unmapped": "flattened",
    }
    example = (
        '{"relatedEvents":[],"relationships":[{"resourceId":"arn:aws:apigateway:eu-west-1::/apis/8usdsfqyg3",'
        '"resourceName":"helloapi-API","resourceType":"AWS::ApiGatewayV2::Api","name":"Is contained in "}],"c'
        'onfiguration":{"stageName":"$default","deploymentId":"198oew","defaultRouteSettings":{"detailedMetri'
        'csEnabled":false},"routeSettings":{},"stageVariables":{},"autoDeploy":true,"lastDeploymentStatusMess'
        'age":"Successfully deployed stage with deployment ID \'198oew\'","createdDate":"Nov 15, 2021 5:54:59 A'
        'M","lastUpdatedDate":"Nov 15, 2021 5:55:02 AM","tags":{"internalId":"rix3","resourceArn":"arn:aws:ap'
        'igateway:eu-west-1::/apis/8usdsfqyg3/stages/$default"},"apiGatewayManaged":true},"supplementaryConfi'
        'guration":{},"tags":{},"configurationItemVersion":"1.3","configurationItemCaptureTime":"2021-11-15T0'
        '9:11:24.624Z","configurationStateId":1636967484624,"awsAccountId":"123456789012","configurationItemS'
        'tatus":"OK","resourceType":"AWS::ApiGatewayV2::Stage","resourceId":"arn:aws:apigateway:eu-west-1::/a'
        'pis/8usdsfqyg3/stages/$default","resourceName":"$default","ARN":"arn:aws:apigateway:eu-west-1::/apis'
        '/8usdsfqyg3/stages/$default","awsRegion":"eu-west-1","availabilityZone":"Not Applicable","configurat'
        'ionStateMd5Hash":"","resourceCreationTime":"2021-11-15T05:54:59.676Z"}'
    )
    routing = (
        "S3 key `AWSLogs/<account>/Config/<region>/<y>/<m>/<d>/ConfigSnapshot|ConfigHistory/...json.gz` "
        "(`ConfigWritabilityCheckFile` objects are skipped); content: a `{\"fileVersion\": ..., "
        "\"configurationItems\": [...]}` document, or configuration items one per line."
    )

    @classmethod
    def sniff(cls, head: str) -> bool:
        text = head.lstrip()
        if not text.startswith("{"):
            return False
        if '"configurationItems"' in text and ('"fileVersion"' in text or '"configSnapshotId"' in text):
            return True
        first = text.split("\n", 1)[0]
        if '"configurationItemCaptureTime"' in first and '"resourceType"' in first:
            return True  # configuration items one per line (a Firehose or export of items)
        return '"ConfigurationItemChangeNotification"' in first and '"configurationItem"' in first

    def __init__(self, ctx: ParseContext) -> None:
        super().__init__(ctx)
        self._snapshot = "/ConfigSnapshot/" in ctx.key

    def parse(self, record: Any) -> dict[str, Any] | None:
        if not isinstance(record, dict):
            raise ParseError(f"AWS Config record is a JSON {type(record).__name__}, not an object")
        if "configurationItems" in record:
            raise ParseError(
                "got a whole AWS Config file object; the framer should pass its configurationItems one by one"
            )
        item = record
        notification: dict[str, Any] = {}
        unmapped: dict[str, Any] = {}
        if "messageType" in record:
            item = self._unwrap(record, notification, unmapped)

        for key in _TIME_KEYS:
            value = item.get(key)
            if value is not None and value != "":
                timestamp = _time(value, key)
                break
        else:
            if "resourceType" not in item and "resourceId" not in item:
                raise ParseError("not an AWS Config configuration item: no resourceType, resourceId or capture time")
            raise ParseError("AWS Config configuration item has no configurationItemCaptureTime")

        cfg: dict[str, Any] = {}
        status = item.get("configurationItemStatus")
        if status == "OK":
            kind = "info" if self._snapshot else "change"
        else:
            kind = _EVENT_TYPES.get(status, "info") if isinstance(status, str) else "info"
        event: dict[str, Any] = {"kind": "state", "category": ["configuration"], "type": [kind]}
        cloud: dict[str, Any] = {"provider": "aws"}
        doc: dict[str, Any] = {"@timestamp": timestamp, "event": event, "cloud": cloud, "aws": {"config": cfg}}

        for key, name in _SCALARS.items():
            value = item.get(key)
            if value is not None and value != "" and name not in cfg:
                if isinstance(value, (dict, list)):
                    unmapped[key] = value
                else:
                    cfg[name] = value if isinstance(value, str) else str(value)
        for key, name in _DATES.items():
            value = item.get(key)
            if value is not None and value != "":
                try:
                    cfg[name] = _time(value, key)
                except ParseError:
                    unmapped[key] = value  # a secondary date is not worth the record; keep it as written
        state_id = item.get("configurationStateId", item.get("configurationStateID"))
        if state_id is not None and state_id != "":
            cfg["configuration_state_id"] = str(state_id)

        account = item.get("awsAccountId") or item.get("accountId") or self.ctx.account_id
        if account:
            cloud["account"] = {"id": str(account)}
        region = item.get("awsRegion") or self.ctx.region
        if region:
            cloud["region"] = region
        zone = item.get("availabilityZone") or item.get("availibilityZone")
        if isinstance(zone, str) and zone:
            cfg["availability_zone"] = zone
            if _is_zone(zone):
                cloud["availability_zone"] = zone

        tags = item.get("tags")
        if isinstance(tags, dict):
            if tags:
                cfg["tags"] = tags
        elif tags:
            unmapped["tags"] = tags
        events = item.get("relatedEvents")
        if isinstance(events, list):
            if events:
                cfg["related_events"] = [str(e) for e in events if e is not None and e != ""]
        elif events:
            unmapped["relatedEvents"] = events
        relationships = item.get("relationships")
        if isinstance(relationships, list):
            if relationships:
                cfg["relationships"] = self._relationships(relationships, unmapped)
        elif relationships:
            unmapped["relationships"] = relationships

        configuration = _decoded(item.get("configuration"))
        if isinstance(configuration, dict):
            if configuration:
                cfg["configuration"] = configuration
        elif configuration is not None and configuration != "":
            unmapped["configuration"] = configuration
        supplementary = item.get("supplementaryConfiguration")
        if isinstance(supplementary, dict):
            if supplementary:
                cfg["supplementary_configuration"] = {k: _decoded(v) for k, v in supplementary.items()}
        elif supplementary is not None and supplementary != "":
            unmapped["supplementaryConfiguration"] = _decoded(supplementary)

        for key, value in item.items():
            if key in _HANDLED or value is None or value == "":
                continue
            if isinstance(value, (dict, list)):
                if value:
                    unmapped[key] = value
            else:
                cfg.setdefault(snake_case(key), value)
        cfg.update(notification)
        if unmapped:
            cfg["unmapped"] = unmapped
        if self.ctx.keep_original:
            event["original"] = json_original(record)
        return doc

    @staticmethod
    def _unwrap(record: dict[str, Any], notification: dict[str, Any], unmapped: dict[str, Any]) -> dict[str, Any]:
        """The configuration item inside a change notification; the notification's own fields go to `notification`."""
        message_type = record.get("messageType")
        inner = record.get("configurationItem") or record.get("configurationItemSummary")
        if not isinstance(inner, dict):
            raise ParseError(f"AWS Config {str(message_type)[:80]} notification is not a configuration item")
        for key, value in record.items():
            if key in _NOTIFICATION_ITEM_KEYS or value is None or value == "":
                continue
            if key == "configurationItemDiff" and isinstance(value, dict):
                if value:
                    notification["configuration_item_diff"] = value
            elif key == "notificationCreationTime":
                try:
                    notification["notification_creation_time"] = _time(value, key)
                except ParseError:
                    unmapped[key] = value
            elif isinstance(value, (dict, list)):
                if value:
                    unmapped[key] = value
            else:
                notification[snake_case(key)] = value
        return inner

    @staticmethod
    def _relationships(relationships: list[Any], unmapped: dict[str, Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        odd: list[Any] = []
        for rel in relationships:
            if not isinstance(rel, dict):
                odd.append(rel)
                continue
            entry: dict[str, Any] = {}
            for key, value in rel.items():
                if value is None or value == "":
                    continue
                if key == "name" and isinstance(value, str):
                    value = value.strip()
                entry[snake_case(key)] = value
            if entry:
                out.append(entry)
        if odd:
            unmapped["relationships"] = odd
        return out


PARSER = AwsConfigParser
