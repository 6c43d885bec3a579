"""What the JSON-record parsers (WAF, Network Firewall, Route 53 Resolver, CloudTrail, Config) share.

They see decoded objects, not text, so the same questions come up in each: does a stream's head look like
their records, is a value worth keeping (AWS writes null, "", "-", [] and {} for "nothing"), where do keys go
that the parser does not know yet, which sibling type a record that is not theirs belongs to, and what stands
in for the raw record when `keep_original` asks for it.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

import orjson

from worker.parsers._fields import ABSENT, snake_case
from worker.parsers.base import Reroute


def json_head(head: str, array_limit: int | None = 8192) -> str:
    """The text a content sniff should look for its keys in: the first line of an NDJSON stream, or (for a
    stream starting with `[`) its first `array_limit` characters (all of it when None); "" when the stream
    does not start as JSON, so that no key is found."""
    text = head.lstrip()
    if not text.startswith(("{", "[")):
        return ""
    if text[0] == "{":
        return text.split("\n", 1)[0]
    return text if array_limit is None else text[:array_limit]


def present(value: Any) -> bool:
    """Whether a JSON value says something: not null, "", `-`, [] or {} (Elastic's clean-up drops those)."""
    return value is not None and value != "" and value != ABSENT and value != [] and value != {}


def keep_unmapped(record: dict[str, Any], handled: frozenset[str], target: dict[str, Any]) -> None:
    """Keys of `record` the parser does not map (not in `handled`), so that format drift is kept, not dropped:
    present scalars as `target[<snake_case key>]`, present objects and lists under `target["unmapped"]` as
    written (a `flattened` field)."""
    if handled.issuperset(record):
        return
    unmapped: dict[str, Any] = {}
    for key, value in record.items():
        if key in handled or not present(value):
            continue
        if isinstance(value, (dict, list)):
            unmapped[key] = value
        else:
            target[snake_case(key)] = value
    if unmapped:
        target["unmapped"] = unmapped


_SIGNATURES = (
    ("waf", "webaclId", "httpRequest"),
    ("network_firewall", "firewall_name", "event"),
    ("route53_resolver", "query_name", "srcaddr"),
)
"""(log type, two keys every record of that type has): the JSON types AWS delivers through the same channels
(Firehose streams, CloudWatch Logs groups), which a misrouted record is tested against."""


def reroute_sibling(record: Container[str], own_type: str) -> None:
    """Raise `Reroute` when a record that is not `own_type`'s carries a sibling type's two signature keys."""
    for log_type, first, second in _SIGNATURES:
        if log_type != own_type and first in record and second in record:
            raise Reroute(log_type)


def json_original(record: Any) -> str:
    """`event.original` of a decoded record: the framer has already turned its bytes into an object, so its
    compact JSON text stands in for them."""
    return orjson.dumps(record).decode()
