"""The stream layer between framing and parsers: continuation joins, sibling reroutes, CloudWatch expansion."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.corpus import read_lines, read_text
from worker.parsers import ParseContext
from worker.parsers.cloudwatch_logs import CloudWatchLogsParser
from worker.parsers.stream import MAX_JOINED_LINES, StreamParser


def run(log_type: str, frames: list[tuple[int, Any]], **ctx: Any) -> tuple[list[Any], list[Any], int]:
    stream = StreamParser(log_type, ParseContext(**ctx))
    docs, failures, skipped = stream.process(frames)
    more_docs, more_failures, more_skipped = stream.finish()
    return docs + more_docs, failures + more_failures, skipped + more_skipped


def envelope(group: str, messages: list[str], kind: str = "DATA_MESSAGE") -> dict[str, Any]:
    return {"messageType": kind, "owner": "123456789012", "logGroup": group, "logStream": "stream-1",
            "subscriptionFilters": ["f"],
            "logEvents": [{"id": f"3600000000000000000000000000000000000000000000000000000{i}",
                           "timestamp": 1700000000000 + i, "message": m} for i, m in enumerate(messages)]}


LAMBDA_PAYLOAD = "cloudwatch_subscription/awsdocs_lambda-services-cloudwatchlogs_decoded-payload.json"
CLOUDTRAIL_PAYLOAD = "cloudwatch_subscription/awsdocs_cwl-SubscriptionFilters_kinesis-decoded-record.json"


# --- continuation -----------------------------------------------------------------------------------------

STATEMENT = [
    "2019-03-10 03:54:59 UTC:10.0.0.123(52834):postgres@tstdb:[20175]:LOG:  statement: SELECT *",
    "\tFROM orders",
    "\tWHERE id = 1;",
    "2019-03-10 03:55:01 UTC:10.0.0.123(52834):postgres@tstdb:[20175]:LOG:  statement: SELECT 1;",
]


def test_continuation_lines_join_the_record_before_them_across_chunks() -> None:
    stream = StreamParser("rds_postgresql", ParseContext())
    frames = [(i * 100, line) for i, line in enumerate(STATEMENT)]
    docs1, _, _ = stream.process(frames[:2])  # the chunk ends inside the first statement
    docs2, _, _ = stream.process(frames[2:])
    docs3, _, _ = stream.finish()
    docs = docs1 + docs2 + docs3
    assert [d[0] for d in docs] == [0, 300]  # offsets of the first line of each record
    assert stream.joined == 2
    first = json.dumps(docs[0][3])
    assert "FROM orders" in first and "WHERE id = 1" in first


def test_a_runaway_continuation_is_cut_not_grown_without_bound() -> None:
    lines = [STATEMENT[0]] + ["\tx"] * (MAX_JOINED_LINES + 5)
    stream = StreamParser("rds_postgresql", ParseContext())
    docs, failures, _ = stream.process([(i, line) for i, line in enumerate(lines)])
    more_docs, more_failures, _ = stream.finish()
    # The first record is cut at MAX_JOINED_LINES lines; the rest becomes a second record, reported or indexed.
    assert len(docs) + len(failures) + len(more_docs) + len(more_failures) == 2
    assert stream.joined == len(lines) - 2


def test_records_from_cloudwatch_are_never_joined() -> None:
    env = envelope("/aws/rds/instance/db1/postgresql", STATEMENT)
    docs, failures, _ = run("cloudwatch_logs", [(0, env)])
    assert len(docs) + len(failures) == len(STATEMENT)


# --- reroute ----------------------------------------------------------------------------------------------

def test_mixed_load_balancer_file_lands_each_line_under_its_own_type() -> None:
    lines = read_lines("elb/elastic-integrations_test-alb.log")
    docs, failures, skipped = run("alb", list(enumerate(lines)))
    types = {d[2] for d in docs}
    assert {"alb", "nlb"} <= types
    assert len(docs) + len(failures) + skipped == len(lines)
    assert not failures, failures


def test_classic_elb_line_in_an_alb_stream_is_parsed_as_elb() -> None:
    line = read_lines("elb/beats_elb-http.log")[0]
    docs, failures, _ = run("alb", [(0, line)])
    assert not failures
    assert docs[0][2] == "elb"


# --- CloudWatch Logs expansion ----------------------------------------------------------------------------

def test_lambda_payload_from_the_docs_becomes_a_lambda_document() -> None:
    payload = json.loads(read_text(LAMBDA_PAYLOAD))
    docs, failures, _ = run("cloudwatch_logs", [(7, payload)])
    assert not failures
    [(offset, sub, log_type, doc)] = docs
    assert (offset, sub, log_type) == (7, "34622316099697884706540976068822859012661220141643892546", "lambda")
    assert doc["aws"]["cloudwatch"] == {
        "log_group": "/aws/lambda/echo-nodejs",
        "log_stream": "2019/03/13/[$LATEST]94fa867e5374431291a7fc14e2f56ae7",
        "event_id": sub,
    }
    assert doc["@timestamp"].startswith("2019-03-13T23:05:48")
    assert doc["cloud"]["account"]["id"] == "123456789012"


def test_truncated_cloudtrail_messages_are_reported_not_dropped() -> None:
    payload = json.loads(read_text(CLOUDTRAIL_PAYLOAD))
    docs, failures, _ = run("cloudwatch_logs", [(0, payload)])
    assert docs == []
    assert len(failures) == 3
    assert all(f[2] == "cloudtrail" and "invalid JSON" in f[3] and "CloudTrail/logs" in f[3] for f in failures)


def test_control_message_is_skipped() -> None:
    docs, failures, skipped = run("cloudwatch_logs", [(0, envelope("g", ["CWL CONTROL MESSAGE"], "CONTROL_MESSAGE"))])
    assert (docs, failures, skipped) == ([], [], 1)


def test_unknown_group_is_sniffed_then_generic() -> None:
    vpc = ("2 123456789010 eni-1235b8ca123456789 78.24.182.42 158.109.0.1 20641 22 6 20 4249 1418530010 1418530070 "
           "ACCEPT OK")
    docs, _, _ = run("cloudwatch_logs", [(0, envelope("my-flows", [vpc]))])
    assert docs[0][2] == "vpc_flow"
    assert docs[0][3]["source"]["ip"] == "78.24.182.42"
    docs, _, _ = run("cloudwatch_logs", [(0, envelope("my-app", ["hello from my app"]))])
    assert docs[0][2] == "generic"
    assert docs[0][3]["message"] == "hello from my app"
    assert docs[0][3]["@timestamp"] == "2023-11-14T22:13:20.000Z"  # the event's own timestamp


def test_configured_log_groups_win_and_carry_options() -> None:
    line = "123456789010 eni-1235b8ca123456789 78.24.182.42 158.109.0.1 20641 22"
    fmt = "account-id interface-id srcaddr dstaddr srcport dstport"
    option = {"log_groups": {"/vpc/*": {"log_type": "vpc_flow", "options": {"format": fmt}}}}
    docs, failures, _ = run("cloudwatch_logs", [(0, envelope("/vpc/prod", [line]))], options=option)
    assert not failures
    assert docs[0][2] == "vpc_flow" and docs[0][3]["destination"]["port"] == 22


def test_bad_log_groups_option_fails_at_start() -> None:
    with pytest.raises(ValueError, match="unknown log type"):
        CloudWatchLogsParser(ParseContext(options={"log_groups": {"x": "nope"}}))


def test_rds_payloads_in_the_corpus_expand_event_by_event() -> None:
    text = read_text("rds_mysql/clo_rds.log")
    decoder, pos, envelopes = json.JSONDecoder(), 0, []
    while pos < len(text):
        value, pos = decoder.raw_decode(text, pos)
        envelopes.append(value)
        while pos < len(text) and text[pos].isspace():
            pos += 1
    events = sum(len(e["logEvents"]) for e in envelopes)
    docs, failures, _ = run("cloudwatch_logs", list(enumerate(envelopes)))
    assert len(docs) + len(failures) == events == 160
    assert {d[2] for d in docs} == {"rds_mysql"}
    ids = [f"{d[0]}.{d[1]}" for d in docs]
    assert len(set(ids)) == len(ids), "document ids must be unique within the object"
