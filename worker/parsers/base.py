"""What every log-type parser is: a pure, per-stream object turning one framed record into one ECS document.

Parsers never touch the network or the sink: they get text (or an already-decoded JSON record) and return a
nested dict with ECS field names, or None for records that are not events (a header line, a digest file).
They are instantiated once per input stream (one S3 object, one Kinesis record batch) because some formats
carry state inside the stream: a VPC flow log's header line declares the columns of the lines after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

Framing = Literal["lines", "json_records"]
"""`lines`: one record per text line. `json_records`: JSON records, either `{"Records": [...]}` documents or
one JSON object per line (CloudTrail, Config)."""

FieldType = Literal[
    "keyword", "text", "ip", "long", "integer", "short", "byte", "double", "float",
    "boolean", "date", "object", "flattened", "geo_point",
]


class ParseError(ValueError):
    """A record that cannot become a document. The message is the reason stored with the dead letter."""


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


class LogParser:
    """Base class for one log type. Subclasses set the class attributes and implement `parse`."""

    log_type: ClassVar[str]
    framing: ClassVar[Framing] = "lines"
    fields: ClassVar[dict[str, FieldType]] = {}
    """Dotted ECS field name -> type; the single source of truth for index templates (and later Arrow
    schemas). Fields a parser emits but does not list are mapped dynamically."""

    def __init__(self, ctx: ParseContext) -> None:
        self.ctx = ctx

    def parse(self, record: Any) -> dict[str, Any] | None:
        """Return a nested ECS document, None for a record that is not an event, or raise ParseError.

        `record` is a `str` (one line, without the line ending) for `lines` framing and a `dict` for
        `json_records` framing.
        """
        raise NotImplementedError
