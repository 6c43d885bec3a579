"""What every log-type parser is: a pure, per-stream object turning one framed record into one ECS document.

Parsers never touch the network or the sink: they get text (or an already-decoded JSON record) and return a
nested dict with ECS field names, or None for records that are not events (a header line, a digest file).
They are instantiated once per input stream (one S3 object, one Kinesis record batch) because some formats
carry state inside the stream: a VPC flow log's header line declares the columns of the lines after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from worker.model import Serialized

Framing = Literal["lines", "json_records"]
"""`lines`: one record per text line. `json_records`: JSON records, either `{"Records": [...]}` documents or
one JSON object per line (CloudTrail, Config)."""

FieldType = Literal[
    "keyword", "text", "ip", "long", "integer", "short", "byte", "double", "float",
    "boolean", "date", "object", "flattened", "geo_point",
]


class ParseError(ValueError):
    """A record that cannot become a document. The message is the reason stored with the dead letter."""


class Reroute(Exception):
    """Raised by `parse` when a record plainly belongs to a sibling log type.

    AWS mixes formats behind one naming scheme (an NLB or Classic ELB line in a file routed as ALB); the
    stream parser re-parses the record with the named type's parser and indexes it under that type, instead
    of refusing a line that has a perfectly good home. Raise it only on a cheap, unambiguous test.
    """

    def __init__(self, log_type: str) -> None:
        super().__init__(log_type)
        self.log_type = log_type


Emitted = tuple[int, str, str, dict[str, Any]]
"""(offset, sub-record id or "", log type, document). The document id is `<stream prefix><offset>[.<sub>]`."""
Failed = tuple[int, Any, str, str]
"""(offset, raw record, log type, reason) for a record or sub-record that could not become a document."""


@dataclass(frozen=True, slots=True)
class ParseContext:
    """What a parser may know about the stream it reads, besides the records themselves."""

    bucket: str = ""
    key: str = ""
    account_id: str = ""
    """From the S3 key path (`AWSLogs/<account>/...`) when known."""
    region: str = ""
    keep_original: bool = False
    """Keep the raw record as `event.original`."""
    options: dict[str, Any] = field(default_factory=dict)
    """Per-source parser options (e.g. a VPC flow `format` string for streams without a header)."""
    log_group: str = ""
    """CloudWatch Logs group the records came from (subscription payloads), else empty."""
    log_stream: str = ""
    """CloudWatch Logs stream the records came from, else empty."""


class LogParser:
    """Base class for one log type. Subclasses set the class attributes and implement `parse`."""

    log_type: ClassVar[str]
    framing: ClassVar[Framing] = "lines"
    fields: ClassVar[dict[str, FieldType]] = {}
    """Dotted ECS field name -> type; the single source of truth for index templates (and later Arrow
    schemas). Fields a parser emits but does not list are mapped dynamically."""

    continuation: ClassVar[re.Pattern[str] | None] = None
    """For `lines` framing: a line this pattern matches (`.match`) continues the record before it and is joined
    to it with `\n` (a PostgreSQL statement over several lines, a stack trace). None: every line is a record."""
    serializes: ClassVar[bool] = False
    """True when the parser overrides `parse_serialized` (a fast path that formats the JSON itself)."""
    expands: ClassVar[bool] = False
    """True for container formats (CloudWatch Logs subscription payloads): `expand` is called instead of
    `parse`, and may yield documents of other log types."""
    example: ClassVar[str] = ""
    """One real record (a line, or a JSON object's text) shown with its document in docs/log-types.md."""
    routing: ClassVar[str] = ""
    """How `log_type: auto` finds this type (S3 key pattern, log group, content), for docs/log-types.md."""

    def __init__(self, ctx: ParseContext) -> None:
        self.ctx = ctx

    @classmethod
    def sniff(cls, head: str) -> bool:
        """Whether a stream whose first bytes (decoded, up to 64 KiB) are `head` is of this type.

        Used only when neither the S3 key nor the source's config tells the type; keep it cheap and strict:
        a false positive turns a whole object into parse failures.
        """
        return False

    def expand(self, record: Any, offset: int) -> tuple[list[Emitted], list[Failed]]:
        """Documents and failures of one container record; only for `expands = True` parsers."""
        raise NotImplementedError

    def parse(self, record: Any) -> dict[str, Any] | None:
        """Return a nested ECS document, None for a record that is not an event, or raise ParseError.

        `record` is a `str` (one line, without the line ending) for `lines` framing and a `dict` for
        `json_records` framing.
        """
        raise NotImplementedError

    def parse_serialized(self, record: Any) -> dict[str, Any] | Serialized | None:
        """`parse`, free to return the document already serialised, as (`@timestamp`, JSON bytes) equal to
        `orjson.dumps` of what `parse` returns. Called only where nothing changes a document after its parser
        (see `Serialized`), and only on lines in which no whitespace-free token holds a character JSON must
        escape (`"`, `\\`, a control character; `LineFramer.plain`): text copied into a JSON string needs no
        escaping as long as it holds no whitespace. Parsers that override it set `serializes`."""
        return self.parse(record)
