"""`sluice bench`: the worker end to end against local servers, next to an in-run reference ceiling.

Phases, per run: the reference loop and Sluice's parse-only pass in this process, then per log type a fresh
`sluice run` process against moto (S3 + SQS; or the in-memory AWS stub with `--aws stub`) and the bulk stub,
with that type's objects already uploaded and their notifications waiting on the queue; then the small-objects
phase (many ~20 KB objects through one worker against the AWS stub: the per-object cost). The clock starts
when the worker says it is ready (`/readyz`), so interpreter start-up is not counted, and stops at the stub's
receive time of the last expected document.
Last, once: a low-load latency phase (small objects uploaded one at a time, a few a second).

The worker runs as its own process because that is what is deployed and because its CPU time and peak RSS
can then be read from /proc without counting the benchmark's own work.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from worker.bench import BENCH_TYPES, parquet_only, parse_only, reference
from worker.bench.objects import BenchObject, file_objects, generate, make_object
from worker.bench.profile import Profiler
from worker.bench.profile import render as render_profile
from worker.bench.report import MB, environment, medians, percentile, render
from worker.samples import REGION

DUMMY_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
             "AWS_EC2_METADATA_DISABLED": "true"}
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class BenchError(RuntimeError):
    """The benchmark could not measure (a server or the worker failed); the message says where to look."""


# --- progress on stderr ---------------------------------------------------------------------------------------


class Progress:
    """Lines on stderr for the long phases; `every` lets a loop report at most once per `interval` seconds."""

    def __init__(self, quiet: bool = False, interval: float = 3.0) -> None:
        self.quiet = quiet
        self.interval = interval
        self.started = time.monotonic()
        self._last: dict[str, float] = {}

    def say(self, message: str) -> None:
        if not self.quiet:
            print(f"[bench {time.monotonic() - self.started:6.0f} s] {message}", file=sys.stderr, flush=True)

    def every(self, topic: str, message: str) -> None:
        now = time.monotonic()
        if now - self._last.get(topic, 0.0) >= self.interval:
            self._last[topic] = now
            self.say(message)


# --- /proc --------------------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (its threads included, its children not); 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def status_bytes(pid: int, name: str) -> int:
    """A `kB` field of /proc/<pid>/status (VmHWM, VmRSS) in bytes; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants (a `sluice run --processes N` supervisor and its workers)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as f:
                    todo.extend(int(child) for child in f.read().split())
        except OSError:
            continue
    return out


# --- small HTTP helpers -------------------------------------------------------------------------------------


def _http(url: str, method: str = "GET", timeout: float = 10.0) -> Any:
    req = urllib.request.Request(url, data=b"" if method == "POST" else None, method=method)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def _start_server(module: str, log_path: Path, what: str) -> tuple[subprocess.Popen[bytes], str]:
    """Start `python -m <module> --port 0` and read the URL from its JSON ready line."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", module, "--port", "0"], stdout=subprocess.PIPE, stderr=log,
                                stdin=subprocess.DEVNULL, env=_child_env())
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        raise BenchError(f"{what} did not start; see {log_path}")
    return proc, str(json.loads(line)["url"]).rstrip("/")


def _stop_server(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None:
        return
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


class Stub:
    """Talks to a bulk stub (`worker.bench.stub`), started here unless a URL is given."""

    def __init__(self, url: str | None, log_dir: Path) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        if url is None:
            self.proc, url = _start_server("worker.bench.stub", log_dir / "stub.log", "the bulk stub")
        self.url = url.rstrip("/")
        try:
            self.stats()
        except (OSError, ValueError) as exc:
            raise BenchError(f"{self.url} does not answer /_stub/stats ({exc}); --bulk-url must be a stub started "
                             "with `python -m worker.bench.stub`") from None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = _http(f"{self.url}/_stub/stats")
        return result

    def reset(self) -> None:
        _http(f"{self.url}/_stub/reset", "POST")

    def track(self, on: bool) -> None:
        _http(f"{self.url}/_stub/track?on={int(on)}", "POST")

    def prefixes(self) -> dict[str, list[float]]:
        result: dict[str, list[float]] = _http(f"{self.url}/_stub/prefixes")
        return result

    def close(self) -> None:
        _stop_server(self.proc)


class AwsStubServer:
    """The in-memory S3 + SQS server (`worker.bench.aws_stub`), started and stopped here by its pid."""

    def __init__(self, log_dir: Path) -> None:
        self.proc, self.url = _start_server("worker.bench.aws_stub", log_dir / "aws_stub.log", "the AWS stub")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def requests(self) -> dict[str, int]:
        """Requests answered so far, per operation."""
        result: dict[str, int] = _http(f"{self.url}/_stub/stats")["requests"]
        return result

    def close(self) -> None:
        _stop_server(self.proc)


def _child_env() -> dict[str, str]:
    """The environment of processes started here: dummy AWS credentials unless set, and this checkout first on
    the import path (so a checkout that is not installed runs too)."""
    env = dict(os.environ)
    for key, value in DUMMY_ENV.items():
        env.setdefault(key, value)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


# --- AWS side -----------------------------------------------------------------------------------------------


@dataclass
class Aws:
    """Bucket, queues and notification on an AWS endpoint (moto server or the AWS stub)."""

    endpoint: str
    s3: Any
    sqs: Any
    bucket: str
    backup: str
    queue_url: str
    replay_url: str
    etags: dict[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, endpoint: str, suffix: str) -> Aws:
        import botocore.session
        from botocore.config import Config

        session = botocore.session.get_session()
        creds = {k.lower(): os.environ.get(k, DUMMY_ENV[k]) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        cfg = Config(retries={"max_attempts": 3}, max_pool_connections=4)
        s3 = session.create_client("s3", region_name=REGION, endpoint_url=endpoint, config=cfg, **creds)
        sqs = session.create_client("sqs", region_name=REGION, endpoint_url=endpoint, config=cfg, **creds)
        bucket, backup = f"sluice-bench-logs{suffix}", f"sluice-bench-backup{suffix}"
        for name in (bucket, backup):
            with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
                s3.create_bucket(Bucket=name)
        queue_url = sqs.create_queue(QueueName=f"sluice-bench{suffix}",
                                     Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
        replay_url = sqs.create_queue(QueueName=f"sluice-bench-replay{suffix}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
            "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
        aws = cls(endpoint, s3, sqs, bucket, backup, queue_url, replay_url)
        aws.drain()  # the s3:TestEvent that configuring a notification sends
        return aws

    def depth(self) -> int:
        """Messages on the queue, visible or in flight."""
        attrs = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return sum(int(v) for v in attrs.values())

    def drain(self) -> int:
        """Delete whatever is on the queue (nothing may be left for the next phase's worker)."""
        dropped = 0
        while True:
            msgs = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                            WaitTimeSeconds=0).get("Messages", [])
            if not msgs:
                return dropped
            for msg in msgs:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=msg["ReceiptHandle"])
            dropped += len(msgs)

    def put(self, obj: BenchObject) -> str:
        """Upload with one PUT (a multipart upload is notified twice by moto); returns the ETag, unquoted."""
        etag = str(self.s3.put_object(Bucket=self.bucket, Key=obj.key, Body=obj.body)["ETag"]).strip('"')
        self.etags[obj.key] = etag
        return etag

    def wait_depth(self, expected: int, timeout: float = 60.0, at_most: bool = False) -> None:
        """Until the queue holds at least `expected` messages (or, `at_most`, no more than that)."""
        deadline = time.monotonic() + timeout
        while True:
            have = self.depth()
            if (have <= expected) if at_most else (have >= expected):
                return
            if time.monotonic() > deadline:
                raise BenchError(f"the queue holds {have} messages, not {expected}, after {timeout:.0f} s")
            time.sleep(0.1)

    def capture(self, objects: list[BenchObject], progress: Progress, label: str) -> list[str]:
        """Upload `objects` and take the notifications S3 sent for them off the queue, to be put back (`send`)
        when the clock starts: the timed phase then holds no upload, and later runs need none."""
        self.drain()
        for i, obj in enumerate(objects, 1):
            self.put(obj)
            progress.every("upload", f"{label}: uploading {i}/{len(objects)} objects")
        self.wait_depth(len(objects))
        bodies: list[str] = []
        while len(bodies) < len(objects):
            msgs = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                            WaitTimeSeconds=1).get("Messages", [])
            for msg in msgs:
                bodies.append(msg["Body"])
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=msg["ReceiptHandle"])
        return bodies

    def send(self, bodies: list[str]) -> None:
        for start in range(0, len(bodies), 10):
            self.sqs.send_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[start : start + 10])])


# --- the worker process ---------------------------------------------------------------------------------------


class WorkerProcess:
    """`python -m worker run --config ...` with its output in a log file, stopped by its pid."""

    def __init__(self, cfg: dict[str, Any], work_dir: Path, name: str, processes: int = 1) -> None:
        from worker.local_servers import free_port

        self.metrics_port = free_port()
        cfg = {**cfg, "telemetry": {**cfg["telemetry"], "metrics_port": self.metrics_port}}
        self.cfg_path = work_dir / f"{name}.yaml"
        self.cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        self.log_path = work_dir / f"{name}.log"
        self._log: IO[bytes] = self.log_path.open("wb")
        extra = ["--processes", str(processes)] if processes > 1 else []
        self.proc = subprocess.Popen([sys.executable, "-m", "worker", "run", "--config", str(self.cfg_path), *extra],
                                     stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=_child_env())

    @property
    def pid(self) -> int:
        return self.proc.pid

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise BenchError(f"the worker exited with code {self.proc.returncode}; its log "
                             f"({self.log_path}) ends with:\n{self.log_tail()}")

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Block until `/readyz` answers 200; returns the wall time (time.time()) it did."""
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.metrics_port}/readyz"
        while time.monotonic() < deadline:
            self.check()
            try:
                with urllib.request.urlopen(url, timeout=1) as resp:
                    if resp.status == 200:
                        return time.time()
            except (OSError, urllib.error.HTTPError):
                pass
            time.sleep(0.01)
        raise BenchError(f"the worker was not ready within {timeout:.0f} s; log {self.log_path}")

    def cpu(self) -> float:
        """CPU seconds of the worker and, with --processes, of every worker process under it."""
        return sum(self.cpu_by_process().values())

    def cpu_by_process(self) -> dict[int, float]:
        """CPU seconds per process of the worker (the supervisor and each worker with --processes)."""
        return {pid: cpu_seconds(pid) for pid in process_tree(self.pid)}

    def peak_rss(self) -> int:
        """The highest peak RSS of one process of the worker (the per-process figure the targets are about)."""
        return max(status_bytes(pid, "VmHWM") for pid in process_tree(self.pid))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


WAIT_TIME = 1
"""SQS long-poll seconds of the benchmark's worker. A stopping worker lets its pending long poll end (so that
no message is received by nobody), which with the default 20 s made every phase 20 s longer. moto and the AWS
stub answer a long poll as soon as a message arrives, so neither throughput nor latency depends on it."""


def worker_config(aws: Aws, bulk_url: str, compress: bool, overrides: list[str] | None = None) -> dict[str, Any]:
    """The worker's settings: defaults, except the endpoints, quiet logs, a short long poll (`WAIT_TIME`) and no
    template installation (the stub is no cluster; templates are a start-up cost, before the clock starts);
    then `overrides` (`--worker-config`), so that a setting's effect can be measured."""
    cfg: dict[str, Any] = {
        "aws": {"region": REGION, "endpoint_url": aws.endpoint},
        "opensearch": {"hosts": [bulk_url], "install_templates": False, "bulk": {"compress": compress}},
        "dead_letters": {"bucket": aws.backup, "replay_queue_url": aws.replay_url},
        "sources": {"bench": {"type": "sqs_s3", "queue_url": aws.queue_url, "wait_time": WAIT_TIME}},
        "telemetry": {"metrics_host": "127.0.0.1", "log_level": "warning", "log_format": "json"},
    }
    for item in overrides or []:
        apply_override(cfg, item)
    return cfg


def apply_override(cfg: dict[str, Any], item: str) -> None:
    """`a.b.c=VALUE` into a nested config dict; VALUE is YAML (`2`, `true`, `[x, y]`). The worker validates the
    result when it starts, so a misspelt key fails the phase with the worker's own message."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise BenchError(f"--worker-config {item!r}: expected KEY=VALUE, e.g. sources.bench.max_in_flight=2")
    *path, last = key.strip().split(".")
    node = cfg
    for part in path:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise BenchError(f"--worker-config {item!r}: {part} is not a section")
        node = child
    node[last] = yaml.safe_load(raw)


# --- options --------------------------------------------------------------------------------------------------


@dataclass
class Options:
    types: list[str]
    mb: float
    object_mb: float
    runs: int = 1
    files: list[str] = field(default_factory=list)
    aws_endpoint: str | None = None
    bulk_url: str | None = None
    latency_objects: int = 10
    latency_rate: float = 4.0
    latency_kb: float = 64.0
    compress: bool = True
    seed: int = 1
    timeout: float = 900.0
    json_path: str | None = None
    min_ratio: float | None = None
    quiet: bool = False
    profile_dir: str | None = None
    scaling: int = 0
    aws: str = "moto"
    """What serves S3 and SQS to the throughput phases: `moto` server or the in-memory `stub` (aws_stub)."""
    small_objects: int = 1000
    small_kb: float = 20.0
    small_type: str = "alb"
    worker_overrides: list[str] = field(default_factory=list)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        quick = bool(args.quick)
        return cls(
            types=list(args.types or BENCH_TYPES),
            mb=args.mb if args.mb is not None else (8.0 if quick else 64.0),
            object_mb=args.object_mb if args.object_mb is not None else (2.0 if quick else 8.0),
            runs=max(1, args.runs),
            files=list(args.files or []),
            aws_endpoint=args.aws_endpoint,
            bulk_url=args.bulk_url,
            latency_objects=(args.latency_objects if args.latency_objects is not None else (4 if quick else 10)),
            latency_rate=args.latency_rate,
            latency_kb=args.latency_kb,
            compress=not args.no_compress,
            seed=args.seed,
            timeout=args.timeout,
            json_path=args.json,
            min_ratio=args.min_ratio,
            quiet=args.quiet,
            profile_dir=getattr(args, "profile", None),
            scaling=getattr(args, "scaling", 0) or 0,
            aws=getattr(args, "aws", None) or "moto",
            small_objects=max(0, args.small_objects if getattr(args, "small_objects", None) is not None
                              else (200 if quick else 1000)),
            small_kb=getattr(args, "small_kb", None) or 20.0,
            small_type=getattr(args, "small_type", None) or "alb",
            worker_overrides=list(getattr(args, "worker_config", None) or []),
        )


# --- phases ---------------------------------------------------------------------------------------------------


PARQUET_DOCUMENTS = 30_000
"""Documents of a type's first object the Parquet sink is measured on (alone, in this process, S3 in memory)."""


def in_process(log_type: str, objects: list[BenchObject], decoded: list[bytes], compress: bool) -> dict[str, Any]:
    """One run of the reference loop and of Sluice's parse-only pass over a type's objects."""
    ref = reference.run(log_type, [(o.key, o.body) for o in objects], compress=compress)
    parsed = parse_only.run(log_type, [(o.key, d) for o, d in zip(objects, decoded, strict=True)])
    docs, used = parse_only.documents(log_type, objects[0].key, decoded[0], PARQUET_DOCUMENTS)
    _, pq_cpu, pq_rows, pq_bytes = parquet_only.run(log_type, docs)
    del docs
    return {
        "parquet_mb_s_core": used / MB / pq_cpu,
        "parquet_rows_s_core": pq_rows / pq_cpu,
        "parquet_bytes_per_row": pq_bytes / max(1, pq_rows),
        "reference_mb_s": ref.raw_bytes / MB / ref.seconds,
        "reference_cpu_s_per_gb": ref.cpu_seconds / (ref.raw_bytes / 1e9),
        "reference_documents": ref.documents,
        "reference_failures": ref.failures,
        "reference_bodies": ref.bodies,
        "reference_sent_mb": ref.sent_bytes / MB,
        "parse_mb_s": parsed.raw_bytes / MB / parsed.seconds,
        "parse_cpu_s_per_gb": parsed.cpu_seconds / (parsed.raw_bytes / 1e9),
        "parse_documents": parsed.documents,
        "parse_failures": parsed.failures,
    }


def _wait_items(stub: Stub, worker: WorkerProcess, expected: int, timeout: float, progress: Progress | None = None,
                label: str = "", t0: float = 0.0) -> dict[str, Any]:
    """Poll the stub until it holds `expected` items; returns its last stats."""
    deadline = time.monotonic() + timeout
    while True:
        time.sleep(0.1)
        stats = stub.stats()
        items = int(stats["items"])
        if items >= expected:
            return stats
        worker.check()
        if time.monotonic() > deadline:
            raise BenchError(f"{label}: {items} of {expected} documents after {timeout:.0f} s")
        if progress is not None:
            progress.every("e2e", f"{label}: {items / expected:6.1%} ({items:,} of {expected:,} documents), "
                                  f"{time.time() - t0:.0f} s")


def end_to_end(log_type: str, objects: list[BenchObject], notifications: list[str], expected: int, aws: Aws,
               stub: Stub, cfg: dict[str, Any], work_dir: Path, progress: Progress, label: str, timeout: float,
               others: dict[str, int | None], profile: Path | None = None, processes: int = 1) -> dict[str, Any]:
    """One worker process over one type's objects.

    The worker first ingests one small object of the type (so its AWS clients, connections and parser exist,
    as in a worker that has been running for a while); then the objects' notifications go onto the queue at
    once and the clock runs until the stub holds their last document.
    """
    raw = sum(o.raw_size for o in objects)
    aws.drain()
    worker = WorkerProcess(cfg, work_dir, f"worker-{log_type}", processes)
    try:
        worker.wait_ready()
        warm = make_object(log_type, 20_000, 8_000_000 + BENCH_TYPES.index(log_type))
        stub.reset()
        aws.put(warm)
        _wait_items(stub, worker, warm.records, 120, label=f"{label} warm-up")
        aws.wait_depth(0, timeout=60, at_most=True)
        stub.reset()
        cpu0 = worker.cpu_by_process()
        other0 = {name: cpu_seconds(pid) for name, pid in others.items() if pid}
        progress.say(f"{label}: worker {worker.pid} warmed up; queueing {len(objects)} objects ({raw / MB:,.0f} MB)")
        t0 = time.time()
        with Profiler(worker.pid, profile) if profile is not None else contextlib.nullcontext():
            aws.send(notifications)
            stats = _wait_items(stub, worker, expected, timeout, progress, label, t0)
        cpu1 = worker.cpu_by_process()
        cpu = sum(cpu1.values()) - sum(cpu0.values())
        other = {name: cpu_seconds(pid) - other0[name] for name, pid in others.items() if pid}
        peak = worker.peak_rss()
        seconds = float(stats["last_at"]) - t0
        first = float(stats["first_at"]) - t0
        aws.wait_depth(0, timeout=60, at_most=True)  # every message deleted: nothing left for the next worker
    finally:
        worker.stop()
    return {
        "mb_s": raw / MB / seconds,
        "docs_s": expected / seconds,
        "objects_s": len(objects) / seconds,
        "seconds": seconds,
        "first_document_s": first,
        "cpu_seconds": cpu,
        "cpu_s_per_gb": cpu / (raw / 1e9),
        "cpu_use": cpu / seconds,
        "peak_rss_mb": peak / MB,
        "received": int(stats["items"]),
        **{f"{name}_cpu_use": value / seconds for name, value in other.items()},
        **({"cpu_use_per_process": sorted((round((c - cpu0.get(pid, 0.0)) / seconds, 2)
                                           for pid, c in cpu1.items() if pid != worker.pid), reverse=True)}
           if processes > 1 else {}),
    }


def latency(types: list[str], aws: Aws, stub: Stub, cfg: dict[str, Any], work_dir: Path, opts: Options,
            progress: Progress) -> dict[str, list[float]]:
    """Seconds from each small object's upload to the stub holding all its documents, per type."""
    from worker.bench.reference import id_prefix

    per_type = opts.latency_objects
    objects = [make_object(t, int(opts.latency_kb * 1000), 7_000_000 + opts.seed * 1000 + i * 10 + j)
               for i in range(per_type) for j, t in enumerate(types)]
    aws.drain()
    stub.reset()
    stub.track(True)
    worker = WorkerProcess(cfg, work_dir, "worker-latency")
    pending: dict[str, tuple[str, float, int]] = {}
    out: dict[str, list[float]] = {t: [] for t in types}
    try:
        worker.wait_ready()
        progress.say(f"latency: {len(objects)} objects of ~{opts.latency_kb:.0f} KB, {opts.latency_rate:g}/s")
        # Random gaps (mean 1/rate): at a fixed pace, each type's uploads would fall at the same point of the
        # sink's periodic flush every time, and its latency would be that phase rather than a sample of it.
        rng = random.Random(opts.seed)
        next_at = time.monotonic()
        for i, obj in enumerate(objects, 1):
            next_at += rng.uniform(0.2, 1.8) / opts.latency_rate
            etag = aws.put(obj)
            pending[id_prefix(aws.bucket, obj.key, f"etag:{etag}")] = (obj.log_type, time.time(), obj.records)
            worker.check()
            progress.every("latency", f"latency: uploaded {i}/{len(objects)}")
            time.sleep(max(0.0, next_at - time.monotonic()))
        deadline = time.monotonic() + 120
        while pending:
            seen = stub.prefixes()
            for prefix, (log_type, uploaded, records) in list(pending.items()):
                got = seen.get(prefix)
                if got is not None and got[0] >= records:
                    out[log_type].append(got[1] - uploaded)
                    del pending[prefix]
            if not pending:
                break
            worker.check()
            if time.monotonic() > deadline:
                raise BenchError(f"latency: {len(pending)} objects still incomplete after 120 s")
            time.sleep(0.2)
    finally:
        worker.stop()
        stub.track(False)
    return out


# --- the command ----------------------------------------------------------------------------------------------


@dataclass
class Servers:
    """The local servers of one `sluice bench`: the S3/SQS endpoint of the throughput phases, the bulk stub, and
    whichever of moto and the AWS stub were started here (the AWS stub always serves the small-objects phase)."""

    endpoint: str
    stub: Stub
    moto: Any = None
    aws_stub: AwsStubServer | None = None

    def main_pids(self) -> dict[str, int | None]:
        """The servers whose CPU the throughput phases report."""
        main_stub = self.aws_stub is not None and self.endpoint == self.aws_stub.url
        return {"moto": self.moto.pid if self.moto is not None else None,
                "aws_stub": self.aws_stub.pid if main_stub and self.aws_stub is not None else None,
                "stub": self.stub.pid}


@contextlib.contextmanager
def _servers(opts: Options, work_dir: Path, progress: Progress) -> Iterator[Servers]:
    moto = None
    aws_stub = None
    stub = None
    try:
        endpoint = opts.aws_endpoint
        if endpoint is None and opts.aws == "moto":
            from worker.local_servers import MotoServer

            progress.say("starting moto server (S3 + SQS) ...")
            moto = MotoServer(log_dir=work_dir / "moto")
            endpoint = moto.endpoint_url
        if (endpoint is None and opts.aws == "stub") or opts.small_objects > 0:
            progress.say("starting the AWS stub (in-memory S3 + SQS) ...")
            aws_stub = AwsStubServer(work_dir)
            endpoint = endpoint or aws_stub.url
        assert endpoint is not None
        progress.say("starting the bulk stub ..." if opts.bulk_url is None else f"using the bulk stub {opts.bulk_url}")
        stub = Stub(opts.bulk_url, work_dir)
        yield Servers(endpoint, stub, moto, aws_stub)
    finally:
        if stub is not None:
            stub.close()
        if aws_stub is not None:
            aws_stub.close()
        if moto is not None:
            moto.close()


def scaling_in_flight(objects: int, processes: int, overrides: list[str]) -> int | None:
    """`max_in_flight` for the scaling phase, when the default would let one process take every object.

    A worker receives up to `max_in_flight` messages at once (10 by default), and the phase queues all of a type's
    objects together: with 8 objects and 2 processes the first process to poll receives all 8 and the second
    idles, which measures that, not scaling. Objects / (2 x processes) leaves work for every process on the first
    round (8 objects, 2 processes: 2). None when the default allows that already or `--worker-config` sets it.
    """
    from worker.config import SqsS3Source

    if any(item.partition("=")[0].strip() == "sources.bench.max_in_flight" for item in overrides):
        return None
    default = int(SqsS3Source.model_fields["max_in_flight"].default)
    spread = max(1, objects // (2 * processes))
    return spread if spread < default else None


def small_inputs(opts: Options) -> list[BenchObject]:
    """The small-objects phase's objects: seeds of their own, so their keys never meet the throughput phases'."""
    size = int(opts.small_kb * 1000)
    return [make_object(opts.small_type, size, 50_000_000 + opts.seed * 100_000 + i) for i in range(opts.small_objects)]


def small_objects(objects: list[BenchObject], notifications: list[str], aws: Aws, servers: Servers,
                  cfg: dict[str, Any], work_dir: Path, progress: Progress, label: str,
                  timeout: float, profile: Path | None = None) -> dict[str, Any]:
    """Many small objects through one worker process against the AWS stub: the per-object cost (SQS receive,
    GetObject, delete, acknowledgement) rather than the per-byte one. Adds CPU milliseconds per object and the
    AWS requests the worker made per object to `end_to_end`'s figures."""
    assert servers.aws_stub is not None
    log_type = objects[0].log_type
    expected = sum(o.records for o in objects)
    others: dict[str, int | None] = {"aws_stub": servers.aws_stub.pid, "stub": servers.stub.pid}
    before = servers.aws_stub.requests()
    row = end_to_end(log_type, objects, notifications, expected, aws, servers.stub, cfg, work_dir, progress, label,
                     timeout, others, profile)
    after = servers.aws_stub.requests()
    n = len(objects)
    row["cpu_ms_per_object"] = row["cpu_seconds"] * 1000 / n
    # Requests per object, by operation: the batching actually achieved. The few calls around the timed part
    # (the warm-up object, the bench's drain) are included; with 1,000 objects they are under 1 %.
    for op in ("ReceiveMessage", "GetObject", "DeleteMessageBatch", "DeleteMessage", "ChangeMessageVisibility",
               "ChangeMessageVisibilityBatch"):
        row[f"requests_{op}"] = (after.get(op, 0) - before.get(op, 0)) / n
    row["bulk_requests_per_object"] = int(servers.stub.stats()["requests"]) / n  # the stub was reset at the start
    return row


def _inputs(opts: Options, progress: Progress) -> dict[str, list[BenchObject]]:
    if opts.files:
        from worker.routing import sniff_log_type

        objects = file_objects(opts.files, parse_only.decompress,
                               lambda head: sniff_log_type(head.decode("utf-8", "replace")))
        by_type: dict[str, list[BenchObject]] = {}
        for obj in objects:
            by_type.setdefault(obj.log_type, []).append(obj)
        return by_type
    out: dict[str, list[BenchObject]] = {}
    for log_type in opts.types:
        def report(have: int, total: int, log_type: str = log_type) -> None:
            progress.every("generate", f"generating {log_type}: {have / MB:,.0f} of {total / MB:,.0f} MB")

        out[log_type] = generate(log_type, int(opts.mb * MB), int(opts.object_mb * MB), opts.seed, report)
        progress.say(f"generated {log_type}: {len(out[log_type])} objects, "
                     f"{sum(o.raw_size for o in out[log_type]) / MB:,.1f} MB "
                     f"({sum(len(o.body) for o in out[log_type]) / MB:,.1f} MB gzip)")
    return out


def run_bench(opts: Options) -> dict[str, Any]:
    """Every phase; returns the result document (what `--json` writes)."""
    from worker.app import tune_gc
    from worker.telemetry import configure_logging

    configure_logging("warning", "console")  # the in-process sinks log to stderr, never into the report
    if opts.profile_dir:
        if Profiler.available() is None:
            raise BenchError("--profile needs py-spy on the PATH (pip install py-spy)")
        Path(opts.profile_dir).mkdir(parents=True, exist_ok=True)

    progress = Progress(opts.quiet)
    env = environment()
    inputs = _inputs(opts, progress)
    types = list(inputs)
    # The worker's collector settings for the in-process phases too: both loops allocate like the worker does.
    tune_gc()
    decoded = {t: [parse_only.decompress(o.body) for o in objs] for t, objs in inputs.items()}
    runs: dict[str, list[dict[str, Any]]] = {t: [] for t in types}
    notes: list[str] = []
    lat: dict[str, list[float]] = {}
    scaling: dict[str, dict[str, Any]] = {}
    small: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sluice-bench-") as tmp, \
            _servers(opts, Path(tmp), progress) as servers:
        work_dir = Path(tmp)
        endpoint, stub = servers.endpoint, servers.stub
        aws = Aws.create(endpoint, "" if opts.aws_endpoint is None else f"-{os.getpid()}")
        cfg = worker_config(aws, stub.url, opts.compress, opts.worker_overrides)
        others = servers.main_pids()
        notifications = {t: aws.capture(inputs[t], progress, f"{t}") for t in types}
        if opts.small_objects > 0:
            assert servers.aws_stub is not None
            small_objs = small_inputs(opts)
            small_aws = Aws.create(servers.aws_stub.url, "-small")
            small_cfg = worker_config(small_aws, stub.url, opts.compress, opts.worker_overrides)
            small_notes = small_aws.capture(small_objs, progress, "small objects")
        for r in range(opts.runs):
            for log_type in types:
                objs = inputs[log_type]
                label = f"run {r + 1}/{opts.runs} {log_type}"
                progress.say(f"{label}: reference loop and parse-only pass in this process ...")
                row = in_process(log_type, objs, decoded[log_type], opts.compress)
                expected = int(row["parse_documents"])
                if row["reference_documents"] != expected:
                    notes.append(f"{log_type}: the reference made {row['reference_documents']} documents, Sluice's "
                                 f"parsers {expected}; the reference figures are for different work")
                profile = (Path(opts.profile_dir) / f"{log_type}-run{r + 1}.txt") if opts.profile_dir else None
                row.update(end_to_end(log_type, objs, notifications[log_type], expected, aws, stub, cfg, work_dir,
                                      progress, label, opts.timeout, others, profile))
                if profile is not None and profile.exists():
                    progress.say(render_profile(profile, top=20))
                runs[log_type].append(row)
                progress.say(f"{label}: {row['mb_s']:.1f} MB/s end to end, reference {row['reference_mb_s']:.1f} "
                             f"MB/s, parse-only {row['parse_mb_s']:.1f} MB/s")
            if opts.small_objects > 0:
                label = f"run {r + 1}/{opts.runs} small objects"
                profile = (Path(opts.profile_dir) / f"small-objects-run{r + 1}.txt") if opts.profile_dir else None
                row = small_objects(small_objs, small_notes, small_aws, servers, small_cfg, work_dir, progress, label,
                                    opts.timeout, profile)
                if profile is not None and profile.exists():
                    progress.say(render_profile(profile, top=30))
                small.append(row)
                progress.say(f"{label}: {row['objects_s']:.0f} objects/s, {row['cpu_ms_per_object']:.2f} ms of worker "
                             f"CPU per object, AWS stub at {row.get('aws_stub_cpu_use', 0):.2f} of a core")
        for log_type in types if opts.scaling > 1 else []:
            label = f"scaling {log_type}"
            progress.say(f"{label}: `sluice run --processes {opts.scaling}` on the same objects ...")
            expected = int(runs[log_type][0]["parse_documents"])
            spread = scaling_in_flight(len(inputs[log_type]), opts.scaling, opts.worker_overrides)
            scaling_cfg = cfg if spread is None else worker_config(
                aws, stub.url, opts.compress, [*opts.worker_overrides, f"sources.bench.max_in_flight={spread}"])
            row = end_to_end(log_type, inputs[log_type], notifications[log_type], expected, aws, stub, scaling_cfg,
                             work_dir, progress, label, opts.timeout, others, processes=opts.scaling)
            if spread is not None:
                # The baseline then runs with the same max_in_flight: with few large objects in flight, one
                # process alone is faster too, and the ratio must be about the processes, not the setting.
                progress.say(f"{label}: one process with max_in_flight {spread}, the baseline ...")
                base = end_to_end(log_type, inputs[log_type], notifications[log_type], expected, aws, stub,
                                  scaling_cfg, work_dir, progress, f"{label} baseline", opts.timeout, others)
                row["max_in_flight"] = spread
                row["base_mb_s"] = base["mb_s"]
            scaling[log_type] = row
            progress.say(f"{label}: {row['mb_s']:.1f} MB/s with {opts.scaling} processes")
        if opts.latency_objects > 0:
            lat = latency(types, aws, stub, cfg, work_dir, opts, progress)
    summary: dict[str, dict[str, Any]] = {}
    for log_type in types:
        objs = inputs[log_type]
        med = medians(runs[log_type])
        row = {
            "objects": len(objs),
            "mb": sum(o.raw_size for o in objs) / MB,
            "gzip_mb": sum(len(o.body) for o in objs) / MB,
            "documents": int(med.get("parse_documents", 0)),
            **med,
        }
        row["ratio"] = row["mb_s"] / row["reference_mb_s"]
        row["cpu_ratio"] = row["reference_cpu_s_per_gb"] / row["cpu_s_per_gb"]
        if log_type in scaling:
            row["scaling_processes"] = opts.scaling
            row["scaling_mb_s"] = scaling[log_type]["mb_s"]
            row["scaling_base_mb_s"] = scaling[log_type].get("base_mb_s", row["mb_s"])
            row["scaling"] = scaling[log_type]["mb_s"] / row["scaling_base_mb_s"]
            row["scaling_vs_median"] = scaling[log_type]["mb_s"] / row["mb_s"]
            row["scaling_cpu_use"] = scaling[log_type]["cpu_use"]
            row["scaling_peak_rss_mb"] = scaling[log_type]["peak_rss_mb"]
            row["scaling_cpu_use_per_process"] = scaling[log_type].get("cpu_use_per_process", [])
            if "max_in_flight" in scaling[log_type]:
                row["scaling_max_in_flight"] = scaling[log_type]["max_in_flight"]
        samples = lat.get(log_type, [])
        if samples:
            row["latency_samples"] = len(samples)
            row["latency_p50_ms"] = (percentile(samples, 50) or 0) * 1000
            row["latency_p99_ms"] = (percentile(samples, 99) or 0) * 1000
        summary[log_type] = row
    if opts.files:
        notes.append("input: the given files; the latency phase uses generated objects of the same types")
    if any(others.values()):
        use = {k: v for k, v in medians([r for rs in runs.values() for r in rs]).items() if k.endswith("_cpu_use")}
        if use:
            notes.append("CPU used by the local servers while the worker ran (cores, median): " + ", ".join(
                f"{k.removesuffix('_cpu_use')} {v:.2f}" for k, v in sorted(use.items())))
    settings = {
        "types": types,
        "input": (f"{len(opts.files)} file(s)" if opts.files else
                  f"~{opts.mb:g} MB uncompressed in objects of ~{opts.object_mb:g} MB, generated (seed {opts.seed})"),
        "runs": opts.runs,
        "compress": opts.compress,
        "worker_overrides": opts.worker_overrides,
        "bulk_endpoint": (f"a stub ({stub.url}): accepts every item at once, no indexing; the worker, not the "
                          "engine, is measured"),
        "aws_endpoint": (endpoint if opts.aws_endpoint else
                         f"{'moto server' if opts.aws == 'moto' else 'the AWS stub (worker/bench/aws_stub.py)'} "
                         f"started here ({endpoint})"),
        "latency": (f"{opts.latency_objects} objects of ~{opts.latency_kb:g} KB per type, {opts.latency_rate:g} "
                    "uploads/s, one worker (bulk flush_interval 1 s, the default)"
                    if opts.latency_objects > 0 else "skipped"),
    }
    result = {"environment": env, "settings": settings, "summary": summary, "runs": runs,
              "latency_seconds": lat, "notes": notes, "load_average_end": environment()["load_average"]}
    if small:
        result["small_objects"] = {
            "log_type": opts.small_type, "objects": opts.small_objects, "kb": opts.small_kb,
            "raw_mb": sum(o.raw_size for o in small_objs) / MB, "documents": sum(o.records for o in small_objs),
            "aws": "the AWS stub (worker/bench/aws_stub.py)", **medians(small), "runs": small,
        }
    return result


def main(args: argparse.Namespace) -> int:
    """`sluice bench`: the table on stdout, progress on stderr; 0 unless `--min-ratio` is not met (1) or the
    benchmark could not measure (2)."""
    opts = Options.from_args(args)
    try:
        result = run_bench(opts)
    except BenchError as exc:
        print(f"sluice bench: {exc}", file=sys.stderr)
        return 2
    print(render(result), end="")
    if opts.json_path:
        Path(opts.json_path).write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
    if opts.min_ratio is not None:
        low = [t for t, row in result["summary"].items() if row["ratio"] < opts.min_ratio]
        if low:
            print(f"below --min-ratio {opts.min_ratio}: {', '.join(low)}", file=sys.stderr)
            return 1
    return 0
