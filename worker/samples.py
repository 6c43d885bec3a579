"""Realistic synthetic AWS logs, generated (not copied), for the demo and the benchmarks.

Deterministic for a given seed, so benchmark runs compare like with like. Keys follow the layout AWS uses
when it delivers each log type to S3, so routing works on them exactly as on real deliveries.
"""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson

ACCOUNT = "123456789012"
REGION = "us-east-1"


def _ip(rng: random.Random, private: bool) -> str:
    if private:
        return f"10.0.{rng.randrange(256)}.{rng.randrange(1, 255)}"
    first = rng.choice((52, 54, 3, 18, 34, 44, 198))
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def vpc_flow_lines(n: int, seed: int = 1, start: datetime | None = None) -> Iterator[str]:
    """Default-format (v2) records, after the header line S3 delivery writes."""
    rng = random.Random(seed)
    t0 = int((start or datetime(2026, 11, 22, tzinfo=UTC)).timestamp())
    yield ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end "
           "action log-status")
    for i in range(n):
        s = t0 + i // 50
        proto = rng.choice((6, 6, 6, 17, 1))
        pk = rng.randrange(1, 200)
        yield (f"2 {ACCOUNT} eni-0{rng.randrange(16**8):08x} {_ip(rng, True)} {_ip(rng, rng.random() < .5)} "
               f"{rng.randrange(1024, 65535)} {rng.choice((443, 80, 22, 53, 3306, 5432))} {proto} {pk} "
               f"{pk * rng.randrange(40, 1500)} {s} {s + 60} {rng.choice(('ACCEPT', 'ACCEPT', 'REJECT'))} OK")


def alb_lines(n: int, seed: int = 2, start: datetime | None = None) -> Iterator[str]:
    rng = random.Random(seed)
    t0 = start or datetime(2026, 11, 22, tzinfo=UTC)
    paths = ("/", "/api/v1/users", "/api/v1/orders?id=42", "/static/app.js", "/login", "/health")
    agents = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36", "curl/8.5.0", "python-requests/2.32.3")
    for i in range(n):
        t = t0 + timedelta(milliseconds=i * 37)
        ts = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}Z"
        status = rng.choice((200, 200, 200, 301, 404, 500, 502))
        method = rng.choice(("GET", "GET", "POST"))
        path = rng.choice(paths)
        client = _ip(rng, False)
        target = _ip(rng, True)
        yield (f'https {ts} app/my-loadbalancer/50dc6c495c0c9188 {client}:{rng.randrange(1024, 65535)} '
               f'{target}:80 0.000 {rng.random():.3f} 0.000 {status} {status} {rng.randrange(100, 2000)} '
               f'{rng.randrange(200, 90000)} "{method} https://www.example.com:443{path} HTTP/1.1" '
               f'"{rng.choice(agents)}" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 '
               f'arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/my-targets/73e2d6bc24d8a067 '
               f'"Root=1-58337262-{rng.randrange(16**24):024x}" "www.example.com" '
               f'"arn:aws:acm:{REGION}:{ACCOUNT}:certificate/12345678-1234-1234-1234-123456789012" 0 '
               f'{ts} "forward" "-" "-" "{target}:80" "{status}" "-" "-" TID_{rng.randrange(16**16):016x}')


def cloudtrail_records(n: int, seed: int = 3, start: datetime | None = None) -> list[dict[str, object]]:
    rng = random.Random(seed)
    t0 = start or datetime(2026, 11, 22, tzinfo=UTC)
    names = (("ec2.amazonaws.com", "DescribeInstances"), ("s3.amazonaws.com", "GetBucketAcl"),
             ("iam.amazonaws.com", "CreateUser"), ("sts.amazonaws.com", "AssumeRole"),
             ("signin.amazonaws.com", "ConsoleLogin"))
    out: list[dict[str, object]] = []
    for i in range(n):
        source, name = rng.choice(names)
        rec: dict[str, object] = {
            "eventVersion": "1.08",
            "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "accountId": ACCOUNT,
                             "arn": f"arn:aws:iam::{ACCOUNT}:user/alice", "accessKeyId": "AKIAEXAMPLE",
                             "userName": "alice"},
            "eventTime": (t0 + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": source, "eventName": name, "awsRegion": REGION,
            "sourceIPAddress": _ip(rng, False), "userAgent": "aws-cli/2.15.0",
            "requestParameters": {"instancesSet": {"items": [{"instanceId": f"i-0{rng.randrange(16**8):08x}"}]}},
            "responseElements": None,
            "requestID": f"{rng.randrange(16**8):08x}-0000-4000-8000-{rng.randrange(16**12):012x}",
            "eventID": f"{rng.randrange(16**8):08x}-1111-4111-8111-{rng.randrange(16**12):012x}",
            "readOnly": name.startswith(("Describe", "Get")), "eventType": "AwsApiCall",
            "managementEvent": True, "recipientAccountId": ACCOUNT, "eventCategory": "Management",
        }
        if rng.random() < 0.1:
            rec["errorCode"] = "AccessDenied"
            rec["errorMessage"] = "User is not authorized to perform this operation"
        out.append(rec)
    return out


def gzip_lines(lines: Iterator[str] | list[str]) -> bytes:
    return gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=6)


def sample_objects(per_type: int = 200, seed: int = 7) -> dict[str, bytes]:
    """S3 key -> gzip body, one object per log type, keyed the way AWS delivers them."""
    day = "2026/11/22"
    prefix = f"AWSLogs/{ACCOUNT}"
    return {
        f"{prefix}/vpcflowlogs/{REGION}/{day}/{ACCOUNT}_vpcflowlogs_{REGION}_fl-0a1b2c3d_20261122T0000Z_{seed:08x}.log.gz":
            gzip_lines(vpc_flow_lines(per_type, seed)),
        f"{prefix}/elasticloadbalancing/{REGION}/{day}/{ACCOUNT}_elasticloadbalancing_{REGION}_app.my-loadbalancer.50dc6c495c0c9188_20261122T0000Z_10.0.0.1_{seed:08x}.log.gz":
            gzip_lines(alb_lines(per_type, seed)),
        f"{prefix}/CloudTrail/{REGION}/{day}/{ACCOUNT}_CloudTrail_{REGION}_20261122T0000Z_{seed:016x}.json.gz":
            gzip.compress(orjson.dumps({"Records": cloudtrail_records(per_type, seed)})),
    }
