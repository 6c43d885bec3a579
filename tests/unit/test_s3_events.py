import json

import pytest

from worker.sources.s3_events import NotificationError, parse_notification


def _s3_event(key: str, name: str = "ObjectCreated:Put", **obj: object) -> dict:
    return {"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": name,
            "s3": {"bucket": {"name": "logs"}, "object": {"key": key, "size": 10, "eTag": "abc", **obj}}}


def test_direct_event_decodes_key_and_keeps_records() -> None:
    body = json.dumps({"Records": [_s3_event("AWSLogs%2F1%2Fa+b%3A1.log.gz"), _s3_event("k2", versionId="v9")]})
    note = parse_notification(body)
    assert [o.key for o in note.objects] == ["AWSLogs/1/a b:1.log.gz", "k2"]
    assert note.objects[0].version_tag == "etag:abc"
    assert note.objects[1].version_tag == "v9"


def test_sns_wrapped() -> None:
    inner = json.dumps({"Records": [_s3_event("x.log")]})
    note = parse_notification(json.dumps({"Type": "Notification", "Message": inner}))
    assert note.objects[0].key == "x.log"


def test_eventbridge_keeps_raw_key_and_offers_decoded_alternative() -> None:
    body = {"version": "0", "detail-type": "Object Created", "source": "aws.s3",
            "detail": {"bucket": {"name": "b"}, "object": {"key": "a%20b.log", "size": 5, "etag": "e"}}}
    ref = parse_notification(json.dumps(body)).objects[0]
    assert (ref.bucket, ref.key, ref.alt_key) == ("b", "a%20b.log", "a b.log")


def test_test_event_and_non_create_events() -> None:
    assert parse_notification(json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})).test_event
    note = parse_notification(json.dumps({"Records": [_s3_event("k", name="ObjectRemoved:Delete")]}))
    assert note.objects == () and note.ignored == 1


@pytest.mark.parametrize("body", ["not json", "[]", '{"foo": 1}', '{"Records": [{"eventName": "ObjectCreated:Put"}]}'])
def test_bad_bodies_raise(body: str) -> None:
    with pytest.raises(NotificationError):
        parse_notification(body)


def test_null_version_id_means_no_version() -> None:
    body = json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {
        "bucket": {"name": "b"}, "object": {"key": "k", "size": 1, "eTag": "abc", "versionId": "null"}}}]})
    [ref] = parse_notification(body).objects
    assert ref.version_tag == "etag:abc"
