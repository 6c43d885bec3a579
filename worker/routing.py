"""Origin -> log type: decided once per object from its S3 key, or fixed per source.

AWS delivers every service log under `[prefix/]AWSLogs/[o-org/]<account>/<service>/<region>/...`, so the key
alone tells the log type, the account and the region, without opening the object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_AWSLOGS = re.compile(r"(?:^|/)AWSLogs/(?:o-[a-z0-9]+/)?(\d{12})/([^/]+)/(?:([a-z]{2}(?:-[a-z]+)+-\d)/)?")

# (substring of the key, log type); first match wins, so more specific rules come first.
_KEY_RULES: tuple[tuple[str, str], ...] = (
    ("/vpcflowlogs/", "vpc_flow"),
    ("/elasticloadbalancing/", "alb"),
    ("/CloudTrail/", "cloudtrail"),
    ("/CloudTrail-Insight/", "cloudtrail"),
)
_SKIP_RULES: tuple[tuple[str, str], ...] = (
    ("/CloudTrail-Digest/", "cloudtrail_digest"),
    ("_CloudTrail-Digest_", "cloudtrail_digest"),
)


@dataclass(frozen=True, slots=True)
class Route:
    log_type: str | None
    """None when nothing matched: the object is dead-lettered as `unknown_log_type`."""
    skip: str | None = None
    """A reason to ignore the object on purpose (CloudTrail digests are integrity proofs, not events)."""
    account_id: str = ""
    region: str = ""


def route_s3_key(key: str, configured: str = "auto") -> Route:
    """The route for an S3 key; `configured` is the source's `log_type` (`auto` or a fixed type)."""
    m = _AWSLOGS.search(key)
    account, region = (m.group(1), m.group(3) or "") if m else ("", "")
    for needle, reason in _SKIP_RULES:
        if needle in key:
            return Route(None, reason, account, region)
    if configured != "auto":
        return Route(configured, None, account, region)
    probe = "/" + key if not key.startswith("/") else key
    for needle, log_type in _KEY_RULES:
        if needle in probe:
            return Route(log_type, None, account, region)
    return Route(None, None, account, region)


_VPC_HEADER = re.compile(r"^(?:\$\{)?(?:version|account-id|interface-id|srcaddr|dstaddr)\b")
_ALB_LINE = re.compile(r"^(?:http|https|h2|grpcs|ws|wss) \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
_VPC_V2_LINE = re.compile(r"^\d+ (?:\d{12}|-|unknown) (?:eni-|tgw-|-)\S* ")


def sniff_log_type(head: str) -> str | None:
    """Guess the log type from the first non-blank line of a stream (content, not name)."""
    line = head.lstrip().split("\n", 1)[0].strip()
    if not line:
        return None
    if line.startswith("{") or line.startswith("["):
        if '"Records"' in head[:4096] or '"eventVersion"' in line or '"eventSource"' in line:
            return "cloudtrail"
        if '"message"' in line and _VPC_V2_LINE.match(line.split('"message"', 1)[1].lstrip(' :"')):
            return "vpc_flow"
        return None
    if _ALB_LINE.match(line):
        return "alb"
    if _VPC_HEADER.match(line) or _VPC_V2_LINE.match(line):
        return "vpc_flow"
    return None
