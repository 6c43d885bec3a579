"""Record a real worker's /metrics for the dashboard picture (tools/deploy/render_dashboard.py, docs/).

    .venv/bin/python tools/deploy/record_metrics.py [--seconds 75] [--out tools/deploy/metrics-recording.json]

What runs is the compose stack minus Docker: a moto server stands in for LocalStack and osmem-server for
OpenSearch (both from the `local` extra, started on free 127.0.0.1 ports and stopped by process id); the AWS
resources are made by the compose stack's own LocalStack init script (through an `awslocal` shim over the AWS
CLI, which must be on PATH); the worker is `sluice run` with deploy/compose/sluice.yaml (all four source types);
the load is deploy/compose/samples/upload_samples.py. /metrics is scraped every second; the `sluice_*` samples
are written as one value array per series (JSON, a few hundred KB at most).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from worker.local_servers import DUMMY_AWS_ENV, MotoServer, OsmemProcess, free_port

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"  # moto's (LocalStack's is 000000000000)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """One scrape: (sample name, sorted labels) -> value, for sluice_* samples."""
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name.startswith("sluice_") and not s.name.endswith("_created"):
                out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the worker exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url} not ready after {timeout} s")


def stop(proc: subprocess.Popen[bytes], timeout: float = 40) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=75.0, help="how long to scrape")
    parser.add_argument("--rounds", type=int, default=10, help="sample upload rounds (5 s apart)")
    parser.add_argument("--out", type=Path, default=REPO / "tools/deploy/metrics-recording.json")
    args = parser.parse_args(argv)
    if shutil.which("aws") is None:
        raise SystemExit("record_metrics needs the AWS CLI on PATH (it runs the LocalStack init script via awslocal)")

    with tempfile.TemporaryDirectory(prefix="sluice-record-") as tmp, \
            MotoServer(log_dir=Path(tmp)) as moto, OsmemProcess(log_dir=Path(tmp)) as osmem:
        aws = moto.endpoint_url
        shim = Path(tmp) / "bin"
        shim.mkdir()
        (shim / "awslocal").write_text(f'#!/bin/sh\nexec aws --endpoint-url "{aws}" "$@"\n')
        (shim / "awslocal").chmod(0o755)
        env = {**os.environ, **DUMMY_AWS_ENV, "PATH": f"{shim}:{os.environ['PATH']}", "ACCOUNT": ACCOUNT}
        env.pop("AWS_PROFILE", None)
        init = REPO / "deploy/compose/localstack-init/ready.d/10-sluice-resources.sh"
        subprocess.run(["bash", str(init)], env=env, check=True, timeout=120)

        port = free_port()
        queue = f"{aws}/{ACCOUNT}"
        worker_env = {**env, "SLUICE_AWS_ENDPOINT": aws, "OPENSEARCH_URL": osmem.url,
                      "SLUICE_QUEUE_URL": f"{queue}/sluice-notifications",
                      "SLUICE_APP_QUEUE_URL": f"{queue}/sluice-app-logs",
                      "SLUICE_REPLAY_QUEUE_URL": f"{queue}/sluice-replay",
                      "SLUICE_KINESIS_STREAM": "sluice-cloudwatch", "SLUICE_BACKUP_BUCKET": "sluice-backup",
                      "SLUICE_METRICS_PORT": str(port), "SLUICE_LOG_FORMAT": "json"}
        log = (Path(tmp) / "worker.log").open("wb")
        worker = subprocess.Popen([sys.executable, "-m", "worker", "run", "--config",
                                   str(REPO / "deploy/compose/sluice.yaml")], env=worker_env, stdout=log, stderr=log)
        uploader: subprocess.Popen[bytes] | None = None
        try:
            wait_ready(f"http://127.0.0.1:{port}/readyz", worker)
            uploader = subprocess.Popen(
                [sys.executable, str(REPO / "deploy/compose/samples/upload_samples.py")],
                env={**worker_env, "SAMPLE_ROUNDS": str(args.rounds), "SAMPLE_INTERVAL": "5",
                     "PYTHONPATH": str(REPO)})
            start, started_at = time.monotonic(), datetime.now(UTC)
            scrapes: list[tuple[float, dict[tuple[str, tuple[tuple[str, str], ...]], float]]] = []
            while (elapsed := time.monotonic() - start) < args.seconds:
                scrapes.append((round(elapsed, 2), scrape(f"http://127.0.0.1:{port}/metrics")))
                time.sleep(max(0.0, len(scrapes) - (time.monotonic() - start)))
        finally:
            if uploader is not None:
                stop(uploader, 10)
            stop(worker)
            log.close()
        print((Path(tmp) / "worker.log").read_text()[-2000:], file=sys.stderr)

    keys = sorted({key for _, values in scrapes for key in values})
    recording: dict[str, Any] = {
        "comment": "sluice_* samples scraped every second from `sluice run` with deploy/compose/sluice.yaml, fed "
                   "by deploy/compose/samples/upload_samples.py (moto server + osmem-server); "
                   "tools/deploy/record_metrics.py",
        "started": started_at.isoformat(timespec="seconds"),
        "timestamps": [t for t, _ in scrapes],
        "series": [{"name": name, "labels": dict(labels),
                    "values": [values.get((name, labels)) for _, values in scrapes]} for name, labels in keys],
    }
    args.out.write_text(json.dumps(recording, separators=(",", ":")) + "\n")
    print(f"{len(scrapes)} scrapes of {len(keys)} series -> {args.out} ({args.out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
