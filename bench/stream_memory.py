"""Peak RSS of a worker while one huge object streams through the whole pipeline (not a timed test).

Generates a gzip'd VPC flow log of `--size-mb` uncompressed MB (default 2048) on disk without holding it in
memory, uploads it to the AWS emulator (moto server) with an S3 -> SQS notification, runs `sluice run` as its
own process against a `_bulk` stub (bench/bulk_stub.py: the worker, not the engine, is measured), samples
the worker's RSS while it works, and prints: lines, MB/s, and the worker's peak RSS (VmHWM).

    .venv/bin/python bench/stream_memory.py                 # 2 GB
    .venv/bin/python bench/stream_memory.py --size-mb 256   # a quicker look
"""

from __future__ import annotations

import argparse
import gzip
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from worker.local_servers import MotoServer, free_port  # noqa: E402
from worker.samples import ACCOUNT, REGION, vpc_flow_lines  # noqa: E402

MB = 1 << 20


def proc_status(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return 0


def generate(path: Path, size: int) -> tuple[int, int]:
    """Write VPC flow lines until `size` uncompressed bytes; returns (bytes, lines without the header)."""
    written = lines = 0
    seed = 0
    with gzip.open(path, "wb", compresslevel=1) as out:
        while written < size:
            block = "\n".join(vpc_flow_lines(20000, seed=seed)) + "\n"
            if seed:  # keep one header line, as S3 delivery writes
                block = block.split("\n", 1)[1]
            data = block.encode()
            out.write(data)
            written += len(data)
            lines += 20000
            seed += 1
    return written, lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-mb", type=int, default=2048)
    args = ap.parse_args()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": REGION, "PYTHONPATH": str(ROOT)}
    os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")})
    with tempfile.TemporaryDirectory() as tmp:
        obj = Path(tmp) / "big.log.gz"
        t0 = time.monotonic()
        raw_bytes, lines = generate(obj, args.size_mb * MB)
        print(f"generated {raw_bytes / MB:,.0f} MB uncompressed ({obj.stat().st_size / MB:,.0f} MB gzip), "
              f"{lines:,} lines in {time.monotonic() - t0:.0f} s", flush=True)
        stub_port = free_port()
        stub = subprocess.Popen([sys.executable, str(ROOT / "bench" / "bulk_stub.py"), "--port", str(stub_port)],
                                stdout=subprocess.DEVNULL, env=env)
        with MotoServer(log_dir=Path(tmp) / "moto") as moto:
            s3 = boto3.client("s3", endpoint_url=moto.endpoint_url, region_name=REGION)
            sqs = boto3.client("sqs", endpoint_url=moto.endpoint_url, region_name=REGION)
            for b in ("bench-logs", "bench-backup"):
                s3.create_bucket(Bucket=b)
            q = sqs.create_queue(QueueName="bench")["QueueUrl"]
            replay = sqs.create_queue(QueueName="bench-replay")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            s3.put_bucket_notification_configuration(Bucket="bench-logs", NotificationConfiguration={
                "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
            key = f"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/2026/11/22/{ACCOUNT}_vpcflowlogs_{REGION}_fl-big.log.gz"
            # One PUT, not a multipart upload: moto notifies a multipart object twice (Put and Complete).
            from boto3.s3.transfer import TransferConfig

            s3.upload_file(str(obj), "bench-logs", key, Config=TransferConfig(multipart_threshold=8 << 30))
            cfg = {
                "aws": {"region": REGION, "endpoint_url": moto.endpoint_url},
                "opensearch": {"hosts": [f"http://127.0.0.1:{stub_port}"]},
                "dead_letters": {"bucket": "bench-backup", "replay_queue_url": replay},
                "sources": {"bench": {"type": "sqs_s3", "queue_url": q, "wait_time": 1}},
                "telemetry": {"metrics_port": 0, "log_level": "warning"},
            }
            cfg_path = Path(tmp) / "sluice.yaml"
            cfg_path.write_text(yaml.safe_dump(cfg))
            worker = subprocess.Popen([sys.executable, "-m", "worker", "run", "--config", str(cfg_path)], env=env)
            started = time.monotonic()
            samples: list[int] = []
            try:
                import urllib.request

                def stub_items() -> int:
                    with urllib.request.urlopen(f"http://127.0.0.1:{stub_port}/_stub/stats") as r:
                        return int(yaml.safe_load(r.read())["items"])

                last = 0.0
                while True:
                    time.sleep(1.0)
                    rss = proc_status(worker.pid, "VmRSS")
                    samples.append(rss)
                    done = stub_items()
                    if time.monotonic() - last > 10:
                        last = time.monotonic()
                        el = time.monotonic() - started
                        print(f"  {el:6.0f} s  {done:>12,} of {lines:,} documents  RSS {rss / MB:6.1f} MB", flush=True)
                    attrs = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=[
                        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
                    if done >= lines and sum(int(v) for v in attrs.values()) == 0:
                        break
                    if worker.poll() is not None:
                        raise SystemExit(f"worker exited early with {worker.returncode}")
                elapsed = time.monotonic() - started
                peak = proc_status(worker.pid, "VmHWM")
            finally:
                worker.terminate()
                worker.wait(60)
                stub.terminate()
                stub.wait(10)
    print(f"\nobject: {raw_bytes / MB:,.0f} MB uncompressed, {lines:,} lines")
    print(f"worker: {elapsed:.0f} s, {raw_bytes / MB / elapsed:.1f} MB/s, {lines / elapsed:,.0f} lines/s "
          f"(interpreter {sys.executable}, {sys.version.split()[0]})")
    median = sorted(samples)[len(samples) // 2]
    print(f"worker RSS: peak {peak / MB:.1f} MB (VmHWM), median of samples {median / MB:.1f} MB")
    print("PASS: peak RSS under 300 MB" if peak < 300 * MB else "FAIL: peak RSS over 300 MB")
    return 0 if peak < 300 * MB else 1


if __name__ == "__main__":
    sys.exit(main())
