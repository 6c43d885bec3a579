"""Golden tests for AWS Lambda function logs on the shared corpus (AWS documentation samples) and the other
documented record forms (JSON log format, Powertools, platform lines)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.corpus import read_lines, read_text
from worker.parsers import ParseContext, get_parser
from worker.parsers._fields import flatten
from worker.parsers.lambda_logs import LambdaParser
from worker.parsers.stream import StreamParser

NODEJS = "lambda/awsdocs_nodejs-logging_function-output.log"
PYTHON = "lambda/awsdocs_python-logging_logging-library.log"
EVENTS = "lambda/awsdocs_python-logging_get-log-events.json"
GROUP = {"log_group": "/aws/lambda/my-function", "log_stream": "2019/06/07/[$LATEST]e6f4a0c4241adcd70c262d34c0bbc85c"}
REQUEST = "c793869b-ee49-115b-a5b6-4fd21e8dedac"


def parse(record: str, **ctx: Any) -> dict[str, Any]:
    doc = LambdaParser(ParseContext(**ctx)).parse(record)
    assert doc is not None
    assert_declared(doc)
    return doc


def assert_no_dash(doc: dict[str, Any]) -> None:
    for key, value in flatten(doc).items():
        assert value != "-", key
        if isinstance(value, list):
            assert "-" not in value, key

def assert_declared(doc: dict[str, Any]) -> None:
    """Every field the document carries is declared in the parser's `fields` (index template types)."""
    fields = LambdaParser.fields
    flattened = tuple(name + "." for name, kind in fields.items() if kind == "flattened")
    for key in flatten(doc):
        assert key in fields or key.startswith(flattened), key



def stream(relative: str, **ctx: Any) -> tuple[list[dict[str, Any]], list[Any], int, int]:
    """A corpus file through the stream layer (continuation lines joined): docs, failures, non-events, lines."""
    sp = StreamParser("lambda", ParseContext(**ctx))
    frames, offset = [], 0
    for line in read_lines(relative):
        frames.append((offset, line))
        offset += len(line) + 1
    docs, failures, skipped = sp.process(frames)
    more, more_failures, more_skipped = sp.finish()
    for _, _, _, body in docs + more:
        assert_declared(body)
    return [body for _, _, _, body in docs + more], failures + more_failures, skipped + more_skipped, len(frames)


def test_registry() -> None:
    cls = get_parser("lambda")
    assert cls is LambdaParser
    assert cls.framing == "lines"
    assert cls.continuation is not None
    assert parse(cls.example)["aws"]["lambda"]["report"]["max_memory_used"] == {"mb": 74}


def test_nodejs_file_no_silent_drops() -> None:
    """19 lines: START, three console records (two carrying a multi-line JSON block, one with the doc's `...`
    elision), END, REPORT."""
    docs, failures, skipped, lines = stream(NODEJS, **GROUP)
    assert lines == 19
    assert failures == [] and skipped == 0
    assert [d["event"].get("action") for d in docs] == [
        "platform.start", None, None, None, "platform.end", "platform.report"
    ]
    start = docs[0]
    assert start["faas"] == {"execution": REQUEST, "version": "$LATEST", "name": "my-function"}
    assert start["aws"] == {"lambda": {"request_id": REQUEST}}
    assert start["message"] == f"START RequestId: {REQUEST} Version: $LATEST"
    assert start["cloud"] == {"provider": "aws", "service": {"name": "lambda"}}
    env = docs[1]
    assert env["@timestamp"] == "2019-06-07T19:11:20.562Z"
    assert env["log"] == {"level": "INFO"}
    assert env["message"].startswith('ENVIRONMENT VARIABLES\n{\n  "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",')
    assert env["message"].endswith('node_modules",\n  ...\n}')
    assert env["faas"]["execution"] == REQUEST and env["aws"]["lambda"]["request_id"] == REQUEST
    assert docs[2]["message"] == 'EVENT\n{\n  "key": "value"\n}'
    assert docs[3]["log"] == {"level": "WARN"} and docs[3]["message"] == "Event not processed."
    assert docs[4]["aws"]["lambda"]["request_id"] == REQUEST
    for doc in docs:
        assert doc["faas"]["name"] == "my-function"
        assert_no_dash(doc)


def test_report_line_numbers() -> None:
    line = read_lines(NODEJS)[-1]
    doc = parse(line, keep_original=True, account_id="123456789012", region="us-east-2", **GROUP)
    assert doc["event"] == {"action": "platform.report", "duration": 128_830_000, "kind": "event", "original": line}
    assert doc["aws"]["lambda"] == {
        "request_id": REQUEST,
        "report": {
            "duration": {"ms": 128.83},
            "billed_duration": {"ms": 200.0},
            "memory_size": {"mb": 128},
            "max_memory_used": {"mb": 74},
            "init_duration": {"ms": 166.62},
        },
        "xray": {"sampled": True},
    }
    assert doc["trace"] == {"id": "1-5d9d007f-0a8c7fd02xmpl480aed55ef0"}
    assert doc["span"] == {"id": "3d752xmpl1bbe37e"}
    assert doc["faas"] == {
        "coldstart": True,
        "execution": REQUEST,
        "name": "my-function",
        "id": "arn:aws:lambda:us-east-2:123456789012:function:my-function",
        "version": "$LATEST",
    }
    assert doc["cloud"] == {
        "provider": "aws",
        "service": {"name": "lambda"},
        "account": {"id": "123456789012"},
        "region": "us-east-2",
    }


def test_get_log_events_messages_with_carriage_returns() -> None:
    events = json.loads(read_text(EVENTS))["events"]
    parser = LambdaParser(ParseContext(log_group="/aws/lambda/my-function",
                                       log_stream="2019/06/05/[$LATEST]53cd9f8a33c9497b9fd2a4e3d2a4f8f6"))
    docs = []
    for event in events:
        doc = parser.parse(event["message"])
        assert doc is not None  # every event is a document
        assert_no_dash(doc)
        assert_declared(doc)
        docs.append(doc)
    assert len(docs) == 5
    assert docs[0]["faas"]["version"] == "$LATEST"
    assert docs[1]["@timestamp"] == "2019-06-05T19:30:03.173Z"
    assert docs[1]["message"] == 'ENVIRONMENT VARIABLES\n{\n  "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",\n ...'
    assert docs[2]["message"] == 'EVENT\n{\n  "key": "value"\n}'  # "\r" -> "\n", trailing "\n" dropped
    assert docs[3]["message"] == "END RequestId: 4ce9340a-b765-490f-ad8a-02ab3415e2bf"
    report = docs[4]
    assert report["aws"]["lambda"]["report"] == {
        "duration": {"ms": 26.73},
        "billed_duration": {"ms": 27.0},
        "memory_size": {"mb": 128},
        "max_memory_used": {"mb": 75},
    }
    assert report["faas"]["coldstart"] is False
    assert report["event"]["duration"] == 26_730_000


def test_python_file_tabs_rendered_as_spaces() -> None:
    """12 lines: START, four `[INFO]` records, END, REPORT with its `XRAY TraceId:` tail joined, and four blank
    separator lines (non-events)."""
    docs, failures, skipped, lines = stream(PYTHON, log_group="/aws/lambda/my-function")
    assert lines == 12
    assert failures == [] and skipped == 4
    assert len(docs) == 7
    info = docs[1]
    assert info["log"] == {"level": "INFO"}
    assert info["@timestamp"] == "2020-01-31T22:12:58.534Z"
    assert info["aws"]["lambda"]["request_id"] == "1c8df7d3-xmpl-46da-9778-518e6eca8125"
    assert info["message"] == "## ENVIRONMENT VARIABLES"
    assert docs[4]["message"] == "{'key': 'value'}"
    report = docs[6]
    assert report["aws"]["lambda"]["report"]["duration"] == {"ms": 2.75}
    assert report["aws"]["lambda"]["report"]["billed_duration"] == {"ms": 3.0}
    assert report["aws"]["lambda"]["report"]["memory_size"] == {"mb": 128}
    assert report["aws"]["lambda"]["report"]["max_memory_used"] == {"mb": 56}
    assert report["aws"]["lambda"]["report"]["init_duration"] == {"ms": 113.51}
    assert report["trace"] == {"id": "1-5e34a66a-474xmpl7c2534a87870b4370"}
    assert report["span"] == {"id": "073cxmpl3e442861"}
    assert report["aws"]["lambda"]["xray"] == {"sampled": True}


def test_console_line_forms() -> None:
    node8 = parse("2019-06-07T19:11:20.562Z\t" + REQUEST + "\tno level in Node.js 8")
    assert node8["message"] == "no level in Node.js 8" and "log" not in node8
    init = parse("2019-06-07T19:11:20.562Z\tundefined\tINFO\toutside a request")
    assert "aws" not in init and "faas" not in init and init["message"] == "outside a request"
    python_init = parse("[WARNING]\t2020-01-31T22:12:58.534Z\t\tcold import")
    assert python_init["log"] == {"level": "WARNING"} and python_init["message"] == "cold import"
    assert python_init["@timestamp"] == "2020-01-31T22:12:58.534Z"
    crash = parse("[ERROR] Runtime.ImportModuleError: Unable to import module 'app': No module named 'x'\n"
                  "Traceback (most recent call last):")
    assert crash["log"] == {"level": "ERROR"}
    assert crash["message"].startswith("Runtime.ImportModuleError: Unable")
    timeout = parse(f"2023-11-01T10:00:03.000Z {REQUEST} Task timed out after 3.00 seconds")
    assert timeout["@timestamp"] == "2023-11-01T10:00:03.000Z"
    assert timeout["message"] == "Task timed out after 3.00 seconds"
    assert timeout["faas"]["execution"] == REQUEST
    exported = parse(f"2023-11-01T10:00:03.123Z START RequestId: {REQUEST} Version: 7")
    assert exported["@timestamp"] == "2023-11-01T10:00:03.123Z"  # the CloudWatch Logs export prefix
    assert exported["event"]["action"] == "platform.start" and exported["faas"]["version"] == "7"
    died = parse(f"RequestId: {REQUEST} Error: Runtime exited with error: signal: killed\nRuntime.ExitError")
    assert died["aws"]["lambda"]["request_id"] == REQUEST


def test_platform_lines() -> None:
    init = parse("INIT_START Runtime Version: python:3.9.v16\tRuntime Version ARN: "
                 "arn:aws:lambda:us-east-1::runtime:07a4")
    assert init["event"]["action"] == "platform.initStart"
    assert init["aws"]["lambda"]["runtime"] == {
        "version": "python:3.9.v16", "version_arn": "arn:aws:lambda:us-east-1::runtime:07a4"
    }
    init_report = parse("INIT_REPORT Init Duration: 10007.42 ms\tPhase: init\tStatus: timeout")
    assert init_report["aws"]["lambda"]["report"] == {
        "init_duration": {"ms": 10007.42}, "phase": "init", "status": "timeout"
    }
    assert init_report["event"]["outcome"] == "failure"
    ext = parse("EXTENSION\tName: my-agent\tState: Ready\tEvents: [INVOKE,SHUTDOWN]")
    assert ext["aws"]["lambda"]["extension"] == {"name": "my-agent", "state": "Ready", "events": "[INVOKE,SHUTDOWN]"}
    timeout = parse(f"REPORT RequestId: {REQUEST}\tDuration: 3000.00 ms\tBilled Duration: 3000 ms\tMemory Size: 128 MB"
                    "\tMax Memory Used: 40 MB\tStatus: timeout\tError Type: Sandbox.Timedout\tNew Metric: 7 units")
    report = timeout["aws"]["lambda"]["report"]
    assert report["status"] == "timeout" and timeout["event"]["outcome"] == "failure"
    assert timeout["error"] == {"type": "Sandbox.Timedout"}
    assert report["extra"] == {"new_metric": "7 units"}  # a field newer than this parser is kept
    snap = parse(f"REPORT RequestId: {REQUEST}\tDuration: 5.0 ms\tBilled Duration: 100 ms\tMemory Size: 512 MB\t"
                 "Max Memory Used: 90 MB\tRestore Duration: 300.5 ms\tBilled Restore Duration: 120 ms")
    assert snap["aws"]["lambda"]["report"]["restore_duration"] == {"ms": 300.5}
    assert snap["aws"]["lambda"]["report"]["billed_restore_duration"] == {"ms": 120.0}
    assert snap["faas"]["coldstart"] is True


def test_json_log_format_and_powertools() -> None:
    native = parse('{"timestamp":"2023-11-01T10:00:00.123Z","level":"INFO","message":"hello","logger":"root",'
                   f'"requestId":"{REQUEST}","order":{{"id":42}}}}', log_group="/aws/lambda/orders")
    assert native["@timestamp"] == "2023-11-01T10:00:00.123Z"
    assert native["log"] == {"level": "INFO", "logger": "root"}
    assert native["message"] == "hello"
    assert native["aws"]["lambda"] == {"request_id": REQUEST, "json": {"order": {"id": 42}}}
    assert native["faas"] == {"execution": REQUEST, "name": "orders"}
    powertools = parse(
        '{"level":"INFO","location":"collect_payment:10","message":"Collecting payment",'
        '"timestamp":"2021-05-03 11:47:12,494+0200","service":"payment","cold_start":true,'
        '"function_request_id":"52fdfc07-2182-154f-163f-5f0f9a621d72","xray_trace_id":"1-5759e988-bd862e3fe1be46a994272793"}'
    )
    assert powertools["@timestamp"] == "2021-05-03T09:47:12.494Z"
    assert powertools["service"] == {"name": "payment"}
    assert powertools["faas"] == {"coldstart": True, "execution": "52fdfc07-2182-154f-163f-5f0f9a621d72"}
    assert powertools["trace"] == {"id": "1-5759e988-bd862e3fe1be46a994272793"}
    assert powertools["aws"]["lambda"]["json"] == {"location": "collect_payment:10"}
    dict_message = parse('{"level":"DEBUG","message":{"a":1},"time":1700000000123}')
    assert dict_message["message"] == '{"a":1}'
    assert dict_message["@timestamp"] == "2023-11-14T22:13:20.123Z"
    bare = parse('{"just": "data"}')
    assert bare["message"] == '{"just": "data"}' and bare["aws"]["lambda"]["json"] == {"just": "data"}


def test_json_platform_events() -> None:
    report = parse(
        '{"time":"2023-11-01T10:00:00.500Z","type":"platform.report","record":{"requestId":"' + REQUEST + '",'
        '"metrics":{"durationMs":2.44,"billedDurationMs":3,"memorySizeMB":128,"maxMemoryUsedMB":64,'
        '"initDurationMs":150.2},"tracing":{"spanId":"1ee2b","type":"X-Amzn-Trace-Id",'
        '"value":"Root=1-653f-abc;Parent=aa;Sampled=1"},"status":"success"}}'
    )
    assert report["@timestamp"] == "2023-11-01T10:00:00.500Z"
    assert report["event"]["action"] == "platform.report" and report["event"]["outcome"] == "success"
    assert report["event"]["duration"] == 2_440_000
    assert report["aws"]["lambda"]["report"] == {
        "duration": {"ms": 2.44},
        "billed_duration": {"ms": 3.0},
        "memory_size": {"mb": 128},
        "max_memory_used": {"mb": 64},
        "init_duration": {"ms": 150.2},
        "status": "success",
    }
    assert report["trace"] == {"id": "1-653f-abc"} and report["span"] == {"id": "1ee2b"}
    assert report["faas"]["coldstart"] is True and report["faas"]["execution"] == REQUEST
    start = parse('{"time":"2023-11-01T10:00:00.000Z","type":"platform.start",'
                  '"record":{"requestId":"' + REQUEST + '","version":"$LATEST"}}')
    assert start["faas"]["version"] == "$LATEST" and start["aws"]["lambda"] == {"request_id": REQUEST}


@pytest.mark.parametrize(
    "line",
    [
        "plain text from print()",
        "{not json}",
        "[not a level] hello",
        "2023-99-99T99:99:99.000Z\tid\tINFO\tbad time",
        "2023-11-01T10:00:03.000Z",
        "[INFO]",
        "START RequestId:",
        "REPORT RequestId: x\tDuration: fast ms",
        "XRAY TraceId: 1-abc\tSegmentId: 12\tSampled: false",
        '{"type":"platform.report","record":"odd"}',
        "null",
        "]",
    ],
)
def test_unrecognised_lines_are_kept_never_refused(line: str) -> None:
    doc = parse(line, log_group="/aws/lambda/f")
    assert isinstance(doc.get("message"), str)
    assert doc["faas"]["name"] == "f"
    assert_no_dash(doc)


def test_function_name_version_from_group_and_stream() -> None:
    edge = parse("hello", log_group="/aws/lambda/us-east-1.edge-fn", log_stream="2023/11/01/[3]abc")
    assert edge["faas"] == {"name": "edge-fn", "version": "3"}
    other = parse("hello", log_group="/custom/group")
    assert "faas" not in other


def test_non_events_and_original() -> None:
    parser = LambdaParser(ParseContext())
    assert parser.parse("") is None
    assert parser.parse(" \t") is None
    assert parser.parse("\n") is None
    line = read_lines(NODEJS)[16]
    assert "original" not in parse(line)["event"]
    assert parse(line, keep_original=True)["event"]["original"] == line


def test_continuation_pattern() -> None:
    pattern = LambdaParser.continuation
    assert pattern is not None
    for cont in ("{", "[", '  "key": "value"', "}", "]", "\tat handler (index.js:3)", "XRAY TraceId: 1-5e3 x"):
        assert pattern.match(cont), cont
    for start in (f"START RequestId: {REQUEST} Version: $LATEST", "2019-06-07T19:11:20.563Z\tid\tINFO\tEVENT",
                  '{"level":"INFO"}', "[INFO]\t2020-01-31T22:12:58.534Z\tid\tmsg", "plain", ""):
        assert not pattern.match(start), start


def test_sniff() -> None:
    assert LambdaParser.sniff(read_text(NODEJS))
    assert LambdaParser.sniff(read_text(PYTHON))
    assert LambdaParser.sniff(f"2023-11-01T10:00:03.123Z START RequestId: {REQUEST} Version: 7\n")
    assert not LambdaParser.sniff(read_text(EVENTS))  # JSON API output, not a log file
    for other in (
        "rds_postgresql/opensearch-catalog_amazon_rds-raw.log",
        "rds_mysql/clo_rds.log",
        "elb/elastic-integrations_test-alb.log",
        "cloudwatch_subscription/awsdocs_lambda-services-cloudwatchlogs_decoded-payload.json",
    ):
        assert not LambdaParser.sniff(read_text(other)[:65536]), other
