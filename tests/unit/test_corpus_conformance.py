"""How closely our documents agree with Elastic's for the same input, field by field.

Elastic's integration test outputs (`*-expected.json` in the corpus) are the reference: for every expected
document we find the input record it came from (by `event.original`, the raw record Elastic kept), run our
parser over the whole input stream (so VPC header lines take effect), flatten both documents to dotted names
and compare the fields both define. A document Elastic produced and we refused counts every comparable
Elastic field as a disagreement. The agreement rate per log type must stay at or above 95 %.

Left out of the comparison, because they are not parsing: GeoIP/ASN enrichment, `event.created` and
`event.ingested` (ingest clocks), `ecs.version`, `tags`, `_tmp`, `event.original` itself (it is the pairing
key). Deliberate representation differences are listed in `RENAMED` and `REPRESENTATION` with the reason.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest

from tests.corpus import CORPUS, load_expected, read_lines
from worker.parsers import ParseContext, ParseError, get_parser
from worker.parsers._fields import flatten
from worker.parsers.stream import StreamParser

MIN_RATE = 0.95


@dataclass(frozen=True)
class Scope:
    log_type: str
    folder: str
    expected: tuple[str, ...]
    json_lines: bool = False
    options: tuple[tuple[str, Any], ...] = ()
    pair_by: str = "event.original"
    """How an expected document finds its input record: `event.original` (the raw record Elastic kept),
    another field both sides carry (`event.id`), or `log.offset` (Beats: the byte offset of the line)."""


SCOPES = (
    # community_id is off by default (it costs a SHA-1 per line); on here so that it is checked too.
    Scope(
        "vpc_flow",
        "vpcflow",
        (
            "elastic-integrations_test-tcp-flag-sequence.log-expected.json",
            "elastic-integrations_test-v5-all-fields.log-expected.json",
        ),
        options=(("community_id", True),),
    ),
    Scope("alb", "elb", ("elastic-integrations_test-alb.log-expected.json",)),
    Scope("cloudtrail", "cloudtrail", ("elastic-integrations_test-console-login-json.log-expected.json",), True),
    Scope("s3_access", "s3access", ("elastic-integrations_test-s3-server-access.log-expected.json",)),
    # The stored expected file predates the stored input: 4 of its originals are space-separated renderings of
    # tab-separated lines, which are parsed on their own (the request id cannot pair them: one id is on 5 lines).
    Scope("cloudfront", "cloudfront_standard", ("elastic-integrations_test-cloudfront.log-expected.json",)),
    Scope("waf", "waf", ("elastic-integrations_test-waf.log-expected.json",), True),
    Scope("network_firewall", "network_firewall", ("elastic-integrations_test-firewall.log-expected.json",), True),
    # Filebeat's module output for Classic ELB TCP listeners: flat dotted keys, no event.original.
    Scope("elb", "elb", ("beats_elb-tcp.log-expected.json",), pair_by="log.offset"),
)

EXCLUDED_PREFIXES = (
    "source.geo.", "destination.geo.", "source.as.", "destination.as.", "client.geo.", "client.as.",
    "ecs.version", "event.created", "event.ingested", "tags", "_tmp.", "event.original",
    # Filebeat bookkeeping, not parsing: where the line was read and which module ran.
    "log.offset", "input.type", "service.type", "fileset.", "event.module", "event.dataset",
)

RENAMED: dict[str, tuple[tuple[str, str], ...]] = {
    # We keep CloudTrail's free-form objects once, as flattened objects named after the record key; Elastic
    # keeps the same objects under `aws.cloudtrail.flattened.*` (see worker/parsers/cloudtrail.py).
    "cloudtrail": (
        ("aws.cloudtrail.flattened.insight_details.", "aws.cloudtrail.insight_details."),
        ("aws.cloudtrail.flattened.", "aws.cloudtrail."),
    ),
}
REPRESENTATION: dict[str, tuple[str, ...]] = {
    # Elastic's Java `toString()` rendering of the same objects (`{ConsoleLogin=Success}`): not JSON, not
    # searchable by key, and a duplicate of the flattened object compared above.
    "cloudtrail": (
        "aws.cloudtrail.request_parameters",
        "aws.cloudtrail.response_elements",
        "aws.cloudtrail.additional_eventdata",
        "aws.cloudtrail.service_event_details",
    ),
}


@dataclass
class Result:
    log_type: str
    docs: int = 0
    paired_by_input: int = 0
    paired_by_original: int = 0
    refused: list[str] = field(default_factory=list)
    compared: int = 0
    agreed: int = 0
    disagreements: list[tuple[str, str, Any, Any]] = field(default_factory=list)
    elastic_only: Counter[str] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.agreed / self.compared if self.compared else 0.0


def _parse_instant(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    main, dot, rest = text.partition(".")
    if dot:  # fromisoformat takes at most 6 fraction digits; Elastic writes up to 9
        digits = "".join(ch for ch in rest if ch.isdigit())
        zone = rest[len(digits) :]
        text = f"{main}.{(digits + '000000')[:6]}{zone}"
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        return None
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def values_agree(ours: Any, theirs: Any, is_date: bool) -> bool:
    """Equal after normalisation: instants to the millisecond, numbers as numbers, lists as sets."""
    if is_date:
        a, b = _parse_instant(ours), _parse_instant(theirs)
        if a is not None and b is not None:
            return a == b
    if isinstance(ours, list) or isinstance(theirs, list):
        left = ours if isinstance(ours, list) else [ours]
        right = theirs if isinstance(theirs, list) else [theirs]
        return sorted(map(str, left)) == sorted(map(str, right))
    if isinstance(ours, bool) or isinstance(theirs, bool):
        return ours is theirs
    if isinstance(ours, (int, float)) or isinstance(theirs, (int, float)):
        a_num, b_num = _number(ours), _number(theirs)
        return a_num is not None and a_num == b_num
    return bool(ours == theirs)


def _elastic_flat(log_type: str, doc: dict[str, Any]) -> dict[str, Any]:
    flat = flatten(doc)
    renames = RENAMED.get(log_type, ())
    representation = REPRESENTATION.get(log_type, ())
    out: dict[str, Any] = {}
    for key, value in flat.items():
        if key.startswith(EXCLUDED_PREFIXES) or key in representation:
            continue
        for old, new in renames:
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        out[key] = value
    return out


def _parse_one(stream: StreamParser, record: Any) -> dict[str, Any] | Exception | None:
    docs, failures, _ = stream.process([(0, record)])
    if docs:
        return docs[0][3]
    if failures:
        return ParseError(failures[0][3])
    return None


def _parse_stream(scope: Scope, lines: list[str]) -> dict[str, dict[str, Any] | Exception | None]:
    """Our parsers over one whole input file, as one stream (so header lines take effect); keyed by raw line."""
    stream = StreamParser(scope.log_type, ParseContext(keep_original=True, options=dict(scope.options)))
    out: dict[str, dict[str, Any] | Exception | None] = {}
    for line in lines:
        out.setdefault(line, _parse_one(stream, json.loads(line) if scope.json_lines else line))
    return out


def _parse_alone(scope: Scope, original: str) -> dict[str, Any] | Exception | None:
    stream = StreamParser(scope.log_type, ParseContext(keep_original=True, options=dict(scope.options)))
    return _parse_one(stream, json.loads(original) if scope.json_lines else original)


def _expected_docs(relative: str) -> list[dict[str, Any]]:
    """Elastic integration files are `{"expected": [...]}`; Beats module files are a bare JSON array."""
    data = json.loads((CORPUS / relative).read_text())
    if isinstance(data, list):
        return [doc for doc in data if doc is not None]
    return load_expected(relative)


def _line_offsets(lines: list[str]) -> dict[int, str]:
    offsets: dict[int, str] = {}
    position = 0
    for line in lines:
        offsets[position] = line
        position += len(line.encode()) + 1
    return offsets


def _pair(scope: Scope, theirs: dict[str, Any], lines: list[str],
          ours_by_line: dict[str, dict[str, Any] | Exception | None], result: Result) -> Any:
    flat = flatten(theirs)
    if scope.pair_by == "log.offset":
        line = _line_offsets(lines)[flat["log.offset"]]
        result.paired_by_input += 1
        return line, ours_by_line[line]
    if scope.pair_by != "event.original":
        wanted = flat[scope.pair_by]
        for line, ours in ours_by_line.items():
            if isinstance(ours, dict) and flatten(ours).get(scope.pair_by) == wanted:
                result.paired_by_input += 1
                return line, ours
    original = flat["event.original"]
    if original in ours_by_line:
        result.paired_by_input += 1
        return original, ours_by_line[original]
    # Elastic's expected file was generated from an older version of the input; the record it parsed is
    # still right there in event.original.
    result.paired_by_original += 1
    return original, _parse_alone(scope, original)


@cache
def conformance(log_type: str) -> Result:
    scope = next(s for s in SCOPES if s.log_type == log_type)
    date_fields = {name for name, kind in get_parser(log_type).fields.items() if kind == "date"} | {"@timestamp"}
    result = Result(log_type)
    for expected_name in scope.expected:
        input_name = expected_name.removesuffix("-expected.json")
        lines = read_lines(f"{scope.folder}/{input_name}")
        ours_by_line = _parse_stream(scope, lines)
        for theirs in _expected_docs(f"{scope.folder}/{expected_name}"):
            result.docs += 1
            original, ours = _pair(scope, theirs, lines, ours_by_line, result)
            theirs_flat = _elastic_flat(log_type, theirs)
            if not isinstance(ours, dict):
                result.refused.append(f"{input_name}: {ours!r} for {original[:80]!r}")
                result.compared += len(theirs_flat)
                for key, value in theirs_flat.items():
                    result.disagreements.append((input_name, key, "<no document>", value))
                continue
            ours_flat = flatten(ours)
            for key, their_value in theirs_flat.items():
                if key not in ours_flat:
                    result.elastic_only[key] += 1
                    continue
                result.compared += 1
                if values_agree(ours_flat[key], their_value, key in date_fields):
                    result.agreed += 1
                else:
                    result.disagreements.append((input_name, key, ours_flat[key], their_value))
    return result


def test_print_conformance_table() -> None:
    """The table the lead reads: run with `-s` to see it."""
    results = [conformance(scope.log_type) for scope in SCOPES]
    print(f"\ncorpus: {CORPUS}")
    print(f"{'type':<11} {'docs':>5} {'paired':>7} {'via orig':>8} {'compared':>9} {'agreed':>7} {'rate':>7}")
    for r in results:
        print(
            f"{r.log_type:<11} {r.docs:>5} {r.paired_by_input:>7} {r.paired_by_original:>8} "
            f"{r.compared:>9} {r.agreed:>7} {r.rate:>7.1%}"
        )
    for r in results:
        for line in r.refused:
            print(f"  {r.log_type} refused: {line}")
        for source, key, ours, theirs in r.disagreements:
            print(f"  {r.log_type} disagree: {source} {key}: ours={ours!r} elastic={theirs!r}")
        if r.elastic_only:
            names = ", ".join(f"{k}({n})" for k, n in sorted(r.elastic_only.items()))
            print(f"  {r.log_type} only Elastic emits: {names}")
    assert all(r.docs for r in results)


@pytest.mark.parametrize("log_type", [scope.log_type for scope in SCOPES])
def test_agreement_rate(log_type: str) -> None:
    result = conformance(log_type)
    assert result.docs > 0, "no Elastic expected documents found"
    assert result.compared >= 10 * result.docs, "suspiciously few fields compared: is the pairing broken?"
    assert not result.refused, result.refused
    assert result.rate >= MIN_RATE, (
        f"{log_type}: {result.agreed}/{result.compared} fields agree ({result.rate:.1%}); "
        f"disagreements: {result.disagreements}"
    )


def test_values_agree_normalisation() -> None:
    assert values_agree("2018-07-02T22:22:48.364000Z", "2018-07-02T22:22:48.364Z", True)
    assert not values_agree("2018-07-02T22:22:48.365Z", "2018-07-02T22:22:48.364Z", True)
    assert values_agree(80, "80", False)
    assert values_agree(["network"], "network", False)
    assert values_agree(["b", "a"], ["a", "b"], False)
    assert not values_agree(["a"], ["a", "b"], False)
    assert not values_agree(True, "true", False)
