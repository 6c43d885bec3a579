"""The compose stack's one-shot sample uploader: a few minutes of realistic AWS logs, dated now, into every
source the dev config reads, so Dashboards and Grafana show data within a minute of `docker compose up`.

Runs in the Sluice image (its Python, botocore and `worker.samples`, nothing else). Each round writes:
  * S3 (-> S3 notification -> sqs_s3 source): a VPC flow log in a custom format with flow-direction, an ALB log,
    a CloudTrail file, under the keys AWS delivers them to; every third round one VPC flow object with a few
    malformed lines, so dead letters (and the replay source) have something to show;
  * SQS (plain `sqs` source): JSON application log lines;
  * CloudWatch Logs (subscription filter -> Kinesis -> `kinesis` source): application lines and VPC flow records.
Environment: SLUICE_AWS_ENDPOINT, AWS_REGION, LOGS_BUCKET, APP_QUEUE, APP_LOG_GROUP, VPC_LOG_GROUP,
SAMPLE_ROUNDS (default 12), SAMPLE_INTERVAL seconds (default 5), SAMPLE_LINES per object (default 400).
"""

from __future__ import annotations

import gzip
import json
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.session
from botocore.config import Config

from worker.samples import ACCOUNT, alb_lines, cloudtrail_records, vpc_flow_lines

VPC_FORMAT = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end "
              "action log-status vpc-id subnet-id instance-id flow-direction")
# A few hosts do most of the talking, as in a real VPC: "top talkers" then means something.
TALKERS = ["10.0.1.10", "10.0.1.11", "10.0.2.20", "10.0.3.30", "10.0.4.40", "10.0.5.50"]
OUTSIDE = ["52.94.133.131", "54.239.28.85", "3.5.140.2", "18.205.93.2", "34.196.21.7", "198.51.100.23",
           "203.0.113.9", "192.0.2.44"]


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        sys.exit(f"upload_samples: {name} is not set")
    return value


def vpc_flow_v5(n: int, rng: random.Random, now: datetime) -> list[str]:
    """Custom-format records with flow-direction (ingress/egress), so the direction panels have data."""
    lines = [VPC_FORMAT]
    end = int(now.timestamp())
    for _ in range(n):
        inside = rng.choices(TALKERS, weights=[30, 20, 15, 10, 5, 2])[0]
        outside = rng.choice(OUTSIDE)
        ingress = rng.random() < 0.45
        src, dst = (outside, inside) if ingress else (inside, outside)
        port = rng.choice((443, 443, 80, 22, 3389, 5432)) if ingress else rng.choice((443, 443, 53, 123))
        action = "REJECT" if ingress and port in (22, 3389) and rng.random() < 0.8 else "ACCEPT"
        packets = rng.randrange(1, 400)
        start = end - rng.randrange(60, 600)
        lines.append(f"5 {ACCOUNT} eni-0{rng.randrange(16**8):08x} {src} {dst} {rng.randrange(1024, 65535)} {port} "
                     f"6 {packets} {packets * rng.randrange(60, 1500)} {start} {start + 60} {action} OK "
                     f"vpc-0a1b2c3d subnet-0{TALKERS.index(inside)}aa i-0{rng.randrange(16**8):08x} "
                     f"{'ingress' if ingress else 'egress'}")
    return lines


def app_lines(n: int, rng: random.Random, now: datetime) -> list[str]:
    events = (("info", "order placed"), ("info", "payment captured"), ("warning", "slow query"),
              ("error", "upstream timeout"), ("info", "user signed in"))
    out = []
    for i in range(n):
        level, msg = rng.choice(events)
        out.append(json.dumps({"@timestamp": (now - timedelta(milliseconds=10 * (n - i))).isoformat(),
                               "log": {"level": level}, "message": msg, "service": {"name": "shop"},
                               "order_id": rng.randrange(10**6)}))
    return out


def gz(lines: list[str]) -> bytes:
    return gzip.compress(("\n".join(lines) + "\n").encode())


def upload_round(n: int, clients: dict[str, Any], rng: random.Random, lines: int) -> None:
    now = datetime.now(UTC)
    day, stamp = now.strftime("%Y/%m/%d"), now.strftime("%Y%m%dT%H%MZ")
    region, bucket = clients["region"], clients["bucket"]
    base = f"AWSLogs/{ACCOUNT}"
    suffix = uuid.uuid4().hex[:8]
    vpc = f"{base}/vpcflowlogs/{region}/{day}/{ACCOUNT}_vpcflowlogs_{region}"
    elb = f"{base}/elasticloadbalancing/{region}/{day}/{ACCOUNT}_elasticloadbalancing_{region}"
    trail = f"{base}/CloudTrail/{region}/{day}/{ACCOUNT}_CloudTrail_{region}"
    alb = alb_lines(lines, rng.randrange(10**6), now - timedelta(minutes=1))
    records = cloudtrail_records(lines // 4, rng.randrange(10**6), now - timedelta(minutes=2))
    objects = {
        f"{vpc}_fl-0a1b2c3d_{stamp}_{suffix}.log.gz": gz(vpc_flow_v5(lines, rng, now)),
        f"{elb}_app.shop.50dc6c495c0c9188_{stamp}_10.0.0.1_{suffix}.log.gz": gz(list(alb)),
        f"{trail}_{stamp}_{suffix}.json.gz": gzip.compress(json.dumps({"Records": records}).encode()),
    }
    if n % 3 == 2:
        broken = vpc_flow_v5(20, rng, now)
        broken[5:8] = ["this is not a flow record", "5 123 eni-x 10.0.0.1", "5 x y z"]
        objects[f"{vpc}_fl-broken_{stamp}_{suffix}.log.gz"] = gz(broken)
    for key, body in objects.items():
        clients["s3"].put_object(Bucket=bucket, Key=key, Body=body)

    app = app_lines(50, rng, now)
    for i in range(0, len(app), 10):
        clients["sqs"].send_message(QueueUrl=clients["queue_url"], MessageBody="\n".join(app[i:i + 10]))

    ms = int(now.timestamp() * 1000)
    flows = list(vpc_flow_lines(100, rng.randrange(10**6), now - timedelta(minutes=2)))[1:]  # no header on CWL
    for group, messages in ((clients["app_group"], app_lines(40, rng, now)), (clients["vpc_group"], flows)):
        clients["logs"].put_log_events(logGroupName=group, logStreamName="samples",
                                       logEvents=[{"timestamp": ms, "message": m} for m in messages])
    print(f"round {n + 1}: {len(objects)} S3 objects, 5 SQS messages, {40 + len(flows)} CloudWatch Logs events",
          flush=True)


def main() -> int:
    endpoint = os.environ.get("SLUICE_AWS_ENDPOINT") or None
    region = env("AWS_REGION", "us-east-1")
    session = botocore.session.get_session()
    cfg = Config(retries={"max_attempts": 10, "mode": "standard"})

    def client(service: str) -> Any:
        return session.create_client(service, region_name=region, endpoint_url=endpoint, config=cfg)

    clients: dict[str, Any] = {"s3": client("s3"), "sqs": client("sqs"), "logs": client("logs"), "region": region,
                               "bucket": env("LOGS_BUCKET", "sluice-logs"),
                               "app_group": env("APP_LOG_GROUP", "/sluice/demo/app"),
                               "vpc_group": env("VPC_LOG_GROUP", "sluice-demo-vpc-flow")}
    clients["queue_url"] = clients["sqs"].get_queue_url(QueueName=env("APP_QUEUE", "sluice-app-logs"))["QueueUrl"]
    for group in (clients["app_group"], clients["vpc_group"]):
        try:
            clients["logs"].create_log_stream(logGroupName=group, logStreamName="samples")
        except clients["logs"].exceptions.ResourceAlreadyExistsException:
            pass
    rounds, interval = int(env("SAMPLE_ROUNDS", "12")), float(env("SAMPLE_INTERVAL", "5"))
    rng = random.Random(int(os.environ.get("SAMPLE_SEED", "7")))
    for n in range(rounds):
        upload_round(n, clients, rng, int(env("SAMPLE_LINES", "400")))
        if n + 1 < rounds:
            time.sleep(interval)
    print("samples uploaded", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
