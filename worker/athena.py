"""`sluice athena-ddl`: one `CREATE EXTERNAL TABLE` per log type over the Parquet sink's dataset.

The column list is rendered from the same Arrow schema the sink writes (`arrow_schema.schema_for`), so the table
and the files cannot disagree. Partitions are found by partition projection, not by `MSCK REPAIR` or a crawler:
`event_hour` is a date projection (`yyyyMMddHH`, hourly), `account_id` and `region` are `enum` when the accounts
or regions are given and `injected` otherwise (queries must then name them in `WHERE`). `log_type` is not a
column: each table's location is its log type's directory.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence

import pyarrow as pa  # type: ignore[import-untyped]

from worker.config import Config
from worker.parsers import log_types
from worker.sinks.arrow_schema import schema_for
from worker.sinks.parquet import UNKNOWN, normal_prefix

PARTITION_COLUMNS = ("account_id", "region", "event_hour")
HOUR_FORMAT = "yyyyMMddHH"
DEFAULT_START_HOUR = "2020010100"


def quote(name: str) -> str:
    """A Hive identifier in backticks (column names such as `timestamp`, `end` or `type` are reserved words)."""
    return "`" + name.replace("`", "``") + "`"


def hive_type(t: pa.DataType) -> str:
    """The Hive / Athena DDL type of an Arrow type the sink writes."""
    if pa.types.is_string(t):
        return "string"
    if pa.types.is_int64(t):
        return "bigint"
    if pa.types.is_float64(t):
        return "double"
    if pa.types.is_boolean(t):
        return "boolean"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_map(t):
        return f"map<{hive_type(t.key_type)},{hive_type(t.item_type)}>"
    if pa.types.is_list(t):
        return f"array<{hive_type(t.value_type)}>"
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{quote(t.field(i).name)}:{hive_type(t.field(i).type)}"
                                    for i in range(t.num_fields)) + ">"
    raise ValueError(f"no Hive type for Arrow type {t}")


def table_name(log_type: str, prefix: str = "sluice_") -> str:
    return f"{prefix}{log_type}"


def _projection(column: str, values: Sequence[str] | None) -> list[tuple[str, str]]:
    if not values:
        return [(f"projection.{column}.type", "injected")]
    enum = list(dict.fromkeys([*values, UNKNOWN]))
    return [(f"projection.{column}.type", "enum"), (f"projection.{column}.values", ",".join(enum))]


def create_table(log_type: str, location: str, *, database: str | None = None, table_prefix: str = "sluice_",
                 accounts: Sequence[str] | None = None, regions: Sequence[str] | None = None,
                 start_hour: str = DEFAULT_START_HOUR, compression: str = "zstd") -> str:
    """The statement for one log type; `location` is the dataset root (`s3://bucket/prefix/`)."""
    root = location if location.endswith("/") else location + "/"
    table_root = f"{root}log_type={log_type}/"
    name = quote(table_name(log_type, table_prefix))
    if database:
        name = f"{quote(database)}.{name}"
    schema = schema_for(log_type)
    columns = ",\n".join(f"  {quote(f.name)} {hive_type(f.type)}" for f in schema)
    partitions = ", ".join(f"{quote(c)} string" for c in PARTITION_COLUMNS)
    template = table_root + "/".join(f"{c}=${{{c}}}" for c in PARTITION_COLUMNS) + "/"
    props: list[tuple[str, str]] = [
        ("projection.enabled", "true"),
        *_projection("account_id", accounts),
        *_projection("region", regions),
        ("projection.event_hour.type", "date"),
        ("projection.event_hour.format", HOUR_FORMAT),
        ("projection.event_hour.range", f"{start_hour},NOW"),
        ("projection.event_hour.interval", "1"),
        ("projection.event_hour.interval.unit", "HOURS"),
        ("storage.location.template", template),
        ("parquet.compression", compression.upper()),
        ("classification", "parquet"),
    ]
    tblprops = ",\n".join(f"  '{k}'='{v}'" for k, v in props)
    return (f"CREATE EXTERNAL TABLE IF NOT EXISTS {name} (\n{columns}\n)\n"
            f"PARTITIONED BY ({partitions})\n"
            f"STORED AS PARQUET\n"
            f"LOCATION '{table_root}'\n"
            f"TBLPROPERTIES (\n{tblprops}\n)")


def dataset_location(cfg: Config) -> str:
    """`s3://<parquet.bucket>/<parquet.prefix>`, the root the sink writes under."""
    if not cfg.parquet.bucket:
        raise ValueError("parquet.bucket is not set: give --location s3://bucket/prefix/")
    return f"s3://{cfg.parquet.bucket}/{normal_prefix(cfg.parquet.prefix)}"


def statements(location: str, types: Iterable[str] | None = None, **options: object) -> list[str]:
    """One statement per log type (all of them by default), in name order."""
    return [create_table(lt, location, **options) for lt in sorted(types or log_types())]  # type: ignore[arg-type]


def _csv(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


def run_athena_ddl(cfg: Config | None, args: argparse.Namespace) -> int:
    """The command: statements on stdout, separated by `;` and a blank line."""
    location = args.location or (dataset_location(cfg) if cfg is not None else None)
    if not location:
        print("athena-ddl: give --config (with a parquet section) or --location", file=sys.stderr)
        return 2
    unknown = sorted(set(args.log_type or ()) - set(log_types()))
    if unknown:
        print(f"athena-ddl: unknown log type(s) {', '.join(unknown)}; known: {', '.join(log_types())}",
              file=sys.stderr)
        return 2
    compression = cfg.parquet.compression if cfg is not None else "zstd"
    out = statements(location, args.log_type or None, database=args.database, table_prefix=args.table_prefix,
                     accounts=_csv(args.accounts), regions=_csv(args.regions), start_hour=args.start_hour,
                     compression=compression)
    print(";\n\n".join(out) + ";")
    return 0
