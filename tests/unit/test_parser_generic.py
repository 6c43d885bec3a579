"""Tests for the `generic` fallback parser: every line becomes a document, JSON lines keep their structure."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tests.corpus import CORPUS, read_lines
from worker.parsers import ParseContext, get_parser
from worker.parsers._fields import flatten
from worker.parsers.generic import GenericParser, epoch_number_to_iso, timestamp_value

WAF = "waf/awsdocs_waf-logging-examples.log"
FIREWALL = "network_firewall/elastic-integrations_test-firewall.log"
LAMBDA_PY = "lambda/awsdocs_python-logging_logging-library.log"


def parse(line: Any, **ctx: Any) -> dict[str, Any]:
    doc = GenericParser(ParseContext(**ctx)).parse(line)
    assert doc is not None
    return doc


def test_registry() -> None:
    cls = get_parser("generic")
    assert cls is GenericParser
    assert cls.framing == "lines"
    assert cls.fields["json"] == "flattened"
    assert cls.fields["message"] == "text"
    assert cls.fields["@timestamp"] == "date"


def test_plain_text_line_is_the_message() -> None:
    line = read_lines(LAMBDA_PY)[0]
    assert line.startswith("START RequestId: 1c8df7d3")
    assert parse(line) == {"message": line, "cloud": {"provider": "aws"}}


def test_plain_text_keeps_the_line_verbatim_and_has_no_timestamp() -> None:
    line = read_lines(LAMBDA_PY)[1]
    assert line.startswith("[INFO]  2020-01-31T22:12:58.534Z")
    doc = parse(line)
    assert doc["message"] == line
    assert "@timestamp" not in doc  # the pipeline falls back to the object's LastModified


def test_blank_lines_are_not_events() -> None:
    p = GenericParser(ParseContext())
    for line in ("", " ", "\t", "  \t  "):
        assert p.parse(line) is None


def test_json_line_waf_epoch_millis_timestamp() -> None:
    line = read_lines(WAF)[0]
    doc = parse(line)
    assert doc["@timestamp"] == "2019-12-13T23:40:12.771Z"  # "timestamp": 1576280412771
    assert doc["json"] == orjson.loads(line)
    assert doc["json"]["httpRequest"]["clientIp"]
    assert "message" not in doc
    assert "log" not in doc


def test_json_line_without_a_time_key_has_no_timestamp() -> None:
    line = read_lines(FIREWALL)[0]
    doc = parse(line)
    assert "@timestamp" not in doc  # event_timestamp / event.timestamp are not generic time keys
    assert doc["json"]["firewall_name"] == "AWSNetworkFirewall"
    assert doc["json"]["event"]["src_port"] == 51254


def test_structured_logger_line() -> None:
    line = '{"time":"2024-05-02T10:15:42.120+02:00","level":"warn","msg":"retrying upload","attempt":2}'
    doc = parse(line)
    assert doc["@timestamp"] == "2024-05-02T08:15:42.120Z"
    assert doc["message"] == "retrying upload"
    assert doc["log"] == {"level": "warn"}
    assert doc["json"] == {"time": "2024-05-02T10:15:42.120+02:00", "level": "warn", "msg": "retrying upload",
                           "attempt": 2}


def test_key_precedence_and_ecs_style_keys() -> None:
    line = ('{"@timestamp":"2023-01-02T03:04:05Z","timestamp":1,"log.level":"ERROR","message":"boom",'
            '"msg":"ignored","severity":"x"}')
    doc = parse(line)
    assert doc["@timestamp"] == "2023-01-02T03:04:05.000Z"
    assert doc["message"] == "boom"
    assert doc["log"] == {"level": "x"}  # severity comes before log.level in the lookup order


def test_invalid_first_time_key_falls_through_to_the_next() -> None:
    doc = parse('{"timestamp":"not a time","ts":1700000000}')
    assert doc["@timestamp"] == "2023-11-14T22:13:20.000Z"
    assert doc["json"]["timestamp"] == "not a time"


def test_numeric_level_and_non_string_message() -> None:
    doc = parse('{"level":30,"message":{"nested":true},"ts":"1700000000.250"}')
    assert doc["log"] == {"level": "30"}
    assert "message" not in doc
    assert doc["json"]["message"] == {"nested": True}
    assert doc["@timestamp"] == "2023-11-14T22:13:20.250Z"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1576280412, "2019-12-13T23:40:12.000Z"),
        (1576280412.5, "2019-12-13T23:40:12.500Z"),
        (1576280412771, "2019-12-13T23:40:12.771Z"),
        (1576280412771123, "2019-12-13T23:40:12.771Z"),
        (1576280412771123456, "2019-12-13T23:40:12.771Z"),
        ("1576280412771", "2019-12-13T23:40:12.771Z"),
        ("2019-12-13T23:40:12.771Z", "2019-12-13T23:40:12.771Z"),
        ("2019-12-13T23:40:12", "2019-12-13T23:40:12.000Z"),
        ("2021-11-08T14:22:12.637611+0000", "2021-11-08T14:22:12.637Z"),
        (5, None),
        (-1576280412, None),
        (1e30, None),
        (float("nan"), None),
        (float("inf"), None),
        (True, None),
        (None, None),
        ("", None),
        ("yesterday", None),
        ("2023-02-31T00:00:00Z", None),
        ("9" * 5000, None),
        ({"a": 1}, None),
    ],
)
def test_timestamp_value(value: Any, expected: str | None) -> None:
    assert timestamp_value(value) == expected


def test_epoch_number_to_iso_limits() -> None:
    # Every unit spans 1973-03 .. 5138-11: four-digit years only, so the index never refuses the date.
    assert epoch_number_to_iso(99_999_999_999) == "5138-11-16T09:46:39.000Z"
    assert epoch_number_to_iso(100_000_000_000) == "1973-03-03T09:46:40.000Z"  # from here on: milliseconds
    assert epoch_number_to_iso(99_999_999_999_999) == "5138-11-16T09:46:39.999Z"
    assert epoch_number_to_iso(99_999_999) is None
    assert epoch_number_to_iso(10**20) is None


def test_implausible_time_stays_in_json_only() -> None:
    doc = parse('{"time": 12, "message": "took 12 s"}')
    assert "@timestamp" not in doc
    assert doc["json"]["time"] == 12


@pytest.mark.parametrize(
    "line",
    [
        "{not json}",
        "{\"a\": 1",
        "[1, 2, 3]",
        "\"just a string\"",
        "{}",
        "{\"a\": 1} trailing",
    ],
)
def test_lines_that_are_not_json_objects_are_messages(line: str) -> None:
    doc = parse(line)
    assert doc["message"] == line
    assert "json" not in doc


def test_leading_whitespace_json_object() -> None:
    doc = parse('   {"message": "indented"}')
    assert doc["message"] == "indented"
    assert doc["json"] == {"message": "indented"}


def test_context_fields() -> None:
    doc = parse(
        "hello",
        account_id="123456789012",
        region="eu-west-1",
        log_group="/aws/lambda/my-function",
        log_stream="2020/01/31/[$LATEST]1bbe51xmplb34a2788dbaa7433b0aa4d",
    )
    assert doc["cloud"] == {"provider": "aws", "account": {"id": "123456789012"}, "region": "eu-west-1"}
    assert doc["aws"] == {
        "cloudwatch": {
            "log_group": "/aws/lambda/my-function",
            "log_stream": "2020/01/31/[$LATEST]1bbe51xmplb34a2788dbaa7433b0aa4d",
        }
    }
    assert "aws" not in parse("hello")


def test_event_original_only_with_keep_original() -> None:
    line = '{"message": "m"}'
    assert "event" not in parse(line)
    assert parse(line, keep_original=True)["event"] == {"original": line}
    assert parse("plain", keep_original=True)["event"] == {"original": "plain"}


def test_non_string_records_never_fail() -> None:
    doc = parse({"ts": 1700000000, "msg": "from a JSON framer"})
    assert doc["message"] == "from a JSON framer"
    assert doc["@timestamp"] == "2023-11-14T22:13:20.000Z"
    assert parse(b"bytes line")["message"] == "bytes line"
    assert parse(42)["message"] == "42"
    assert GenericParser(ParseContext()).parse(b"  ") is None


def test_sniff_is_always_false() -> None:
    assert not GenericParser.sniff("")
    assert not GenericParser.sniff("hello world\n")
    assert not GenericParser.sniff('{"message": "x"}\n')


def test_no_silent_drops_on_the_whole_corpus() -> None:
    """Every line of every corpus file (of every type) is a document; only blank lines are None; nothing raises."""
    files = [p for p in CORPUS.rglob("*") if p.is_file() and p.parent.name != "LICENSES"]
    assert len(files) > 50
    lines = docs = blanks = 0
    for path in files:
        p = GenericParser(ParseContext(keep_original=True))
        for line in read_lines(str(path.relative_to(CORPUS))):
            lines += 1
            doc = p.parse(line)
            if doc is None:
                assert not line.strip(), (path, line)
                blanks += 1
                continue
            docs += 1
            assert doc["event"]["original"] == line
            assert "message" in doc or "json" in doc
            for key, value in flatten(doc).items():
                if key == "@timestamp":
                    assert len(value) == 24 and value.endswith("Z"), value
    assert docs + blanks == lines
    assert docs > 1000


def test_every_emitted_field_is_declared() -> None:
    declared = GenericParser.fields
    docs = [
        parse('{"time":"2024-05-02T10:15:42.120Z","level":"warn","msg":"m","x":{"y":1}}',
              account_id="1", region="r", log_group="g", log_stream="s"),
        parse("plain", account_id="1", region="r", log_group="g", log_stream="s"),
    ]
    for doc in docs:
        for key in flatten(doc):
            assert key in declared or key.startswith("json."), key
    assert GenericParser.example
    example = parse(GenericParser.example)
    assert example["message"] == "retrying upload"
    assert example["@timestamp"] == "2024-05-02T10:15:42.120Z"
