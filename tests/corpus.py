"""Where the shared sample corpus lives, and how tests read it.

The corpus is checked out next to this repository (`../shared/corpus`) in the workspace, and somewhere else in
CI; `SLUICE_CORPUS` overrides the location so the same tests run in both.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from worker.decoding import JsonRecordsFramer, LineFramer, StreamDecoder
from worker.parsers import ParseContext
from worker.parsers.stream import StreamParser
from worker.parsers.vpc_flow import KNOWN_FIELDS
from worker.routing import route_s3_key, sniff_log_type

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS: Path = Path(os.environ.get("SLUICE_CORPUS") or REPO_ROOT.parent / "shared" / "corpus").resolve()


def corpus_file(relative: str) -> Path:
    """The path of a corpus file; fails the test (not a skip) when it is missing, so a broken checkout shows."""
    path = CORPUS / relative
    if not path.is_file():
        raise FileNotFoundError(f"corpus file missing: {path} (set SLUICE_CORPUS to the corpus directory)")
    return path


def read_text(relative: str) -> str:
    """A corpus file's text; `.gz` files are inflated."""
    path = corpus_file(relative)
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode("utf-8")


def read_lines(relative: str) -> list[str]:
    """The lines of a corpus file without `\n` / `\r\n` (an empty last line is not a line).

    Not `str.splitlines`: it also splits on form feeds and Unicode separators, which can occur inside a
    record (a user agent), and the framer does not.
    """
    lines = [line.removesuffix("\r") for line in read_text(relative).split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def read_json_records(relative: str) -> list[dict[str, Any]]:
    """CloudTrail-style input: a `{"Records": [...]}` document, a JSON array, or one JSON object per line."""
    text = read_text(relative)
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if isinstance(whole, dict) and isinstance(whole.get("Records"), list):
        return list(whole["Records"])
    if isinstance(whole, list):
        return whole
    return [whole]


def load_expected(relative: str) -> list[dict[str, Any]]:
    """The documents of an Elastic `*-expected.json` file, without the nulls (lines the pipeline dropped)."""
    data = json.loads(read_text(relative))
    return [doc for doc in data["expected"] if doc is not None]


def expected_files(folder: str) -> Iterator[Path]:
    """The Elastic expected-output files of one corpus folder."""
    yield from sorted((CORPUS / folder).glob("elastic-integrations_*-expected.json"))


# Corpus files that are not AWS log deliveries: function docs with embedded examples (VRL), a peer's processed
# output, and an API response (GetLogEvents). Their records are exercised by the parser unit tests instead.
NOT_DELIVERIES = (
    "vrl_",
    "opensearch-catalog_amazon_vpc_flow-sample.json",
    "awsdocs_python-logging_get-log-events.json",
)


def raw_inputs() -> list[str]:
    """Every corpus file that is a log as AWS delivers it (relative paths), sorted."""
    out: list[str] = []
    for path in sorted(CORPUS.glob("*/*")):
        folder, name = path.parent.name, path.name
        if folder.startswith(("_", "LICENSES")) or name.endswith("-expected.json") or name.startswith(NOT_DELIVERIES):
            continue
        out.append(f"{folder}/{name}")
    return out


# Where AWS would put each corpus folder's files in S3, when the service uses the AWSLogs layout; other
# folders get neutral keys, so their type is found from the content, as it would be for a custom prefix.
_AWSLOGS_FOLDERS = {
    "vpcflow": "vpcflowlogs",
    "cloudtrail": "CloudTrail",
    "aws_config": "Config",
    "waf": "WAFLogs",
    "network_firewall": "network-firewall",
    "route53_resolver": "vpcdnsquerylogs",
}
# The types a folder's files may be detected as (a mixed load-balancer file holds three types).
ALLOWED_TYPES = {
    "aws_config": {"aws_config"},
    "cloudfront_standard": {"cloudfront"},
    "cloudtrail": {"cloudtrail"},
    "cloudwatch_subscription": {"cloudwatch_logs"},
    "elb": {"alb", "elb", "nlb"},
    "lambda": {"lambda"},
    "network_firewall": {"network_firewall"},
    "rds_mysql": {"cloudwatch_logs"},
    "rds_postgresql": {"rds_postgresql"},
    "route53_public": {"route53_public"},
    "route53_resolver": {"route53_resolver"},
    "s3access": {"s3_access"},
    "vpcflow": {"vpc_flow"},
    "waf": {"waf"},
}

ACCOUNT = "123456789012"
REGION = "us-east-1"


def s3_key_for(relative: str) -> str:
    folder, name = relative.split("/", 1)
    service = _AWSLOGS_FOLDERS.get(folder)
    if service is None:
        return f"corpus/{folder}/{name}"
    if folder == "cloudtrail" and "digest" in name:
        service = "CloudTrail-Digest"
    return f"AWSLogs/{ACCOUNT}/{service}/{REGION}/2026/11/23/{name}"


def is_non_event(record: Any) -> bool:
    """What a parser may legitimately turn into nothing."""
    if isinstance(record, dict):
        if record.get("messageType") == "CONTROL_MESSAGE":
            return True
        return "digestStartTime" in record and "digestEndTime" in record
    text = record.strip()
    if not text or text.startswith(("#Version:", "#Fields:")):
        return True
    if text.strip("- ") == "END OF LOG":  # RDS log-file download marker, written by the API, not the database
        return True
    first = text.split()[0]
    return first in KNOWN_FIELDS or first.startswith("${")


def account(relative: str) -> dict[str, Any]:
    """Parse one corpus file the way the worker would (route, decode, frame, stream-parse) and count."""
    data = bytearray()
    decoder = StreamDecoder()
    for chunk in decoder.feed((CORPUS / relative).read_bytes()):
        data += chunk
    for chunk in decoder.finish():
        data += chunk
    route = route_s3_key(s3_key_for(relative))
    out: dict[str, Any] = {"skip": route.skip}
    if route.skip:
        return out
    log_type = route.log_type or sniff_log_type(bytes(data[:65536]).decode("utf-8", "replace")) or "generic"
    stream = StreamParser(log_type, ParseContext(account_id=route.account_id, region=route.region))
    stream.skipped_records = []
    frames: list[tuple[int, Any]]
    if stream.framing == "lines":
        framer = LineFramer()
        frames = [*framer.feed(bytes(data)), *framer.finish()]
        assert not framer.take_oversize()
        errors: list[Any] = []
    else:
        jframer = JsonRecordsFramer()
        jframer.feed(bytes(data))
        frames, errors = jframer.finish()
    docs, failures, skipped = stream.process(frames)
    more_docs, more_failures, more_skipped = stream.finish()
    docs, failures, skipped = docs + more_docs, failures + more_failures, skipped + more_skipped
    out.update(log_type=log_type, frames=len(frames), framing_errors=len(errors), docs=docs, failures=failures,
               skipped=skipped, joined=stream.joined, skipped_records=stream.skipped_records,
               expands=stream.parser.expands)
    if stream.parser.expands:
        out["events"] = sum(len(r.get("logEvents") or []) for _, r in frames
                            if isinstance(r, dict) and r.get("messageType") != "CONTROL_MESSAGE")
    return out
