"""Golden tests for RDS / Aurora PostgreSQL logs (default `%t:%r:%u@%d:[%p]:` prefix) on the shared corpus."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.corpus import read_lines, read_text
from worker.parsers import ParseContext, ParseError, Reroute, get_parser
from worker.parsers._fields import flatten
from worker.parsers.rds_postgresql import RdsPostgresqlParser
from worker.parsers.stream import StreamParser

AWSDOCS = "rds_postgresql/awsdocs_USER_LogAccess.Concepts.PostgreSQL_examples.log"
CATALOG = "rds_postgresql/opensearch-catalog_amazon_rds-raw.log"
GROUP = {"log_group": "/aws/rds/instance/database-1/postgresql", "log_stream": "database-1"}


def parse(line: str, **ctx: Any) -> dict[str, Any]:
    doc = RdsPostgresqlParser(ParseContext(**ctx)).parse(line)
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
    fields = RdsPostgresqlParser.fields
    flattened = tuple(name + "." for name, kind in fields.items() if kind == "flattened")
    for key in flatten(doc):
        assert key in fields or key.startswith(flattened), key



def stream(relative: str, **ctx: Any) -> tuple[list[tuple[int, dict[str, Any]]], list[Any], int, int]:
    """A corpus file through the stream layer: (offset, doc) pairs, failures, non-events, line count."""
    sp = StreamParser("rds_postgresql", ParseContext(**ctx))
    frames, offset = [], 0
    for line in read_lines(relative):
        frames.append((offset, line))
        offset += len(line) + 1
    docs, failures, skipped = sp.process(frames)
    more, more_failures, more_skipped = sp.finish()
    pairs = [(off, body) for off, _, _, body in docs + more]
    for _, body in pairs:
        assert_declared(body)
    return pairs, failures + more_failures, skipped + more_skipped, len(frames)


def test_registry() -> None:
    cls = get_parser("rds_postgresql")
    assert cls is RdsPostgresqlParser
    assert cls.framing == "lines"
    assert cls.continuation is not None
    assert parse(cls.example)["log"] == {"level": "ERROR"}


def test_error_line_all_fields() -> None:
    line = read_lines(CATALOG)[0]
    doc = parse(line, keep_original=True, account_id="123456789012", region="us-east-1", **GROUP)
    assert doc == {
        "@timestamp": "2019-03-10T03:54:59.000Z",
        "event": {
            "kind": "event",
            "category": ["database"],
            "type": ["error"],
            "timezone": "UTC",
            "original": line,
        },
        "log": {"level": "ERROR"},
        "message": 'column "wrong_column_name" does not exist at character 8',
        "postgresql": {
            "log": {
                "timestamp": "2019-03-10 03:54:59 UTC",
                "client_addr": "10.0.0.123",
                "client_port": 52834,
                "database": "logtestdb",
            }
        },
        "source": {"address": "10.0.0.123", "ip": "10.0.0.123", "port": 52834},
        "user": {"name": "postgres"},
        "related": {"user": ["postgres"]},
        "process": {"pid": 20175},
        "aws": {"rds": {"log_type": "postgresql", "db_instance": {"identifier": "database-1"}}},
        "cloud": {
            "provider": "aws",
            "service": {"name": "rds"},
            "account": {"id": "123456789012"},
            "region": "us-east-1",
        },
    }


def test_statement_line_is_a_query() -> None:
    doc = parse(read_lines(CATALOG)[1])
    assert doc["log"] == {"level": "STATEMENT"}
    assert doc["event"]["type"] == ["info"]
    assert doc["postgresql"]["log"]["query"] == "SELECT wrong_column_name FROM logtest1;"
    assert doc["message"] == "SELECT wrong_column_name FROM logtest1;"
    assert "aws" not in doc and "event" in doc and "original" not in doc["event"]


def test_no_silent_drops_catalog_file() -> None:
    docs, failures, skipped, lines = stream(CATALOG)
    assert lines == 402
    assert failures == [] and skipped == 0
    assert len(docs) == 402
    levels = [doc["log"]["level"] for _, doc in docs]
    assert levels.count("ERROR") == 201 and levels.count("STATEMENT") == 201
    for _, doc in docs:
        assert_no_dash(doc)
        assert doc["@timestamp"].endswith(".000Z")
        assert doc["postgresql"]["log"]["client_addr"].startswith("10.0.0.")


def test_awsdocs_file_multiline_records_and_end_of_log_markers() -> None:
    """23 physical lines: 10 records (multi-line statements and a DETAIL block joined), 2 `END OF LOG` markers
    (non-events: RDS appends them to a log file it hands out), no failures."""
    docs, failures, skipped, lines = stream(AWSDOCS)
    assert lines == 23
    assert failures == []
    assert skipped == 2
    assert len(docs) == 10
    by_level = [doc["log"]["level"] for _, doc in docs]
    assert by_level == ["LOG", "LOG", "DETAIL", "STATEMENT", "ERROR", "STATEMENT", "LOG", "LOG", "LOG", "LOG"]
    first = docs[0][1]
    assert docs[0][0] == 0
    assert first["postgresql"]["log"]["query_step"] == "statement"
    assert first["postgresql"]["log"]["query"] == (
        "SELECT feedback, s.sentiment,s.confidence\n"
        "FROM support,aws_comprehend.detect_sentiment(feedback, 'en') s\n"
        "ORDER BY s.confidence DESC;"
    )
    assert first["source"] == {"address": "52.95.4.1", "ip": "52.95.4.1", "port": 11335}
    assert first["postgresql"]["log"]["database"] == "labdb"
    detail = docs[2][1]
    assert detail["message"].startswith("! system usage stats:\n! 0.017355 s user")
    assert detail["message"].endswith("! 19/0 [27/0] voluntary/involuntary context switches")
    assert detail["message"].count("\n") == 7
    error = docs[4][1]
    assert error["event"]["type"] == ["error"]
    assert error["message"] == 'syntax error at or near "ORDER" at character 1'
    duration = docs[7][1]
    assert duration["message"] == "duration: 167.754 ms"
    assert duration["event"]["duration"] == 167_754_000
    background = docs[8][1]
    assert background["message"] == "checkpoint starting: time"
    assert background["process"] == {"pid": 355}
    assert "user" not in background and "source" not in background and "database" not in background["postgresql"]["log"]
    for _, doc in docs:
        assert "END OF LOG" not in doc["message"]
        assert_no_dash(doc)


def test_cloudwatch_event_with_multiline_statement() -> None:
    text = read_text(AWSDOCS).split("\n")
    record = "\n".join(text[:3])  # one CloudWatch Logs event holds the whole statement
    doc = parse(record, **GROUP)
    assert doc["postgresql"]["log"]["query"].endswith("ORDER BY s.confidence DESC;")


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "2013-11-05 16:51:10 UTC:[local]:master@postgres:[9193]:LOG:  statement: SELECT 1;",
            {"postgresql.log.client_addr": "local", "user.name": "master", "postgresql.log.database": "postgres",
             "postgresql.log.query_step": "statement", "postgresql.log.query": "SELECT 1;"},
        ),
        (
            "2013-11-05 16:45:14 UTC:172.23.160.69(59176):[unknown]@[unknown]:[9002]:FATAL:  unsupported frontend "
            "protocol 1234.5679: server supports 2.0 to 3.0",
            {"user.name": "unknown", "postgresql.log.database": "unknown", "event.type": ["error"],
             "message": "unsupported frontend protocol 1234.5679: server supports 2.0 to 3.0"},
        ),
        (
            "2022-06-16 17:58:40.123 UTC:2001:db8::1(5432):app@shop:[1]:LOG:  duration: 0.052 ms  execute S_1: "
            "SELECT $1",
            {"source.ip": "2001:db8::1", "source.port": 5432, "event.duration": 52_000, "@timestamp":
             "2022-06-16T17:58:40.123Z", "postgresql.log.query_step": "execute", "postgresql.log.query_name": "S_1",
             "postgresql.log.query": "SELECT $1"},
        ),
        (
            "2022-06-16 17:58:40 UTC:db-client.internal(40000):app@shop:[1]:LOG:  duration: 1.5 ms  bind <unnamed>: "
            "SELECT 2",
            {"source.domain": "db-client.internal", "source.address": "db-client.internal",
             "postgresql.log.query_step": "bind", "postgresql.log.query": "SELECT 2", "event.duration": 1_500_000},
        ),
        (
            "2022-06-16 17:58:40 +03::@:[7770]:LOG:  checkpoint starting: time",
            {"@timestamp": "2022-06-16T14:58:40.000Z", "event.timezone": "+03"},
        ),
        (
            "2022-01-16 17:58:40 CET::@:[7770]:WARNING:  something",
            {"@timestamp": "2022-01-16T16:58:40.000Z", "log.level": "WARNING", "event.type": ["info"]},
        ),
        (
            "2022-06-16T17:58:40.000Z 2022-06-16 17:58:40 UTC::@:[7770]:LOG:  exported by CloudWatch Logs",
            {"@timestamp": "2022-06-16T17:58:40.000Z", "message": "exported by CloudWatch Logs"},
        ),
        (
            "2022-06-16 17:58:40 UTC:10.1.2.3(5432):rdsadmin@rdsadmin:[88]:DEBUG1:  x",
            {"log.level": "DEBUG1", "user.name": "rdsadmin"},
        ),
    ],
)
def test_line_forms(line: str, expected: dict[str, Any]) -> None:
    flat = flatten(parse(line))
    for key, value in expected.items():
        assert flat.get(key) == value, key


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("hello world", "no `YYYY-MM-DD HH:MM:SS TZ:` prefix"),
        ("2022-06-16 17:58:40 Mars/Olympus::@:[7770]:LOG:  x", "time zone not known"),
        ("2022-06-16 17:58:40 UTC:10.0.0.1:postgres@db:[1]:LOG:  x", "client is not `host(port)`"),
        ("2022-06-16 17:58:40 UTC::postgres-db-1:LOG:  x", "no `user@db:[pid]:`"),
        ("2022-06-16 17:58:40 UTC::@:[7770]:", "no `LEVEL:` severity"),
        ("2022-13-16 17:58:40 UTC::@:[7770]:LOG:  x", "not a time"),
        ("2022-06-16 17:58:40 UTC::@:[1]:LOG:  duration: fast ms", "duration is not a number"),
    ],
)
def test_malformed_lines_are_refused_with_a_reason(line: str, reason: str) -> None:
    with pytest.raises(ParseError, match=re.escape(reason)):
        RdsPostgresqlParser(ParseContext()).parse(line)


def test_non_events() -> None:
    parser = RdsPostgresqlParser(ParseContext())
    assert parser.parse("") is None
    assert parser.parse("  ") is None
    assert parser.parse("----------------------- END OF LOG ----------------------") is None


def test_mysql_group_is_rerouted() -> None:
    parser = RdsPostgresqlParser(ParseContext(log_group="/aws/rds/cluster/aurora-1/slowquery", log_stream="i-1"))
    with pytest.raises(Reroute) as info:
        parser.parse("# Time: 2022-02-18T06:02:22.837877Z")
    assert info.value.log_type == "rds_mysql"


def test_cluster_group_names_instance_and_cluster() -> None:
    doc = parse(read_lines(CATALOG)[0], log_group="/aws/rds/cluster/aurora-pg/postgresql", log_stream="aurora-pg-1")
    assert doc["aws"]["rds"] == {
        "log_type": "postgresql",
        "db_instance": {"identifier": "aurora-pg-1", "db_cluster_identifier": "aurora-pg"},
    }


def test_continuation_pattern() -> None:
    pattern = RdsPostgresqlParser.continuation
    assert pattern is not None
    assert not pattern.match("2022-10-05 22:05:52 UTC:52.95.4.1(11335):postgres@labdb:[3639]:LOG: x")
    assert not pattern.match("2022-10-05T22:05:52.000Z 2022-10-05 22:05:52 UTC::@:[1]:LOG: x")
    assert not pattern.match("----------------------- END OF LOG ----------------------")
    for line in ("FROM support", "! 36644 kB max resident size", "", "\tORDER BY 1;", "2022 was a year"):
        assert pattern.match(line), line


def test_sniff() -> None:
    assert RdsPostgresqlParser.sniff(read_text(CATALOG))
    assert RdsPostgresqlParser.sniff(read_text(AWSDOCS))
    for other in (
        "lambda/awsdocs_nodejs-logging_function-output.log",
        "rds_mysql/clo_rds.log",
        "elb/elastic-integrations_test-alb.log",
        "s3access/elastic-integrations_test-s3-server-access.log",
        "route53_public/elastic-integrations_test-route53.log",
    ):
        assert not RdsPostgresqlParser.sniff(read_text(other)[:65536]), other
    assert not RdsPostgresqlParser.sniff("2023-01-01T00:00:00.123456Z 0 [Note] [MY-010931] [Server] ready")
