"""Arrow schemas per log type, derived from the parsers' field declarations, and the dict -> Arrow conversion.

One source of truth: the same `fields` that give the index templates their mappings (`templates.COMMON_FIELDS`
plus the parser's own) give the Parquet columns their types, so a field is a `long` in OpenSearch and an
`int64` in Athena. ECS objects become nested structs (`source.ip` is `source` struct, `ip` child), `ip`,
`keyword` and `text` are strings, `date` is a UTC millisecond timestamp, `flattened` objects are JSON text
(Athena's `json_extract` reads them). Fields a parser emits but does not declare are not dropped: they go to
one `map<string,string>` column, `sluice_extra`, keyed by dotted name (values JSON-encoded unless strings), as
do values whose type does not fit their column (`misfits`, counted), so a document is never refused here.

Conversion is columnar: one pass over a batch of documents fills a Python list per leaf column, then each
column is built by one `pa.array` call (a per-value path only for a column where that call fails), and structs
are assembled from their children. No pyarrow call is made per row.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import orjson
import pyarrow as pa  # type: ignore[import-untyped]

from worker.parsers import FieldType, get_parser
from worker.parsers._fields import epoch_ms_to_iso, iso_to_utc_ms
from worker.sinks.templates import COMMON_FIELDS

ID_COLUMN = "sluice_id"
"""The document's `_id` in OpenSearch (origin hash + offset): joins the two engines and dedups across files."""
TIME_COLUMN = "timestamp"
"""The ECS `@timestamp`: Hive and Athena column names cannot start with `@`."""
EXTRA_COLUMN = "sluice_extra"
"""Undeclared fields and values that do not fit their column: dotted name -> value (JSON unless a string)."""

TIMESTAMP = pa.timestamp("ms", tz="UTC")
_PARSE_TIMESTAMP = pa.timestamp("us", tz="UTC")
"""Arrow's ISO 8601 cast takes up to 6 fraction digits only for a microsecond target; then cut to ms."""
EXTRA_TYPE = pa.map_(pa.string(), pa.string())

LIST_FIELDS: frozenset[str] = frozenset({
    "event.category",
    "event.type",
    "related.ip",
    "related.user",
    "related.hosts",
    "related.hash",
    "tags",
    "network.forwarded_ip",
    "aws.cloudfront.header_names",
    "aws.config.related_events",
    "aws.elb.action_executed",
    "aws.elb.alpn_client_preference_list",
    "aws.elb.target_port",
    "aws.elb.target_status_code",
    "aws.firewall.tcp_flags_array",
    "aws.vpcflow.tcp_flags_array",
    # lists of objects: list<struct<...>> columns
    "aws.cloudtrail.resources",
    "aws.config.relationships",
    "aws.waf.labels",
    "dns.answers",
})
"""Fields parsers emit as arrays (ECS arrays and a few AWS ones): `list<...>` columns. Field declarations do not
say it (OpenSearch maps a value and an array of values alike), so it is listed here; the corpus test
(tests/unit/test_arrow_schema.py) fails when a parser emits a list where this says scalar, or the reverse."""

_STRING_KINDS = frozenset({"keyword", "text", "ip"})
_INT_KINDS = frozenset({"long", "integer", "short", "byte"})
_FLOAT_KINDS = frozenset({"double", "float"})
_JSON_KINDS = frozenset({"flattened", "object"})


def declared_fields(log_type: str) -> dict[str, FieldType]:
    """Every dotted field with a column for `log_type` (geo points still as one `geo_point` field)."""
    return {**COMMON_FIELDS, **get_parser(log_type).fields}


def arrow_type(kind: FieldType) -> pa.DataType:
    """The Arrow type of one scalar leaf of a declared type."""
    if kind in _STRING_KINDS or kind in _JSON_KINDS:
        return pa.string()
    if kind in _INT_KINDS:
        return pa.int64()
    if kind in _FLOAT_KINDS:
        return pa.float64()
    if kind == "boolean":
        return pa.bool_()
    if kind == "date":
        return TIMESTAMP
    raise ValueError(f"no Arrow type for field type {kind!r}")


@dataclass(slots=True, eq=False)
class _Leaf:
    path: str
    name: str
    kind: FieldType
    is_list: bool
    type: pa.DataType


@dataclass(slots=True, eq=False)
class _Node:
    """An ECS object: a struct column, or a list of structs when the parser emits a list of objects."""

    path: str
    """Dotted path of this object (`source`), empty for the root."""
    name: str
    is_list: bool = False
    children: dict[str, _Leaf | _Node] = field(default_factory=dict)
    leaves: list[_Leaf] = field(default_factory=list)
    """For a list node (and the root): the leaves of one element, not under a nested list node."""
    lists: list[_Node] = field(default_factory=list)
    """For a list node (and the root): the list nodes of one element, not under a nested list node."""


def _tree(fields: dict[str, FieldType]) -> _Node:
    """Nested nodes for dotted names; a geo point is a struct of `lat` and `lon`, and a leaf declared where other
    fields nest under it (none today) gives way to the object, as in the index templates."""
    expanded: dict[str, FieldType] = {}
    for dotted, kind in fields.items():
        if kind == "geo_point":
            expanded[f"{dotted}.lat"] = "double"
            expanded[f"{dotted}.lon"] = "double"
        else:
            expanded[dotted] = kind
    root = _Node("", "")
    for dotted in sorted(expanded):
        parts = dotted.split(".")
        node = root
        for i, part in enumerate(parts[:-1]):
            child = node.children.get(part)
            if not isinstance(child, _Node):
                path = ".".join(parts[: i + 1])
                child = node.children[part] = _Node(path, part, is_list=path in LIST_FIELDS)
            node = child
        leaf = parts[-1]
        if isinstance(node.children.get(leaf), _Node):
            continue
        kind = expanded[dotted]
        name = TIME_COLUMN if dotted == "@timestamp" else leaf
        scalar = arrow_type(kind)
        is_list = dotted in LIST_FIELDS
        node.children[leaf] = _Leaf(dotted, name, kind, is_list, pa.list_(scalar) if is_list else scalar)
    _collect(root, root)
    return root


def _collect(node: _Node, owner: _Node) -> None:
    """File every leaf and list node under `owner` (the root or a list node), whose element they belong to."""
    for child in node.children.values():
        if isinstance(child, _Leaf):
            owner.leaves.append(child)
        elif child.is_list:
            owner.lists.append(child)
            _collect(child, child)
        else:
            _collect(child, owner)


def _struct_type(node: _Node) -> pa.DataType:
    return pa.struct([_field(c) for _, c in sorted(node.children.items())])


def _field(child: _Leaf | _Node) -> pa.Field:
    if isinstance(child, _Leaf):
        return pa.field(child.name, child.type)
    struct = _struct_type(child)
    return pa.field(child.name, pa.list_(struct) if child.is_list else struct)


def _top_level(root: _Node) -> list[_Leaf | _Node]:
    """Root children in column order: `timestamp` first, then ECS objects and fields by name."""
    children = [c for _, c in sorted(root.children.items())]
    return sorted(children, key=lambda c: (not (isinstance(c, _Leaf) and c.path == "@timestamp"), c.name))


@cache
def schema_for(log_type: str) -> pa.Schema:
    """The Arrow (and Parquet) schema of one log type's files: `sluice_id`, `timestamp`, the ECS objects as
    structs, then `sluice_extra`. Partition columns (log type, account, region, hour) are in the path only."""
    root = _tree(declared_fields(log_type))
    fields = [pa.field(ID_COLUMN, pa.string(), nullable=False)]
    fields += [_field(c) for c in _top_level(root)]
    fields.append(pa.field(EXTRA_COLUMN, EXTRA_TYPE))
    return pa.schema(fields, metadata={"sluice.log_type": log_type})


class _Misfit(Exception):
    """A value that cannot be stored in its column's type."""


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value, default=str).decode()
    except TypeError:  # what orjson refuses (an integer over 64 bits): the stdlib writes it
        return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))


def _extra_value(value: Any) -> str:
    return value if type(value) is str else _json(value)


def _to_str(value: Any) -> str:
    """What OpenSearch would index for a keyword: numbers and booleans as text; objects are not strings."""
    if type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    raise _Misfit


def _to_int(value: Any) -> int:
    if type(value) is int:
        if -(1 << 63) <= value < 1 << 63:
            return value
        raise _Misfit
    if type(value) is float and value.is_integer():
        return _to_int(int(value))
    if type(value) is str:
        try:
            return _to_int(int(value.strip()))
        except ValueError:
            raise _Misfit from None
    raise _Misfit


def _to_float(value: Any) -> float:
    if type(value) in (int, float):
        return float(value)
    if type(value) is str:
        try:
            return float(value)
        except ValueError:
            raise _Misfit from None
    raise _Misfit


def _to_bool(value: Any) -> bool:
    if type(value) is bool:
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    raise _Misfit


def _to_date_text(value: Any) -> str:
    """A date as the `...T..:..:..sssZ` text Arrow's cast reads: ISO 8601 in any offset, or epoch milliseconds
    (OpenSearch's default date formats)."""
    try:
        if type(value) is str:
            return iso_to_utc_ms(value)
        if type(value) in (int, float):
            return epoch_ms_to_iso(int(value))
    except ValueError:
        raise _Misfit from None
    raise _Misfit


def _to_json(value: Any) -> str:
    return value if type(value) is str else _json(value)


_COERCE = {
    **{k: _to_str for k in _STRING_KINDS},
    **{k: _to_int for k in _INT_KINDS},
    **{k: _to_float for k in _FLOAT_KINDS},
    **{k: _to_json for k in _JSON_KINDS},
    "boolean": _to_bool,
    "date": _to_date_text,
}

_ARROW_ERRORS = (pa.ArrowException, TypeError, ValueError, OverflowError)


def _plan(node: _Node, n: int, store: dict[str, list[Any]]) -> dict[str, Any]:
    """Where each key of an object of `node` goes for `n` rows: a leaf's (or list node's) value list, also filed
    in `store` by path, or (the plan of a struct, its dotted prefix). The per-row walk then costs one dict lookup
    and one type test per value."""
    plan: dict[str, Any] = {}
    for key, child in node.children.items():
        if isinstance(child, _Leaf) or child.is_list:
            plan[key] = store[child.path] = [None] * n
        else:
            plan[key] = (_plan(child, n, store), child.path + ".")
    return plan


def _walk(plan: dict[str, Any], prefix: str, obj: dict[str, Any], i: int, extra: dict[str, str] | None,
          misfits: list[int]) -> dict[str, str] | None:
    """Put one (sub-)object's values in row `i` of their columns; what has none goes to `extra` (returned).
    The hottest loop of the sink: a subscript in a `try` (free in 3.11 unless it raises) and exact type tests."""
    for key, value in obj.items():
        try:
            target = plan[key]
        except KeyError:
            if value is not None:
                if extra is None:
                    extra = {}
                extra[prefix + key] = _extra_value(value)
            continue
        if type(target) is list:
            target[i] = value
        elif type(value) is dict:
            extra = _walk(target[0], target[1], value, i, extra, misfits)
        elif value is not None:  # a scalar or a list where an object is declared
            misfits[0] += 1
            if extra is None:
                extra = {}
            extra[prefix + key] = _extra_value(value)
    return extra


def _put_extra(extras: list[dict[str, str] | None], row: int, key: str, value: Any) -> None:
    extra = extras[row]
    if extra is None:
        extra = extras[row] = {}
    extra[key] = _extra_value(value)


class Converter:
    """Documents of one log type -> Arrow record batches of `schema_for(log_type)`; one per log type per sink."""

    def __init__(self, log_type: str) -> None:
        self.log_type = log_type
        self.schema = schema_for(log_type)
        self._root = _tree(declared_fields(log_type))
        self._top = _top_level(self._root)
        self._misfits = [0]

    @property
    def misfits(self) -> int:
        """Values moved to `sluice_extra` because their type did not fit their column (a parser bug or a field
        whose declaration is wrong): counted so a test or a metric can see them."""
        return self._misfits[0]

    def rows(self) -> Rows:
        """An empty row buffer of this log type."""
        return Rows(self)

    def convert(self, bodies: list[dict[str, Any]], ids: list[str]) -> pa.RecordBatch:
        """One record batch with a row per document, in order."""
        rows = Rows(self, len(bodies))
        for body, doc_id in zip(bodies, ids, strict=True):
            rows.add(body, doc_id)
        return rows.take()

    def batch(self, ids: list[str], extras: list[dict[str, str] | None], store: dict[str, list[Any]]) -> pa.RecordBatch:
        """A record batch from column value lists filled by `_walk` (all of the same length as `ids`)."""
        columns = self._columns(self._root, extras, store)
        arrays: list[pa.Array] = [pa.array(ids, pa.string())]
        arrays += [self._assemble(c, columns) for c in self._top]
        arrays.append(pa.array(extras, EXTRA_TYPE))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _columns(self, owner: _Node, extras: list[dict[str, str] | None],
                 store: dict[str, list[Any]]) -> dict[str, pa.Array]:
        """The arrays of the leaves and list nodes of `owner`'s element, by path."""
        columns: dict[str, pa.Array] = {}
        for leaf in owner.leaves:
            columns[leaf.path] = self._column(leaf, store[leaf.path], extras)
        for node in owner.lists:
            columns[node.path] = self._objects(node, store[node.path], extras)
        return columns

    def _objects(self, node: _Node, values: list[Any], extras: list[dict[str, str] | None]) -> pa.Array:
        """A list-of-structs column: every row's elements walked as rows of their own, then offsets. An element
        with anything that has no column (or does not fit it) is also kept whole in the row's extras, under
        `<path>.<index>`."""
        offsets = [0]
        nulls: list[bool] = []
        elements: list[dict[str, Any]] = []
        places: list[tuple[int, int]] = []
        for row, value in enumerate(values):
            if value is None:
                offsets.append(offsets[-1])
                nulls.append(True)
                continue
            for k, element in enumerate(value if type(value) is list else [value]):
                if type(element) is dict:
                    elements.append(element)
                    places.append((row, k))
                elif element is not None:
                    self._misfits[0] += 1
                    _put_extra(extras, row, f"{node.path}.{k}", element)
            offsets.append(len(elements))
            nulls.append(False)
        inner: list[dict[str, str] | None] = [None] * len(elements)
        store: dict[str, list[Any]] = {}
        plan = _plan(node, len(elements), store)
        for j, element in enumerate(elements):
            inner[j] = _walk(plan, "", element, j, None, self._misfits)
        columns = self._columns(node, inner, store)
        for j, extra in enumerate(inner):
            if extra:
                row, k = places[j]
                _put_extra(extras, row, f"{node.path}.{k}", elements[j])
        kids = [c for _, c in sorted(node.children.items())]
        struct = pa.StructArray.from_arrays([self._assemble(c, columns) for c in kids],
                                            fields=[_field(c) for c in kids])
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), struct, type=pa.list_(_struct_type(node)),
                                        mask=pa.array(nulls, pa.bool_()))

    def _column(self, leaf: _Leaf, values: list[Any], extras: list[dict[str, str] | None]) -> pa.Array:
        if values.count(None) == len(values):  # most declared fields are absent from most documents
            return pa.nulls(len(values), leaf.type)
        if leaf.kind in _JSON_KINDS:
            values = [v if v is None or type(v) is str else _json(v) for v in values]
        if leaf.is_list:
            # A string where a list is expected would become a list of its characters: wrap it first.
            values = [v if v is None or type(v) is list else [v] for v in values]
        if leaf.kind == "date":
            return self._dates(leaf, values, extras)
        try:
            return pa.array(values, leaf.type)
        except _ARROW_ERRORS:
            return pa.array(self._coerced(leaf, values, extras), leaf.type)

    def _coerced(self, leaf: _Leaf, values: list[Any], extras: list[dict[str, str] | None]) -> list[Any]:
        """The per-value path: each value converted as OpenSearch would, or moved to the row's extras."""
        coerce = _COERCE[leaf.kind]
        out: list[Any] = [None] * len(values)
        for i, value in enumerate(values):
            if value is None:
                continue
            try:
                out[i] = [coerce(v) for v in value if v is not None] if leaf.is_list else coerce(value)
            except _Misfit:
                self._misfits[0] += 1
                _put_extra(extras, i, leaf.path, value)
        return out

    def _dates(self, leaf: _Leaf, values: list[Any], extras: list[dict[str, str] | None]) -> pa.Array:
        text = pa.list_(pa.string()) if leaf.is_list else pa.string()
        target = pa.list_(_PARSE_TIMESTAMP) if leaf.is_list else _PARSE_TIMESTAMP
        try:
            parsed = pa.array(values, text).cast(target)
        except _ARROW_ERRORS:
            texts = self._coerced(leaf, values, extras)
            try:
                parsed = pa.array(texts, text).cast(target)
            except _ARROW_ERRORS:  # a normalised date Arrow still refuses (a year out of its range): one by one
                parsed = pa.array(self._one_by_one(leaf, texts, extras), target)
        return parsed.cast(leaf.type, safe=False)

    def _one_by_one(self, leaf: _Leaf, texts: list[Any], extras: list[dict[str, str] | None]) -> list[Any]:
        text = pa.list_(pa.string()) if leaf.is_list else pa.string()
        target = pa.list_(_PARSE_TIMESTAMP) if leaf.is_list else _PARSE_TIMESTAMP
        out: list[Any] = []
        for i, value in enumerate(texts):
            try:
                out.append(None if value is None else pa.scalar(value, text).cast(target).as_py())
            except _ARROW_ERRORS:
                out.append(None)
                self._misfits[0] += 1
                _put_extra(extras, i, leaf.path, value)
        return out

    def _assemble(self, child: _Leaf | _Node, columns: dict[str, pa.Array]) -> pa.Array:
        if isinstance(child, _Leaf) or child.is_list:
            return columns[child.path]
        kids = [c for _, c in sorted(child.children.items())]
        return pa.StructArray.from_arrays([self._assemble(c, columns) for c in kids],
                                          fields=[_field(c) for c in kids])


class Rows:
    """Documents taken apart into per-column value lists as they arrive, so each dict is read once while it is
    fresh and can be freed at once; `take` builds the record batch. The lists grow by doubling (a unit of ten
    documents does not pay for thousands of empty slots per column)."""

    __slots__ = ("_capacity", "_converter", "_plan", "_store", "extras", "ids")

    FIRST_CAPACITY = 64

    def __init__(self, converter: Converter, capacity: int = FIRST_CAPACITY) -> None:
        self._converter = converter
        self._capacity = max(1, capacity)
        self._store: dict[str, list[Any]] = {}
        self._plan = _plan(converter._root, self._capacity, self._store)
        self.ids: list[str] = []
        self.extras: list[dict[str, str] | None] = []

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, body: dict[str, Any], doc_id: str) -> None:
        i = len(self.ids)
        if i == self._capacity:
            more = [None] * self._capacity
            for values in self._store.values():
                values.extend(more)
            self._capacity *= 2
        self.extras.append(_walk(self._plan, "", body, i, None, self._converter._misfits))
        self.ids.append(doc_id)

    def take(self) -> pa.RecordBatch:
        """The rows added so far as one record batch; the buffer is empty afterwards."""
        n = len(self.ids)
        for values in self._store.values():
            del values[n:]
        batch = self._converter.batch(self.ids, self.extras, self._store)
        self._capacity = self.FIRST_CAPACITY
        self._store = {}
        self._plan = _plan(self._converter._root, self._capacity, self._store)
        self.ids, self.extras = [], []
        return batch
