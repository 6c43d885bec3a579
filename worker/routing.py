"""Origin -> log type: decided once per object from its S3 key, or fixed per source.

AWS delivers every service log under `[prefix/]AWSLogs/[o-org/]<account>/<service>/<region>/...`, so the key
alone tells the log type, the account and the region, without opening the object.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from worker.parsers import get_parser, sniff_order

_AWSLOGS = re.compile(r"(?:^|/)AWSLogs/(?:o-[a-z0-9]+/)?(\d{12})/([^/]+)/(?:([a-z]{2}(?:-[a-z]+)+-\d)/)?")

# (substring of the key, log type); first match wins, so more specific rules come first.
_KEY_RULES: tuple[tuple[str, str], ...] = (
    ("/vpcflowlogs/", "vpc_flow"),
    ("/CloudTrail/", "cloudtrail"),
    ("/CloudTrail-Insight/", "cloudtrail"),
    ("/Config/", "aws_config"),
    ("/WAFLogs/", "waf"),
    ("/network-firewall/", "network_firewall"),
    ("/vpcdnsquerylogs/", "route53_resolver"),
)
_SKIP_RULES: tuple[tuple[str, str], ...] = (
    ("/CloudTrail-Digest/", "cloudtrail_digest"),
    ("_CloudTrail-Digest_", "cloudtrail_digest"),
    ("ConfigWritabilityCheckFile", "config_writability_check"),
)
# Load balancer files share one folder; the file name tells the kind: `..._app.<lb>...` ALB (access and
# connection logs), `..._net.<lb>...` NLB, anything else Classic ELB.
_ELB_FOLDER = "/elasticloadbalancing/"
# Services that do not use the AWSLogs layout, recognised by their file names.
_NAME_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^E[A-Z0-9]{6,15}\.\d{4}-\d\d-\d\d-\d\d\.[0-9a-f]{6,}(?:\.gz)?$"), "cloudfront"),
    (re.compile(r"^\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d-[0-9A-F]{16}$"), "s3_access"),
)


@dataclass(frozen=True, slots=True)
class Route:
    log_type: str | None
    """None when the key tells nothing: the content decides (see `sniff_log_type`)."""
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
    if _ELB_FOLDER in probe:
        name = probe.rpartition("/")[2]
        kind = "alb" if "_app." in name else "nlb" if "_net." in name else "elb"
        return Route(kind, None, account, region)
    for needle, log_type in _KEY_RULES:
        if needle in probe:
            return Route(log_type, None, account, region)
    name = probe.rpartition("/")[2]
    for pattern, log_type in _NAME_RULES:
        if pattern.match(name):
            return Route(log_type, None, account, region)
    return Route(None, None, account, region)


def sniff_log_type(head: str) -> str | None:
    """Guess the log type from the first decoded bytes of a stream (content, not name).

    Every parser says whether it recognises the head; they are asked in the registry's order (specific
    formats first), and `generic` never claims anything, so None means "unknown format".
    """
    if not head.strip():
        return None
    for log_type in sniff_order():
        if get_parser(log_type).sniff(head):
            return log_type
    return None
