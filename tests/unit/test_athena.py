"""`sluice athena-ddl`: the statements parse (sqlglot's Hive and Athena dialects) and their columns are exactly the
Arrow schema the sink writes, read back from the parsed statement (not from our own renderer)."""

from __future__ import annotations

import pyarrow as pa
import pytest
import sqlglot
from sqlglot import exp

from worker.__main__ import main
from worker.athena import PARTITION_COLUMNS, create_table
from worker.parsers import log_types
from worker.sinks.arrow_schema import TIMESTAMP, schema_for

_SCALARS = {
    exp.DataType.Type.TEXT: pa.string(),
    exp.DataType.Type.VARCHAR: pa.string(),
    exp.DataType.Type.BIGINT: pa.int64(),
    exp.DataType.Type.DOUBLE: pa.float64(),
    exp.DataType.Type.BOOLEAN: pa.bool_(),
    exp.DataType.Type.TIMESTAMP: TIMESTAMP,
}


def arrow_of(dt: exp.DataType) -> pa.DataType:
    """The Arrow type a parsed DDL type stands for (as the sink writes it)."""
    kind = dt.this
    if kind in _SCALARS:
        return _SCALARS[kind]
    if kind == exp.DataType.Type.ARRAY:
        return pa.list_(arrow_of(dt.expressions[0]))
    if kind == exp.DataType.Type.MAP:
        return pa.map_(arrow_of(dt.expressions[0]), arrow_of(dt.expressions[1]))
    if kind == exp.DataType.Type.STRUCT:
        return pa.struct([(c.this.name, arrow_of(c.args["kind"])) for c in dt.expressions])
    raise AssertionError(f"unexpected type {dt.sql()}")


def _parsed(ddl: str, dialect: str) -> tuple[list[tuple[str, pa.DataType]], list[str], dict[str, str], str]:
    tree = sqlglot.parse_one(ddl, read=dialect)
    assert isinstance(tree, exp.Create) and tree.kind == "TABLE"
    schema = tree.this
    assert isinstance(schema, exp.Schema)
    columns = [(c.this.name, arrow_of(c.args["kind"])) for c in schema.expressions]
    props = tree.args["properties"].expressions
    partitions = next(p for p in props if isinstance(p, exp.PartitionedByProperty))
    partition_names = [c.this.name for c in partitions.this.expressions]
    table_props = {p.name: p.text("value") for p in props if isinstance(p, exp.Property) and type(p) is exp.Property}
    location = next(p for p in props if isinstance(p, exp.LocationProperty)).this.name
    return columns, partition_names, table_props, location


@pytest.mark.parametrize("dialect", ["hive", "athena"])
@pytest.mark.parametrize("log_type", log_types())
def test_ddl_parses_and_matches_the_written_schema(log_type: str, dialect: str) -> None:
    ddl = create_table(log_type, "s3://lake/parquet/", database="logs", accounts=["123456789012"])
    columns, partitions, props, location = _parsed(ddl, dialect)
    schema = schema_for(log_type)
    assert [name for name, _ in columns] == schema.names
    for (name, parsed), fld in zip(columns, schema, strict=True):
        assert parsed.equals(fld.type), name
    assert partitions == list(PARTITION_COLUMNS)
    assert location == f"s3://lake/parquet/log_type={log_type}/"
    assert props["projection.enabled"] == "true"
    assert props["projection.event_hour.type"] == "date"
    assert props["projection.event_hour.format"] == "yyyyMMddHH"
    assert props["projection.account_id.values"] == "123456789012,unknown"
    assert props["projection.region.type"] == "injected"
    assert props["storage.location.template"] == (
        f"s3://lake/parquet/log_type={log_type}/account_id=${{account_id}}/region=${{region}}/"
        "event_hour=${event_hour}/")


def test_a_query_over_the_table_parses_in_trino() -> None:
    sql = ('SELECT "timestamp", source.ip, related.ip[1], sluice_extra[\'aws.vpcflow.tgw_id\'] FROM '
           "logs.sluice_vpc_flow WHERE account_id = '123456789012' AND region = 'us-east-1' "
           "AND event_hour BETWEEN '2026112200' AND '2026112223' AND contains(event.category, 'network')")
    assert sqlglot.parse_one(sql, read="trino").find(exp.Where) is not None


def test_the_command_prints_one_statement_per_log_type(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["athena-ddl", "--location", "s3://lake/p", "--regions", "us-east-1,eu-west-1"]) == 0
    out = capsys.readouterr().out
    statements = [s for s in out.split(";\n") if s.strip()]
    assert len(statements) == len(log_types())
    for statement in statements:
        sqlglot.parse_one(statement.rstrip(";"), read="hive")
    assert "'projection.region.values'='us-east-1,eu-west-1,unknown'" in out
    assert main(["athena-ddl", "--location", "s3://lake/p", "--log-type", "nope"]) == 2
