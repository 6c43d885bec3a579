"""S3 event notifications as they arrive on SQS: direct, wrapped in SNS, or from EventBridge.

Pure parsing, no I/O, so that every shape AWS sends is covered by unit tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import orjson


class NotificationError(ValueError):
    """The message body is not an S3 event notification we understand (it is dead-lettered, not retried)."""


@dataclass(frozen=True, slots=True)
class ObjectRef:
    bucket: str
    key: str
    size: int = 0
    etag: str = ""
    version: str = ""
    event_name: str = ""
    alt_key: str = ""
    """A second spelling to try if `key` does not exist (EventBridge keys are not reliably URL-encoded)."""

    @property
    def version_tag(self) -> str:
        """Version id, else `etag:<etag>`: what makes the ids of this object's documents unique."""
        if self.version:
            return self.version
        return f"etag:{self.etag}" if self.etag else ""


@dataclass(frozen=True, slots=True)
class Notification:
    objects: tuple[ObjectRef, ...]
    test_event: bool = False
    ignored: int = 0
    """Records that are not ObjectCreated events (deletes, restores): acknowledged without work."""


def parse_notification(body: str | bytes) -> Notification:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise NotificationError(f"message body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise NotificationError("message body is not a JSON object")
    # SNS envelope: the S3 event is a JSON string in "Message".
    if doc.get("Type") == "Notification" and isinstance(doc.get("Message"), str):
        return parse_notification(doc["Message"])
    if doc.get("Event") == "s3:TestEvent":
        return Notification((), test_event=True)
    if doc.get("source") == "aws.s3" and isinstance(doc.get("detail"), dict):
        return _eventbridge(doc)
    records = doc.get("Records")
    if isinstance(records, list):
        return _s3_records(records)
    raise NotificationError("not an S3 event notification (no Records, no SNS Message, no EventBridge detail)")


def _s3_records(records: list[Any]) -> Notification:
    objects = []
    ignored = 0
    for rec in records:
        if not isinstance(rec, dict):
            raise NotificationError("a record is not a JSON object")
        name = str(rec.get("eventName", ""))
        s3 = rec.get("s3")
        if not isinstance(s3, dict):
            raise NotificationError("a record has no s3 section")
        if not name.startswith("ObjectCreated"):
            ignored += 1
            continue
        try:
            bucket = s3["bucket"]["name"]
            obj = s3["object"]
            raw_key = obj["key"]
        except (KeyError, TypeError):
            raise NotificationError("a record lacks s3.bucket.name or s3.object.key") from None
        objects.append(ObjectRef(
            bucket=bucket, key=unquote_plus(raw_key), size=int(obj.get("size") or 0),
            etag=str(obj.get("eTag") or obj.get("etag") or ""), version=_version(obj.get("versionId")),
            event_name=name,
        ))
    return Notification(tuple(objects), ignored=ignored)


def _eventbridge(doc: dict[str, Any]) -> Notification:
    if doc.get("detail-type") != "Object Created":
        return Notification((), ignored=1)
    detail = doc["detail"]
    try:
        bucket = detail["bucket"]["name"]
        obj = detail["object"]
        key = obj["key"]
    except (KeyError, TypeError):
        raise NotificationError("EventBridge event lacks detail.bucket.name or detail.object.key") from None
    decoded = unquote_plus(key)
    return Notification((ObjectRef(
        bucket=bucket, key=key, size=int(obj.get("size") or 0), etag=str(obj.get("etag") or ""),
        version=_version(obj.get("version-id")), event_name="Object Created",
        alt_key=decoded if decoded != key else "",
    ),))


def _version(value: object) -> str:
    """A notification's version id; `"null"` (an object written before versioning was enabled) is no version,
    so the id falls back to the ETag exactly as a listing of the same object does (backfill)."""
    text = str(value or "")
    return "" if text == "null" else text
