"""Golden tests for RDS / Aurora MySQL logs (slow query, error, general, audit), on the real CloudWatch Logs
subscription payloads of the shared corpus and on the other documented line forms."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.corpus import read_lines, read_text
from worker.parsers import ParseContext, ParseError, Reroute, get_parser
from worker.parsers._fields import flatten
from worker.parsers.rds_mysql import RdsMysqlParser, naive_utc
from worker.parsers.stream import StreamParser

CORPUS = "rds_mysql/clo_rds.log"
SLOW_GROUP = "/aws/rds/cluster/myaudb/slowquery"


def envelopes() -> list[dict[str, Any]]:
    """The corpus file's CloudWatch Logs subscription payloads (concatenated JSON objects, no separator)."""
    text = read_text(CORPUS)
    decoder = json.JSONDecoder()
    out: list[dict[str, Any]] = []
    pos = 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return out
        obj, pos = decoder.raw_decode(text, pos)
        out.append(obj)


def events(group_suffix: str) -> tuple[ParseContext, list[str]]:
    for env in envelopes():
        if env["logGroup"].endswith(group_suffix):
            ctx = ParseContext(log_group=env["logGroup"], log_stream=env["logStream"], account_id=env["owner"])
            return ctx, [event["message"] for event in env["logEvents"]]
    raise AssertionError(group_suffix)


def parse(record: str, **ctx: Any) -> dict[str, Any]:
    doc = RdsMysqlParser(ParseContext(**ctx)).parse(record)
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
    fields = RdsMysqlParser.fields
    flattened = tuple(name + "." for name, kind in fields.items() if kind == "flattened")
    for key in flatten(doc):
        assert key in fields or key.startswith(flattened), key



def stream_docs(text: str, **ctx: Any) -> tuple[list[dict[str, Any]], list[Any], int]:
    """Run text through the stream layer as an S3 file would (continuation lines joined)."""
    sp = StreamParser("rds_mysql", ParseContext(**ctx))
    frames, offset = [], 0
    for line in text.split("\n"):
        frames.append((offset, line))
        offset += len(line) + 1
    docs, failures, skipped = sp.process(frames)
    more, more_failures, more_skipped = sp.finish()
    for _, _, _, body in docs + more:
        assert_declared(body)
    return [body for _, _, _, body in docs + more], failures + more_failures, skipped + more_skipped


def test_registry() -> None:
    cls = get_parser("rds_mysql")
    assert cls is RdsMysqlParser
    assert cls.framing == "lines"
    assert cls.continuation is not None
    assert cls.routing and cls.example
    assert parse(cls.example)["mysql"]["slowlog"]["rows_sent"] == 1071


def test_no_silent_drops_every_corpus_event_is_a_document() -> None:
    counts: dict[str, int] = {}
    total = 0
    for env in envelopes():
        parser = RdsMysqlParser(ParseContext(log_group=env["logGroup"], log_stream=env["logStream"]))
        for event in env["logEvents"]:
            doc = parser.parse(event["message"])  # a ParseError would fail the test: all 160 are documents
            assert isinstance(doc, dict) and "@timestamp" in doc
            assert_no_dash(doc)
            assert_declared(doc)
            kind = doc["aws"]["rds"]["log_type"]
            counts[kind] = counts.get(kind, 0) + 1
            total += 1
    assert total == 160
    assert counts == {"slowquery": 135, "error": 2, "audit": 23}


def test_slow_query_entry() -> None:
    ctx, messages = events("slowquery")
    parser = RdsMysqlParser(ParseContext(log_group=ctx.log_group, log_stream=ctx.log_stream, account_id="123456789012",
                                         region="eu-west-1", keep_original=True))
    doc = parser.parse(messages[0])
    assert doc is not None
    assert doc["@timestamp"] == "2022-02-18T06:02:22.837Z"  # `# Time:` (microseconds), not SET timestamp
    assert doc["event"] == {
        "kind": "event",
        "category": ["database"],
        "type": ["info"],
        "duration": 2_033_731_000,
        "original": messages[0],
    }
    slow = doc["mysql"]["slowlog"]
    assert slow["query_time"] == {"sec": 2.033731}
    assert slow["lock_time"] == {"sec": 0.000119}
    assert slow["rows_sent"] == 1071 and slow["rows_examined"] == 1071
    assert slow["current_user"] == "admin"
    assert slow["query"].startswith("SELECT intcol1,charcol1,") and slow["query"].endswith(" FROM t1\x00;")
    assert doc["mysql"]["thread_id"] == 116
    assert doc["user"] == {"name": "admin"}
    assert doc["source"] == {"ip": "54.171.161.51"}  # `@  [ip]`: no host name
    assert doc["aws"] == {
        "rds": {
            "log_type": "slowquery",
            "db_instance": {"identifier": "myaudb-instance-1", "db_cluster_identifier": "myaudb"},
        }
    }
    assert doc["cloud"] == {
        "provider": "aws",
        "service": {"name": "rds"},
        "account": {"id": "123456789012"},
        "region": "eu-west-1",
    }
    assert "service" not in doc
    # the second payload's entries too: thread id padded with spaces, different numbers
    second = parser.parse(envelopes()[1]["logEvents"][3]["message"])
    assert second is not None
    assert second["mysql"]["thread_id"] == 124
    assert second["mysql"]["slowlog"]["rows_examined"] == 1123
    assert second["event"]["duration"] == 3_841_867_000


def test_slow_query_extended_fields_and_schema() -> None:
    entry = (
        "# Time: 2019-03-24T14:04:51.082107Z\n"
        "# User@Host: root[root] @ localhost []  Id:    16\n"
        "# Query_time: 2.631844  Lock_time: 0.000145 Rows_sent: 10  Rows_examined: 3145718 Thread_id: 16 Errno: 0 "
        "Killed: 0 Bytes_received: 0 Bytes_sent: 312 Read_first: 1 Read_key: 3144072 Sort_rows: 10 "
        "Created_tmp_disk_tables: 0 Created_tmp_tables: 1 Start: 2019-03-24T14:04:51.082107Z "
        "End: 2019-03-24T14:04:53.713951Z Brand_new_counter: 7\n"
        "use employees;\nSET timestamp=1553436291;\nSELECT last_name\n    FROM employees;"
    )
    doc = parse(entry)
    slow = doc["mysql"]["slowlog"]
    assert slow["schema"] == "employees"
    assert slow["query"] == "SELECT last_name\n    FROM employees;"
    assert slow["bytes_sent"] == 312 and slow["read_key"] == 3144072 and slow["tmp_tables"] == 1
    assert slow["tmp_disk_tables"] == 0 and slow["last_errno"] == "0" and slow["killed"] == "0"
    assert slow["extra"] == {"Brand_new_counter": "7"}  # a key newer than the parser is kept, as text
    assert doc["event"]["start"] == "2019-03-24T14:04:51.082Z"
    assert doc["event"]["end"] == "2019-03-24T14:04:53.713Z"
    assert doc["source"] == {"domain": "localhost"}
    assert doc["user"] == {"name": "root"}


def test_mariadb_slow_entry_old_time_uses_set_timestamp() -> None:
    entry = (
        "# Time: 230101  9:00:00\n# User@Host: app[app] @ web-1 [10.0.0.9]\n"
        "# Thread_id: 8  Schema: shop  QC_hit: No\n"
        "# Query_time: 1.500000  Lock_time: 0.000010  Rows_sent: 1  Rows_examined: 0\n"
        "# Rows_affected: 0  Bytes_sent: 64\nSET timestamp=1672563601;\nselect sleep(1.5);"
    )
    doc = parse(entry)
    assert doc["@timestamp"] == "2023-01-01T09:00:01.000Z"
    assert doc["mysql"]["thread_id"] == 8
    slow = doc["mysql"]["slowlog"]
    assert slow["schema"] == "shop" and slow["query_cache_hit"] is False and slow["rows_affected"] == 0
    assert doc["source"] == {"domain": "web-1", "ip": "10.0.0.9"}
    assert doc["event"]["duration"] == 1_500_000_000


def test_error_log_innodb_deadlock_dump() -> None:
    ctx, messages = events("error")
    first = parse(messages[0], log_group=ctx.log_group, log_stream=ctx.log_stream)
    assert first["@timestamp"] == "2022-02-18T06:12:07.000Z"
    assert first["message"] == "InnoDB: transactions deadlock detected, dumping detailed information."
    assert first["process"] == {"thread": {"id": 0x2B76B6E68700}}
    assert first["event"] == {"kind": "event", "category": ["database"], "type": ["info"]}
    dump = parse(messages[1], log_group=ctx.log_group, log_stream=ctx.log_stream)
    # the repeated `<time> 0x<thread>` prefix Aurora writes is dropped; the dump stays one document
    assert dump["message"].startswith("*** (1) TRANSACTION:\nTRANSACTION 1769579, ACTIVE 15 sec")
    assert dump["message"].endswith("asc aiden2;;")
    assert dump["message"].count("\n") == messages[1].count("\n") - 1
    assert dump["process"] == {"thread": {"id": 0x2B76B6E68700}}


@pytest.mark.parametrize(
    ("line", "timestamp", "thread", "level", "message", "code", "provider"),
    [
        (
            "2023-01-01T00:00:00.123456Z 0 [Note] [MY-010931] [Server] /rdsdbbin/mysql/bin/mysqld: ready for "
            "connections.",
            "2023-01-01T00:00:00.123Z", 0, "Note", "/rdsdbbin/mysql/bin/mysqld: ready for connections.",
            "MY-010931", "Server",
        ),
        (
            "2017-10-03T12:02:30.987654Z 12 [Warning] InnoDB: page_cleaner: 1000ms intended loop took 4519ms.",
            "2017-10-03T12:02:30.987Z", 12, "Warning", "InnoDB: page_cleaner: 1000ms intended loop took 4519ms.",
            None, None,
        ),
        (
            "2023-01-01 00:00:00 1234 [Warning] Aborted connection 1234 to db: 'x' user: 'y' host: '10.0.0.1'",
            "2023-01-01T00:00:00.000Z", 1234, "Warning",
            "Aborted connection 1234 to db: 'x' user: 'y' host: '10.0.0.1'", None, None,
        ),
        (
            "2019-03-27  9:17:52 0 [Note] InnoDB: Using Linux native AIO",
            "2019-03-27T09:17:52.000Z", 0, "Note", "InnoDB: Using Linux native AIO", None, None,
        ),
        ("150101 12:00:00 [Note] Plugin 'FEDERATED' is disabled.", "2015-01-01T12:00:00.000Z", None, "Note",
         "Plugin 'FEDERATED' is disabled.", None, None),
    ],
)
def test_error_log_line_forms(
    line: str, timestamp: str, thread: int | None, level: str, message: str, code: str | None, provider: str | None
) -> None:
    doc = parse(line)
    assert doc["@timestamp"] == timestamp
    assert doc.get("mysql", {}).get("thread_id") == thread
    assert doc["log"] == {"level": level}
    assert doc["message"] == message
    assert doc["event"].get("code") == code
    assert doc["event"].get("provider") == provider
    assert "aws" not in doc  # no CloudWatch group: nothing known about the instance


def test_error_level_error_is_an_error_event() -> None:
    doc = parse("2023-01-01T00:00:00.123456Z 12 [ERROR] [MY-010584] [Repl] Replica SQL: Error", log_group=
                "/aws/rds/instance/db1/error", log_stream="db1")
    assert doc["event"]["type"] == ["info", "error"]
    assert doc["aws"]["rds"] == {"log_type": "error", "db_instance": {"identifier": "db1"}}


def test_error_record_without_time_is_kept_as_message() -> None:
    doc = parse("Version: '8.0.28'  socket: '/tmp/mysql.sock'  port: 3306  Source distribution",
                log_group="/aws/rds/instance/db1/error")
    assert doc["message"].startswith("Version: '8.0.28'")
    assert "@timestamp" not in doc  # the pipeline dates it with the event's / object's time


def test_general_log_lines() -> None:
    group = {"log_group": "/aws/rds/instance/db1/general", "log_stream": "db1"}
    connect = parse("2023-01-01T00:00:00.123456Z\t   12 Connect\tadmin@10.0.0.1 on mydb using SSL/TLS", **group)
    assert connect["@timestamp"] == "2023-01-01T00:00:00.123Z"
    assert connect["mysql"] == {
        "thread_id": 12,
        "general": {"command": "Connect", "argument": "admin@10.0.0.1 on mydb using SSL/TLS"},
    }
    assert connect["event"]["action"] == "connect"
    assert connect["user"] == {"name": "admin"}
    assert connect["source"] == {"ip": "10.0.0.1"}
    init = parse("2023-01-01T00:00:01.5Z\t   12 Init DB\tmydb", **group)
    assert init["event"]["action"] == "init_db" and init["message"] == "mydb"
    assert init["@timestamp"] == "2023-01-01T00:00:01.500Z"
    quit_ = parse("2023-01-01T00:00:02.000001Z\t   12 Quit\t", **group)
    assert quit_["mysql"]["general"] == {"command": "Quit"} and quit_["message"] == "Quit"


def test_general_log_old_form_same_second_lines_take_the_previous_time() -> None:
    text = "150101 12:00:00\t   12 Query\tSELECT 1\n\t\t   13 Query\tSELECT 2\n\t\t   14 Quit\t"
    docs, failures, skipped = stream_docs(text)
    assert failures == [] and skipped == 0
    assert [d["mysql"]["thread_id"] for d in docs] == [12, 13, 14]
    assert [d["@timestamp"] for d in docs] == ["2015-01-01T12:00:00.000Z"] * 3
    assert docs[1]["message"] == "SELECT 2"


def test_audit_lines() -> None:
    ctx, messages = events("audit")
    parser = RdsMysqlParser(ctx)
    read = parser.parse(messages[0])
    assert read == {
        "@timestamp": "2022-02-18T06:12:13.006Z",
        "event": {"kind": "event", "category": ["database"], "type": ["access"], "action": "read"},
        "mysql": {"audit": {"operation": "READ", "query_id": 1013, "database": "mysql", "object": "plugin"},
                  "thread_id": 5},
        "user": {"name": "rdsadmin"},
        "source": {"domain": "localhost"},
        "host": {"name": "myaudb-instance-1"},
        "aws": {"rds": {"log_type": "audit",
                        "db_instance": {"identifier": "myaudb-instance-1", "db_cluster_identifier": "myaudb"}}},
        "cloud": {"provider": "aws", "service": {"name": "rds"}, "account": {"id": "123456789012"}},
    }
    query = parser.parse(messages[1])
    assert query is not None
    assert query["mysql"]["audit"]["object"] == (
        "SELECT count(*) from mysql.plugin WHERE name = 'AWSAuthenticationPlugin'"
    )
    assert query["mysql"]["audit"]["retcode"] == 0
    assert query["event"]["outcome"] == "success"
    no_db = parser.parse(messages[6])
    assert no_db is not None
    assert "database" not in no_db["mysql"]["audit"]
    write = parser.parse(messages[14])
    assert write is not None
    assert write["event"]["type"] == ["change"] and write["mysql"]["audit"]["object"] == "rds_heartbeat2"


def test_audit_mariadb_form_failed_login_and_drift() -> None:
    failed = parse("20170817 10:55:41,ip-172-31-1-1,bob,10.0.0.5,26,0,FAILED_CONNECT,,,1045")
    assert failed["@timestamp"] == "2017-08-17T10:55:41.000Z"
    assert failed["event"]["category"] == ["database", "authentication"]
    assert failed["event"]["outcome"] == "failure"
    assert failed["mysql"]["audit"] == {"operation": "FAILED_CONNECT", "query_id": 0, "retcode": 1045}
    assert failed["source"] == {"ip": "10.0.0.5"} and failed["user"] == {"name": "bob"}
    drift = parse("20170817 10:55:42,ip-172-31-1-1,bob,10.0.0.5,26,17,QUERY,shop,'select \\'a,b\\' from t',0,x1,x2")
    assert drift["mysql"]["audit"]["object"] == "select 'a,b' from t"
    assert drift["mysql"]["audit"]["retcode"] == 0
    assert drift["mysql"]["audit"]["extra_fields"] == ["x1", "x2"]


@pytest.mark.parametrize(
    ("record", "group", "reason"),
    [
        ("1645164733006686,host,user", "audit", "3 of the 10 columns"),
        ("1645164733006686,h,u,localhost,5,1013,QUERY,mysql,'never closed,0", "audit", "no closing quote"),
        ("1645164733006686,h,u,localhost,x,1013,QUERY,mysql,'q',0", "audit", "not an integer"),
        ("# User@Host: a[a] @ h []  Id: 1\n# Query_time: fast  Lock_time: 0.0\nSELECT 1;", "slowquery",
         "not a number"),
        ("# Some unrelated comment", "slowquery", "without an entry"),
        ("hello world", "general", "not a MySQL general log record"),
        ("2023-01-01T00:00:00.123456Z 0 [Note] error-shaped", "general", "not a MySQL general log record"),
        ("2023-01-01T00:00:00.123456Z\tnot-a-thread Query\tSELECT 1", "general", "expected '<thread> <Command>"),
    ],
)
def test_malformed_records_are_refused_with_a_reason(record: str, group: str, reason: str) -> None:
    parser = RdsMysqlParser(ParseContext(log_group=f"/aws/rds/instance/db1/{group}", log_stream="db1"))
    with pytest.raises(ParseError, match=reason):
        parser.parse(record)


def test_non_events() -> None:
    parser = RdsMysqlParser(ParseContext())
    for record in (
        "",
        "   ",
        "/rdsdbbin/mysql/bin/mysqld, Version: 8.0.28 (Source distribution). started with:",
        "Tcp port: 3306  Unix socket: /tmp/mysql.sock",
        "Time                 Id Command    Argument",
        "----------------------- END OF LOG ----------------------",
    ):
        assert parser.parse(record) is None, record


def test_postgresql_group_is_rerouted() -> None:
    parser = RdsMysqlParser(ParseContext(log_group="/aws/rds/instance/pg1/postgresql", log_stream="pg1"))
    with pytest.raises(Reroute) as info:
        parser.parse("2019-03-10 03:54:59 UTC:10.0.0.123(52834):postgres@tstdb:[20175]:ERROR:  x")
    assert info.value.log_type == "rds_postgresql"


def test_s3_file_form_gives_the_same_documents() -> None:
    """The same events written to a file one physical line per line: continuation folds them back; a
    `# Time:` line on its own is a non-event that dates the entry after it."""
    for env in envelopes():
        messages = [event["message"] for event in env["logEvents"]]
        cloudwatch = RdsMysqlParser(ParseContext(log_group=env["logGroup"], log_stream=env["logStream"]))
        expected = []
        for message in messages:
            doc = cloudwatch.parse(message)
            assert doc is not None
            del doc["aws"]
            expected.append(doc)
        docs, failures, skipped = stream_docs("\n".join(messages))
        assert failures == []
        assert docs == expected
        assert skipped == (len(messages) if env["logGroup"] == SLOW_GROUP else 0)


def test_continuation_pattern() -> None:
    pattern = RdsMysqlParser.continuation
    assert pattern is not None
    match = pattern.match
    for start in (
        "# Time: 2022-02-18T06:02:22.837877Z",
        "# User@Host: admin[admin] @  [54.171.161.51]  Id:   116",
        "2023-01-01T00:00:00.123456Z 0 [Note] x",
        "2022-02-18 06:12:07 0x2b76b6e68700InnoDB: x",
        "150101 12:00:00 [Note] x",
        "150101  9:00:00 InnoDB: x",
        "1645164733006686,myaudb-instance-1,rdsadmin,localhost,5,1013,READ,mysql,plugin,",
        "20170817 10:55:41,ip,u,h,1,2,CONNECT,,,0",
        "\t\t   13 Query\tSELECT 2",
        "----------------------- END OF LOG ----------------------",
    ):
        assert not match(start), start
    for cont in ("# Query_time: 2.0  Lock_time: 0.0", "SET timestamp=1645164142;", "SELECT 1;", "*** (1) TRANSACTION:",
                 " 0: len=4; bufptr=0x2b7556b7012b;", "", "  FROM t1"):
        assert match(cont), cont


def test_sniff() -> None:
    for _, messages in (events("slowquery"), events("error"), events("audit")):
        if messages[0].startswith("2022-02-18 06:12:07 0x"):
            assert RdsMysqlParser.sniff("\n".join(messages))
        else:
            assert RdsMysqlParser.sniff("\n".join(messages[:5]))
    assert RdsMysqlParser.sniff("2023-01-01T00:00:00.123456Z 0 [Note] [MY-010931] [Server] ready")
    assert RdsMysqlParser.sniff("2023-01-01T00:00:00.123456Z\t   12 Query\tSELECT 1")
    assert not RdsMysqlParser.sniff(read_text(CORPUS))  # the CloudWatch envelopes are another type's
    for other in (
        "rds_postgresql/opensearch-catalog_amazon_rds-raw.log",
        "lambda/awsdocs_nodejs-logging_function-output.log",
        "elb/elastic-integrations_test-alb.log",
        "vpcflow/elastic-integrations_test-extra-samples.log",
        "s3access/elastic-integrations_test-s3-server-access.log",
    ):
        assert not RdsMysqlParser.sniff("\n".join(read_lines(other))), other


def test_event_original_only_when_asked() -> None:
    _, messages = events("audit")
    assert "original" not in parse(messages[2])["event"]
    assert parse(messages[2], keep_original=True)["event"]["original"] == messages[2]


def test_naive_utc() -> None:
    assert naive_utc("2023-01-01 00:00:00.5") == "2023-01-01T00:00:00.500Z"
    assert naive_utc("990101 23:59:59") == "2099-01-01T23:59:59.000Z"  # YYMMDD: MySQL 5.x, read as 20YY
    assert naive_utc("2023-13-01 00:00:00") is None
    assert naive_utc("yesterday") is None
