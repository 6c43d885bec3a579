"""Arrow schemas per log type and the dict -> Arrow conversion, proved on every document the corpus yields.

The round trip is checked against an oracle written here, independently of the converter: every declared value
must come back from its column (dates at millisecond precision, keyword numbers as text, `flattened` objects as
JSON), every other value from `sluice_extra`, and nothing may be a misfit (a value whose type does not fit its
column): a misfit means a parser emits something its field declaration (or `LIST_FIELDS`) does not say.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pytest

from tests.corpus import account, raw_inputs
from worker.parsers import ParseContext, get_parser, log_types
from worker.parsers._fields import epoch_ms_to_iso, iso_to_utc_ms
from worker.parsers.stream import StreamParser
from worker.samples import alb_lines, cloudtrail_records, vpc_flow_lines
from worker.sinks.arrow_schema import (
    EXTRA_COLUMN,
    ID_COLUMN,
    LIST_FIELDS,
    TIME_COLUMN,
    TIMESTAMP,
    Converter,
    declared_fields,
    schema_for,
)

_STRINGS = {"keyword", "text", "ip"}
_JSON = {"flattened", "object"}


def _leaves(log_type: str) -> dict[str, str]:
    """Declared dotted leaves (geo points as lat / lon) -> type, as the oracle sees them."""
    out: dict[str, str] = {}
    for path, kind in declared_fields(log_type).items():
        if kind == "geo_point":
            out[f"{path}.lat"] = out[f"{path}.lon"] = "double"
        else:
            out[path] = kind
    return {p: k for p, k in out.items() if not any(o.startswith(p + ".") for o in out)}


def _norm(value: Any, kind: str) -> Any:
    if kind == "date":
        return iso_to_utc_ms(value) if isinstance(value, str) else epoch_ms_to_iso(int(value))
    if kind in _JSON:
        return value if isinstance(value, str) else orjson.dumps(value).decode()
    if kind in _STRINGS and not isinstance(value, str):
        return ("true" if value else "false") if isinstance(value, bool) else str(value)
    if kind in ("double", "float"):
        return float(value)
    return value


def expected(doc: dict[str, Any], log_type: str) -> tuple[dict[str, Any], dict[str, str]]:
    """(declared dotted path -> value, extras) a document must come back as."""
    leaves = _leaves(log_type)
    nodes = {p.rsplit(".", i)[0] for p in leaves for i in range(1, p.count(".") + 1)}
    declared: dict[str, Any] = {}
    extras: dict[str, str] = {}

    def walk(obj: dict[str, Any], prefix: str, into: dict[str, Any]) -> None:
        for key, value in obj.items():
            if value is None:
                continue
            path = prefix + key
            if path in leaves:
                kind = leaves[path]
                if path in LIST_FIELDS:
                    items = value if isinstance(value, list) else [value]
                    into[path] = [_norm(v, kind) for v in items if v is not None]
                else:
                    into[path] = _norm(value, kind)
            elif path in LIST_FIELDS and path in nodes:
                elements = []
                for element in value if isinstance(value, list) else [value]:
                    flat: dict[str, Any] = {}
                    walk(element, path + ".", flat)
                    elements.append(flat)
                into[path] = elements
            elif path in nodes and isinstance(value, dict):
                walk(value, path + ".", into)
            else:
                extras[path] = value if isinstance(value, str) else orjson.dumps(value).decode()

    walk(doc, "", declared)
    return declared, extras


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def actual(row: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A row read back from Arrow, as (declared dotted path -> value, extras)."""
    declared: dict[str, Any] = {}

    def walk(obj: dict[str, Any], prefix: str, into: dict[str, Any]) -> None:
        for key, value in obj.items():
            if value is None:
                continue
            path = prefix + key
            if isinstance(value, dict):
                walk(value, path + ".", into)
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                elements = []
                for element in value:
                    flat: dict[str, Any] = {}
                    walk(element, path + ".", flat)
                    elements.append(flat)
                into[path] = elements
            elif isinstance(value, datetime):
                into[path] = _iso(value)
            else:
                into[path] = value

    body = {("@timestamp" if k == TIME_COLUMN else k): v for k, v in row.items()
            if k not in (ID_COLUMN, EXTRA_COLUMN)}
    walk(body, "", declared)
    return declared, dict(row[EXTRA_COLUMN] or [])


def _corpus_documents() -> dict[str, list[dict[str, Any]]]:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for relative in raw_inputs():
        for _, _, log_type, body in account(relative).get("docs", []):
            by_type.setdefault(log_type, []).append(body)
    for log_type in log_types():  # the example record of every parser (the only one for some types)
        cls = get_parser(log_type)
        if not cls.example:
            continue
        stream = StreamParser(log_type, ParseContext(account_id="123456789012", region="us-east-1"))
        record: Any = cls.example if stream.framing == "lines" else orjson.loads(cls.example)
        docs, _, _ = stream.process([(0, record)])
        more, _, _ = stream.finish()
        for _, _, lt, body in docs + more:
            by_type.setdefault(lt, []).append(body)
    samples: dict[str, list[Any]] = {"vpc_flow": list(vpc_flow_lines(200)), "alb": list(alb_lines(200)),
                                     "cloudtrail": cloudtrail_records(200)}
    for log_type, records in samples.items():
        stream = StreamParser(log_type, ParseContext(account_id="123456789012", region="us-east-1"))
        docs, _, _ = stream.process(list(enumerate(records)))
        by_type[log_type] += [body for _, _, _, body in docs]
    return by_type


@pytest.fixture(scope="module")
def corpus_documents() -> dict[str, list[dict[str, Any]]]:
    return _corpus_documents()


@pytest.mark.parametrize("log_type", log_types())
def test_every_log_type_has_a_schema(log_type: str) -> None:
    schema = schema_for(log_type)
    assert schema.names[:2] == [ID_COLUMN, TIME_COLUMN] and schema.names[-1] == EXTRA_COLUMN
    assert schema.field(TIME_COLUMN).type == TIMESTAMP
    assert schema.field(EXTRA_COLUMN).type == pa.map_(pa.string(), pa.string())
    assert len(set(schema.names)) == len(schema.names)
    # Every declared field is a column of the right type, at its nested place.
    for path, kind in declared_fields(log_type).items():
        parts = ["timestamp"] if path == "@timestamp" else path.split(".")
        t = schema.field(parts[0]).type
        for part in parts[1:]:
            if pa.types.is_list(t):
                t = t.value_type
            t = t.field(part).type
        want = {"keyword": pa.string(), "text": pa.string(), "ip": pa.string(), "long": pa.int64(),
                "integer": pa.int64(), "short": pa.int64(), "byte": pa.int64(), "double": pa.float64(),
                "float": pa.float64(), "boolean": pa.bool_(), "date": TIMESTAMP, "flattened": pa.string(),
                "object": pa.string(),
                "geo_point": pa.struct([("lat", pa.float64()), ("lon", pa.float64())])}[kind]
        assert t == (pa.list_(want) if path in LIST_FIELDS else want), path


def test_schema_follows_the_template_types() -> None:
    vpc = schema_for("vpc_flow")
    source = vpc.field("source").type
    assert source.field("ip").type == pa.string() and source.field("port").type == pa.int64()
    assert vpc.field("related").type.field("ip").type == pa.list_(pa.string())
    assert vpc.field("event").type.field("category").type == pa.list_(pa.string())
    dns = schema_for("route53_resolver").field("dns").type.field("answers").type
    assert pa.types.is_list(dns) and pa.types.is_struct(dns.value_type)
    assert schema_for("cloudtrail").field("aws").type.field("cloudtrail").type.field("request_parameters").type \
        == pa.string()  # flattened: JSON text


def test_every_corpus_value_fits_its_column(corpus_documents: dict[str, list[dict[str, Any]]]) -> None:
    assert set(corpus_documents) >= {"alb", "cloudtrail", "vpc_flow", "waf", "route53_resolver", "aws_config"}
    total = 0
    for log_type, docs in sorted(corpus_documents.items()):
        converter = Converter(log_type)
        ids = [f"id-{i}" for i in range(len(docs))]
        batch = converter.convert(docs, ids)
        assert converter.misfits == 0, log_type
        assert batch.schema == schema_for(log_type)
        table = pa.Table.from_batches([batch])
        assert table.column(ID_COLUMN).to_pylist() == ids
        for doc, row in zip(docs, table.to_pylist(), strict=True):
            want = expected(doc, log_type)
            got = actual(row)
            assert got[0] == want[0], (log_type, doc)
            assert got[1] == want[1], (log_type, doc)
        total += len(docs)
    assert total > 1000


def test_values_that_do_not_fit_go_to_the_extras() -> None:
    converter = Converter("vpc_flow")
    docs: list[dict[str, Any]] = [
        {"@timestamp": "2026-11-22T10:00:00+02:00", "source": {"port": "443", "bytes": "many", "ip": 10},
         "destination": "not an object", "event": {"category": "network"}, "custom": {"deep": [1, 2]}},
        {"@timestamp": 1795392000123, "network": {"bytes": 2.0}, "related": {"ip": ["10.0.0.1", None]}},
        {"@timestamp": "yesterday", "source": {"port": 1 << 70}},
    ]
    rows = pa.Table.from_batches([converter.convert(docs, ["a", "b", "c"])]).to_pylist()
    first, second, third = rows
    assert _iso(first[TIME_COLUMN]) == "2026-11-22T08:00:00.000Z"
    assert first["source"]["port"] == 443 and first["source"]["ip"] == "10"  # as OpenSearch would coerce them
    assert first["event"]["category"] == ["network"]
    assert dict(first[EXTRA_COLUMN]) == {"source.bytes": "many", "destination": "not an object",
                                         "custom": '{"deep":[1,2]}'}
    assert _iso(second[TIME_COLUMN]) == "2026-11-23T00:00:00.123Z"
    assert second["network"]["bytes"] == 2 and second["related"]["ip"] == ["10.0.0.1", None]
    assert third[TIME_COLUMN] is None and dict(third[EXTRA_COLUMN]) == {"@timestamp": "yesterday",
                                                                        "source.port": str(1 << 70)}
    assert converter.misfits == 4


def test_rows_buffer_grows_and_resets() -> None:
    converter = Converter("alb")
    rows = converter.rows()
    docs = [{"@timestamp": "2026-11-22T00:00:00.000Z", "source": {"ip": f"10.0.0.{i % 250}", "port": i}}
            for i in range(1000)]
    for i, doc in enumerate(docs):
        rows.add(doc, str(i))
    batch = rows.take()
    assert len(rows) == 0 and batch.num_rows == 1000
    assert batch.column("source").field("port").to_pylist() == list(range(1000))
    rows.add(docs[0], "x")
    assert rows.take().num_rows == 1
