"""CloudTrail records -> ECS, with the field names and categorisation of Elastic's `aws.cloudtrail` pipeline.

The free-form parts of a record (`requestParameters`, `responseElements`, `additionalEventData`,
`serviceEventDetails`, `insightDetails`, and any container-valued key CloudTrail adds later) have one shape per
API call: thousands of distinct keys across AWS. Mapped as objects they would exhaust the index's field limit
within days, and one call logging a number where another logs a string would reject documents. Elastic
answers this by storing them twice: once as a Java `toString()` text (`{ConsoleLogin=Success}`, which is
neither JSON nor searchable by key) and once under `aws.cloudtrail.flattened.*`. We store them once, as the
original JSON objects under `aws.cloudtrail.<name>` (`request_parameters`, `response_elements`,
`additional_eventdata`, `service_event_details`, `insight_details`, `unmapped`), declared `flattened`: one
mapping entry each, every leaf still searchable by key (`aws.cloudtrail.request_parameters.userName: x`), and
the document `_source` keeps the structure for whoever reads it. The cost is not being byte-compatible with
Elastic's text fields; nobody can query those by key anyway.

Digest records (the hourly signed manifests delivered next to the logs) describe files, not API calls: they
are not events and yield None. Insight events are kept.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any, ClassVar

from worker.parsers._fields import is_ip, iso_to_utc_ms, snake_case, tls_version
from worker.parsers._json_records import json_original
from worker.parsers.base import FieldType, LogParser, ParseError

_DIGEST_KEYS = ("digestStartTime", "digestEndTime", "digestS3Bucket", "digestS3Object")

_FLATTENED = {
    "requestParameters": "request_parameters",
    "responseElements": "response_elements",
    "additionalEventData": "additional_eventdata",
    "serviceEventDetails": "service_event_details",
    "insightDetails": "insight_details",
}
_SCALARS = {
    "eventVersion": "event_version",
    "eventCategory": "event_category",
    "errorCode": "error_code",
    "errorMessage": "error_message",
    "requestID": "request_id",
    "eventType": "event_type",
    "apiVersion": "api_version",
    "managementEvent": "management_event",
    "readOnly": "read_only",
    "recipientAccountId": "recipient_account_id",
    "sharedEventID": "shared_event_id",
    "sharedEventId": "shared_event_id",
    "vpcEndpointId": "vpc_endpoint_id",
    "vpcEndpointAccountId": "vpc_endpoint_account_id",
    "sessionCredentialFromConsole": "session_credential_from_console",
}
_HANDLED = frozenset(
    set(_FLATTENED)
    | set(_SCALARS)
    | {
        "eventTime", "eventSource", "eventName", "awsRegion", "sourceIPAddress", "userAgent", "eventID",
        "userIdentity", "resources", "tlsDetails",
    }
)


def _categories() -> dict[str, tuple[list[str], list[str]]]:
    """eventName -> (event.category, event.type): the actions Elastic's pipeline categorises, no others."""
    groups: dict[tuple[str, str, str], str] = {
        ("authentication", "info", ""): "ConsoleLogin AssumeRole",
        ("file", "creation", ""): "CreateBucket",
        ("file", "deletion", ""): "DeleteBucket",
        ("iam", "user", "creation"): "CreateUser",
        ("iam", "user", "deletion"): "DeleteUser",
        ("iam", "user", "info"): (
            "GetUser GetUserPolicy ListAttachedUserPolicies ListGroupsForUser ListUserPolicies ListUsers "
            "ListUserTags"
        ),
        ("iam", "user", "change"): (
            "AttachUserPolicy ChangePassword CreateAccessKey CreateVirtualMFADevice DeactivateMFADevice "
            "DeleteAccessKey DeleteSSHPublicKey DeleteUserPermissionsBoundary DeleteUserPolicy "
            "DeleteVirtualMFADevice DetachUserPolicy EnableMFADevice PutUserPermissionsBoundary PutUserPolicy "
            "TagUser UntagUser UpdateAccessKey UpdateLoginProfile UpdateSSHPublicKey UpdateUser"
        ),
        ("iam", "group", "creation"): "CreateGroup",
        ("iam", "group", "deletion"): "DeleteGroup",
        ("iam", "group", "info"): (
            "GetGroup GetGroupPolicy ListAttachedGroupPolicies ListGroupPolicies ListGroups"
        ),
        ("iam", "group", "change"): (
            "AddUserToGroup AttachGroupPolicy DeleteGroupPolicy DetachGroupPolicy PutGroupPolicy "
            "RemoveUserFromGroup UpdateGroup"
        ),
        ("iam", "admin", "creation"): "CreateKeyPair",
        ("iam", "admin", "change"): (
            "SetDefaultPolicyVersion SetSecurityTokenServicePreferences UpdateAccountPasswordPolicy UpdateRole"
        ),
    }
    out: dict[str, tuple[list[str], list[str]]] = {}
    for (category, kind, verb), names in groups.items():
        types = [kind, verb] if verb else [kind]
        for name in names.split():
            out[name] = ([category], types)
    return out


_CATEGORIES = _categories()


_EMPTIABLE = frozenset({str, dict, list})
"""Types whose empty value (`""`, `{}`, `[]`) leaves a free-form part out, as Elastic's pipeline does."""


class _Plan:
    """What to read from records with one set of keys, in one order.

    A trail writes a handful of record shapes (one per event type and service), and orjson hands every record
    the same key objects, so the shape of a record is a cheap dictionary key: which scalars, free-form parts and
    unknown keys to copy is decided once per shape instead of trying every known name on every record."""

    __slots__ = ("digest", "flattened", "other", "scalars", "whole_file")

    def __init__(self, keys: tuple[str, ...]) -> None:
        present = set(keys)
        self.digest = any(key in present for key in _DIGEST_KEYS)
        self.whole_file = "Records" in present
        self.scalars = tuple((key, name) for key, name in _SCALARS.items() if key in present)
        self.flattened = tuple((key, name) for key, name in _FLATTENED.items() if key in present)
        self.other = tuple((key, snake_case(key)) for key in keys if key not in _HANDLED)


_PLANS: dict[tuple[str, ...], _Plan] = {}


def _plan(keys: tuple[str, ...]) -> _Plan:
    if len(_PLANS) >= 1024:  # a stream of ever-new shapes (not CloudTrail) must not grow this without bound
        _PLANS.clear()
    plan = _PLANS[keys] = _Plan(keys)
    return plan


def _yes_no(value: Any) -> bool:
    return bool(value != "No")


class CloudTrailParser(LogParser):
    """Stateless; gets one record of a `{"Records": [...]}` file (or of an NDJSON stream) at a time."""

    log_type: ClassVar[str] = "cloudtrail"
    framing = "json_records"
    fields: ClassVar[dict[str, FieldType]] = {
        "@timestamp": "date",
        "event.id": "keyword",
        "event.action": "keyword",
        "event.provider": "keyword",
        "source.ip": "ip",
        "source.address": "keyword",
        "user.id": "keyword",
        "user.name": "keyword",
        "user.target.id": "keyword",
        "user.target.name": "keyword",
        "user.changes.name": "keyword",
        "group.id": "keyword",
        "group.name": "keyword",
        "related.user": "keyword",
        "user_agent.original": "keyword",
        "cloud.account.id": "keyword",
        "cloud.region": "keyword",
        "tls.version": "keyword",
        "tls.version_protocol": "keyword",
        "tls.cipher": "keyword",
        "tls.client.server_name": "keyword",
        "aws.cloudtrail.event_version": "keyword",
        "aws.cloudtrail.event_category": "keyword",
        "aws.cloudtrail.event_type": "keyword",
        "aws.cloudtrail.api_version": "keyword",
        "aws.cloudtrail.request_id": "keyword",
        "aws.cloudtrail.shared_event_id": "keyword",
        "aws.cloudtrail.recipient_account_id": "keyword",
        "aws.cloudtrail.vpc_endpoint_id": "keyword",
        "aws.cloudtrail.vpc_endpoint_account_id": "keyword",
        "aws.cloudtrail.error_code": "keyword",
        "aws.cloudtrail.error_message": "text",
        "aws.cloudtrail.management_event": "boolean",
        "aws.cloudtrail.read_only": "boolean",
        "aws.cloudtrail.session_credential_from_console": "keyword",
        "aws.cloudtrail.user_identity.type": "keyword",
        "aws.cloudtrail.user_identity.arn": "keyword",
        "aws.cloudtrail.user_identity.access_key_id": "keyword",
        "aws.cloudtrail.user_identity.invoked_by": "keyword",
        "aws.cloudtrail.user_identity.session_context.mfa_authenticated": "keyword",
        "aws.cloudtrail.user_identity.session_context.creation_date": "date",
        "aws.cloudtrail.user_identity.session_context.session_issuer.type": "keyword",
        "aws.cloudtrail.user_identity.session_context.session_issuer.arn": "keyword",
        "aws.cloudtrail.user_identity.session_context.session_issuer.account_id": "keyword",
        "aws.cloudtrail.user_identity.session_context.session_issuer.principal_id": "keyword",
        "aws.cloudtrail.resources.arn": "keyword",
        "aws.cloudtrail.resources.account_id": "keyword",
        "aws.cloudtrail.resources.type": "keyword",
        "aws.cloudtrail.console_login.additional_eventdata.mobile_version": "boolean",
        "aws.cloudtrail.console_login.additional_eventdata.mfa_used": "boolean",
        "aws.cloudtrail.console_login.additional_eventdata.login_to": "keyword",
        "aws.cloudtrail.request_parameters": "flattened",
        "aws.cloudtrail.response_elements": "flattened",
        "aws.cloudtrail.additional_eventdata": "flattened",
        "aws.cloudtrail.service_event_details": "flattened",
        "aws.cloudtrail.insight_details": "flattened",
        "aws.cloudtrail.unmapped": "flattened",
    }

    example = (
        '{"eventVersion":"1.0","userIdentity":{"type":"IAMUser","principalId":"EX_PRINCIPAL_ID","arn":"arn:aw'
        's:iam::123456789012:user/Alice","accessKeyId":"EXAMPLE_KEY_ID","accountId":"123456789012","userName"'
        ':"Alice"},"eventTime":"2014-03-06T21:22:54Z","eventSource":"ec2.amazonaws.com","eventName":"StartIns'
        'tances","awsRegion":"us-east-2","sourceIPAddress":"205.251.233.176","userAgent":"ec2-api-tools 1.6.1'
        '2.2","requestParameters":{"instancesSet":{"items":[{"instanceId":"i-ebeaf9e2"}]}},"responseElements"'
        ':{"instancesSet":{"items":[{"instanceId":"i-ebeaf9e2","currentState":{"code":0,"name":"pending"},"pr'
        'eviousState":{"code":80,"name":"stopped"}}]}}}'
    )
    routing = (
        "S3 key `AWSLogs/<account>/CloudTrail/<region>/...` (and `CloudTrail-Insight`; `CloudTrail-Digest` "
        "objects are skipped); content: a `{\"Records\": [...]}` document; CloudWatch Logs groups named "
        "`aws-cloudtrail-logs-*` or set in `log_groups`."
    )

    @classmethod
    def sniff(cls, head: str) -> bool:
        text = head.lstrip()
        if not text.startswith(("{", "[")):
            return False
        first = text.split("\n", 1)[0]
        return '"Records"' in text[:4096] or '"eventVersion"' in first or '"eventSource"' in first

    def parse(self, record: Any) -> dict[str, Any] | None:
        if not isinstance(record, dict):
            raise ParseError(f"CloudTrail record is a JSON {type(record).__name__}, not an object")
        keys = tuple(record)
        plan = _PLANS.get(keys)
        if plan is None:
            plan = _plan(keys)
        if plan.digest:
            return None
        if plan.whole_file:
            raise ParseError("got a whole CloudTrail file object; the framer should pass its Records one by one")
        event_time = record.get("eventTime")
        if not isinstance(event_time, str):
            raise ParseError("CloudTrail record has no eventTime")
        try:
            timestamp = iso_to_utc_ms(event_time)
        except ValueError as exc:
            raise ParseError(f"CloudTrail eventTime: {exc}") from None

        ct: dict[str, Any] = {}
        event: dict[str, Any] = {"kind": "event", "type": ["info"]}
        cloud: dict[str, Any] = {"provider": "aws"}
        doc: dict[str, Any] = {"@timestamp": timestamp, "event": event, "cloud": cloud, "aws": {"cloudtrail": ct}}
        user: dict[str, Any] = {}
        related_users: list[str] = []

        for key, name in plan.scalars:
            value = record[key]
            if value is not None and value != "":
                ct[name] = value
        for key, name in plan.flattened:
            value = record[key]
            if value or (value is not None and value.__class__ not in _EMPTIABLE):
                ct[name] = value

        if (value := record.get("eventID")) is not None:
            event["id"] = value
        action = record.get("eventName")
        if action:
            event["action"] = action
        if provider := record.get("eventSource"):
            event["provider"] = provider
        if region := (record.get("awsRegion") or self.ctx.region):
            cloud["region"] = region
        if address := record.get("sourceIPAddress"):
            source: dict[str, Any] = {"address": address}
            if isinstance(address, str) and is_ip(address):
                source["ip"] = address
            doc["source"] = source
        if agent := record.get("userAgent"):
            doc["user_agent"] = {"original": agent}

        identity = record.get("userIdentity")
        if isinstance(identity, dict):
            self._identity(identity, ct, user, cloud, related_users)
        if "account" not in cloud:
            account = record.get("recipientAccountId") or self.ctx.account_id
            if account:
                cloud["account"] = {"id": account}

        resources = record.get("resources")
        if isinstance(resources, list) and resources:
            ct["resources"] = self._resources(resources)
        tls_details = record.get("tlsDetails")
        if isinstance(tls_details, dict):
            self._tls(tls_details, doc)

        if plan.other:
            unmapped: dict[str, Any] = {}
            for key, name in plan.other:
                value = record[key]
                if value is None or value == "":
                    continue
                if isinstance(value, (dict, list)):
                    unmapped[key] = value
                else:
                    ct[name] = value
            if unmapped:
                ct["unmapped"] = unmapped

        self._targets(record, doc, user, related_users)
        if user:
            doc["user"] = user
        if related_users:
            doc["related"] = {"user": related_users}

        if "error_code" in ct or "error_message" in ct:
            event["outcome"] = "failure"
        else:
            event["outcome"] = "success"
        if action == "ConsoleLogin":
            self._console_login(record, ct, event)
        categorised = _CATEGORIES.get(action) if isinstance(action, str) else None
        if categorised is not None:
            event["category"] = list(categorised[0])
            event["type"] = list(categorised[1])

        if self.ctx.keep_original:
            event["original"] = json_original(record)
        return doc

    @staticmethod
    def _identity(
        identity: dict[str, Any],
        ct: dict[str, Any],
        user: dict[str, Any],
        cloud: dict[str, Any],
        related_users: list[str],
    ) -> None:
        out: dict[str, Any] = {}
        if value := identity.get("type"):
            out["type"] = value
        if value := identity.get("arn"):
            out["arn"] = value
        if value := identity.get("accessKeyId"):
            out["access_key_id"] = value
        if value := identity.get("invokedBy"):
            out["invoked_by"] = value
        if value := identity.get("principalId"):
            user["id"] = value
        if value := identity.get("userName"):
            user["name"] = value
            related_users.append(value)
        if value := identity.get("accountId"):
            cloud["account"] = {"id": value}
        session = identity.get("sessionContext")
        if isinstance(session, dict):
            context: dict[str, Any] = {}
            attributes = session.get("attributes")
            if isinstance(attributes, dict):
                if (value := attributes.get("mfaAuthenticated")) is not None and value != "":
                    context["mfa_authenticated"] = value
                if value := attributes.get("creationDate"):
                    # Elastic drops an unparseable date too; the record is still worth indexing.
                    with suppress(ValueError):
                        context["creation_date"] = iso_to_utc_ms(str(value))
            issuer = session.get("sessionIssuer")
            if isinstance(issuer, dict):
                issued: dict[str, Any] = {}
                if value := issuer.get("type"):
                    issued["type"] = value
                if value := issuer.get("principalId"):
                    issued["principal_id"] = value
                if value := issuer.get("arn"):
                    issued["arn"] = value
                if value := issuer.get("accountId"):
                    issued["account_id"] = value
                if value := issuer.get("userName"):
                    user["name"] = value  # the role name: who acted, for an assumed role
                if issued:
                    context["session_issuer"] = issued
            if context:
                out["session_context"] = context
        if out:
            ct["user_identity"] = out

    @staticmethod
    def _resources(resources: list[Any]) -> list[dict[str, Any]]:
        """Renamed to snake_case and deduplicated on (arn, account, type), as Elastic does."""
        unique: dict[tuple[Any, Any, Any], dict[str, Any]] = {}
        for item in resources:
            if not isinstance(item, dict):
                continue
            resource = {("arn" if k == "ARN" else snake_case(k)): v for k, v in item.items()}
            unique[(resource.get("arn"), resource.get("account_id"), resource.get("type"))] = resource
        return list(unique.values())

    @staticmethod
    def _tls(details: dict[str, Any], doc: dict[str, Any]) -> None:
        tls: dict[str, Any] = {}
        version = details.get("tlsVersion")
        if isinstance(version, str) and (parsed := tls_version(version)) is not None:
            tls["version_protocol"], tls["version"] = parsed
        if cipher := details.get("cipherSuite"):
            tls["cipher"] = cipher
        if host := details.get("clientProvidedHostHeader"):
            tls["client"] = {"server_name": host}
        if tls:
            doc["tls"] = tls

    @staticmethod
    def _targets(record: dict[str, Any], doc: dict[str, Any], user: dict[str, Any], related: list[str]) -> None:
        """Who or what an IAM call acted on, lifted out of the free-form parameters as Elastic does."""
        params = record.get("requestParameters")
        response = record.get("responseElements")
        if isinstance(params, dict):
            name = params.get("userName")
            if isinstance(name, str) and name:
                user.setdefault("target", {})["name"] = name
                if name not in related:
                    related.append(name)
            new_name = params.get("newUserName")
            if isinstance(new_name, str) and new_name:
                user["changes"] = {"name": new_name}
                if new_name not in related:
                    related.append(new_name)
            group_name = params.get("groupName")
            if isinstance(group_name, str) and group_name:
                doc.setdefault("group", {})["name"] = group_name
        if isinstance(response, dict):
            group = response.get("group")
            if isinstance(group, dict) and (group_id := group.get("groupId")):
                doc.setdefault("group", {})["id"] = group_id
            target = response.get("user")
            if isinstance(target, dict) and (user_id := target.get("userId")):
                user.setdefault("target", {})["id"] = user_id

    @staticmethod
    def _console_login(record: dict[str, Any], ct: dict[str, Any], event: dict[str, Any]) -> None:
        response = record.get("responseElements")
        if isinstance(response, dict) and isinstance(result := response.get("ConsoleLogin"), str):
            event["outcome"] = result.lower()
        extra = record.get("additionalEventData")
        if isinstance(extra, dict):
            login: dict[str, Any] = {}
            if (value := extra.get("MobileVersion")) is not None:
                login["mobile_version"] = _yes_no(value)
            if (value := extra.get("LoginTo")) is not None:
                login["login_to"] = value
            if (value := extra.get("MFAUsed")) is not None:
                login["mfa_used"] = _yes_no(value)
            if login:
                ct["console_login"] = {"additional_eventdata": login}


PARSER = CloudTrailParser
