"""`sluice run --processes 2` as a real process tree: shared work, one /metrics, clean stop, crash restart.

The supervisor runs with TMPDIR pointing into the test's folder, so the test can find the multiprocess
metrics directory it creates (`sluice-metrics-*`), read each child's files, and check that it is removed at exit.
The last tests drive the supervisor in-process with stand-in children (a shell script in place of the Python
interpreter), for what real workers do not do on demand: crash at start, ignore SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from tests.support import drained, index_counts, make_config, os_client, queue_depth
from worker.local_servers import free_port
from worker.samples import ACCOUNT, REGION, gzip_lines, vpc_flow_lines
from worker.supervisor import STOP_MARGIN, available_cpus, processes_arg

PROCESSES = 2
GRACE = 6.0
REPO = Path(__file__).parents[2]


# -- helpers -----------------------------------------------------------------------------------------------


def http_get(port: int, path: str) -> tuple[int, str]:
    """(status, body) of a GET on the supervisor's port; status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


@dataclass
class Supervised:
    """A running `sluice run --processes N` and the ways to look at it from outside."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    tmpdir: Path

    def get(self, path: str) -> tuple[int, str]:
        return http_get(self.port, path)

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        status, text = self.get("/metrics")
        assert status == 200, text
        return {(s.name, frozenset(s.labels.items())): s.value
                for fam in text_string_to_metric_families(text) for s in fam.samples}

    def metric(self, name: str, **labels: str) -> float:
        want = set(labels.items())
        return sum(v for (n, lab), v in self.metrics().items() if n == name and want <= lab)

    def ready_pids(self) -> set[int]:
        return {int(dict(lab)["pid"]) for (n, lab), v in self.metrics().items() if n == "sluice_ready" and v == 1}

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        """Log events of every process; a line where two processes' lines got mixed fails to parse."""
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{") or '"event": ' in line:
                event = json.loads(line)
                if name is None or event.get("event") == name:
                    out.append(event)
        return out

    def metrics_dir(self) -> Path:
        dirs = list(self.tmpdir.glob("sluice-metrics-*"))
        assert len(dirs) == 1, dirs
        return dirs[0]

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def wait_until(self, what: str, predicate: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            assert self.proc.poll() is None, f"supervisor exited {self.proc.returncode}:\n{self.tail()}"
            assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}:\n{self.tail()}"
            time.sleep(0.3)

    def wait_ready(self, timeout: float = 60) -> None:
        self.wait_until("/readyz", lambda: self.get("/readyz")[0] == 200, timeout)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(GRACE + STOP_MARGIN + 10)


def per_pid_counter(metrics_dir: Path, name: str) -> dict[int, float]:
    """A counter's value in each process's own file (counter_<pid>.db), before the supervisor merges them."""
    out: dict[int, float] = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = int(path.stem.split("_")[1])
        for fam in MultiProcessCollector.merge([str(path)]):
            out[pid] = out.get(pid, 0.0) + sum(s.value for s in fam.samples if s.name == name)
    return out


@pytest.fixture
def start(tmp_path: Path, aws_endpoint: str, opensearch_url: str, s3_queue: Any, backup: Any,
          unique_name: Any) -> Iterator[Callable[[], Supervised]]:
    """Starts the supervisor (once per test); whatever happens, it is stopped afterwards."""
    prefix = unique_name("sup")
    started: list[Supervised] = []

    def run() -> Supervised:
        port = free_port()
        cfg = make_config(
            aws_endpoint=aws_endpoint, opensearch_url=opensearch_url, queue_url=s3_queue.queue_url,
            backup_bucket=backup.bucket, replay_queue_url=backup.replay_queue_url, index_prefix=prefix,
            telemetry={"metrics_port": port, "metrics_host": "127.0.0.1"}, worker={"shutdown_grace": GRACE},
            # Few messages per child, so every child gets some; a short visibility, so what a killed child held
            # comes back soon.
            sources__logs__max_in_flight=2, sources__logs__visibility_timeout=10)
        cfg_file = tmp_path / "sluice.yaml"
        cfg_file.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
        tmpdir = tmp_path / "tmp"
        tmpdir.mkdir()
        log_path = tmp_path / "supervisor.log"
        env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmpdir)}
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "worker", "run", "--config", str(cfg_file), "--processes", str(PROCESSES)],
                stdout=log, stderr=subprocess.STDOUT, env=env)
        sup = Supervised(proc, port, log_path, tmpdir)
        started.append(sup)
        return sup

    run.prefix = prefix  # type: ignore[attr-defined]
    yield run
    for sup in started:
        if sup.proc.poll() is None:
            sup.proc.send_signal(signal.SIGTERM)
            try:
                sup.proc.wait(GRACE + STOP_MARGIN + 10)
            except subprocess.TimeoutExpired:
                sup.proc.kill()
                sup.proc.wait()


def upload(s3: Any, bucket: str, objects: int, lines: int, seed: int) -> None:
    for i in range(objects):
        key = (f"AWSLogs/{ACCOUNT}/vpcflowlogs/{REGION}/2026/11/22/"
               f"{ACCOUNT}_vpcflowlogs_{REGION}_fl-sup_20261122T0000Z_{seed}_{i:03d}.log.gz")
        s3.put_object(Bucket=bucket, Key=key, Body=gzip_lines(vpc_flow_lines(lines, seed=seed + i)))


# -- tests ---------------------------------------------------------------------------------------------------


def test_processes_argument() -> None:
    assert processes_arg("3") == 3
    assert processes_arg("1") == 1
    assert processes_arg("auto") == processes_arg("0") == available_cpus() >= 1
    for bad in ("-1", "two"):
        with pytest.raises(argparse.ArgumentTypeError):
            processes_arg(bad)


def test_two_processes_share_the_queue_and_one_metrics_endpoint(start: Any, boto: Any, s3_queue: Any,
                                                                 opensearch_url: str) -> None:
    objects, lines = 24, 50
    s3, sqs, client = boto.client("s3"), boto.client("sqs"), os_client(opensearch_url)
    sup = start()
    sup.wait_ready()
    assert sup.get("/healthz")[0] == 200
    children = {e["pid"] for e in sup.events("child_started")}
    assert len(children) == PROCESSES and sup.ready_pids() == children
    assert sup.metric("sluice_supervisor_children") == PROCESSES

    upload(s3, s3_queue.bucket, objects, lines, seed=500)
    is_drained = drained(sqs, s3_queue.queue_url)
    sup.wait_until("the queue drained and every line indexed",
                   lambda: is_drained() and sum(index_counts(client, start.prefix).values()) == objects * lines, 120)

    # Both children took part: each one's own file counts messages it received.
    received = per_pid_counter(sup.metrics_dir(), "sluice_sqs_messages_received_total")
    assert set(received) == children, (received, children)
    assert all(v > 0 for v in received.values()), received
    # The supervisor's /metrics is their sum.
    total = sup.metric("sluice_sqs_messages_received_total", source="logs")
    assert total == sum(received.values()) >= objects
    assert sup.metric("sluice_sqs_messages_deleted_total", source="logs") >= objects
    indexed = sup.metric("sluice_documents_indexed_total", log_type="vpc_flow")
    assert indexed >= objects * lines
    assert sup.metric("sluice_messages_in_flight", source="logs") == 0  # livesum of idle children
    assert sup.metric("sluice_supervisor_child_restarts_total") == 0
    child_lines = {e.get("child") for e in sup.events("s3_object_read")}
    assert child_lines == {0, 1}, child_lines  # children tag their log lines with their slot

    metrics_dir = sup.metrics_dir()
    t0 = time.monotonic()
    rc = sup.stop()
    took = time.monotonic() - t0
    assert rc == 0, sup.tail()
    assert took < GRACE + 2, f"took {took:.1f} s to stop"
    assert len([e for e in sup.events("worker_stopped") if "child" in e]) == PROCESSES
    assert sup.events("supervisor_stopped")[-1]["clean"] is True
    assert not metrics_dir.exists()
    assert queue_depth(sqs, s3_queue.queue_url) == 0
    assert sum(index_counts(client, start.prefix).values()) == objects * lines


def test_killed_child_is_restarted_and_the_work_completes(start: Any, boto: Any, s3_queue: Any,
                                                          opensearch_url: str) -> None:
    objects, lines = 30, 300
    s3, sqs, client = boto.client("s3"), boto.client("sqs"), os_client(opensearch_url)
    sup = start()
    sup.wait_ready()
    first = sup.ready_pids()
    upload(s3, s3_queue.bucket, objects, lines, seed=700)
    sup.wait_until("ingestion under way", lambda: sum(index_counts(client, start.prefix).values()) > 0, 60)

    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    sup.wait_until("a replacement child", lambda: sup.metric("sluice_supervisor_child_restarts_total") == 1, 30)
    sup.wait_ready(60)
    now = sup.ready_pids()
    assert victim not in now and len(now) == PROCESSES and len(now & first) == 1, (first, now)
    exited = sup.events("child_exited")
    assert [(e["pid"], e["returncode"]) for e in exited] == [(victim, -signal.SIGKILL)]

    # What the killed child held comes back after its visibility timeout (10 s) and is finished by the others.
    is_drained = drained(sqs, s3_queue.queue_url)
    sup.wait_until("the queue drained", is_drained, 150)
    assert sum(index_counts(client, start.prefix).values()) == objects * lines  # nothing lost, nothing doubled
    assert sup.get("/healthz")[0] == 200

    rc = sup.stop()
    assert rc == 0, sup.tail()
    assert sup.events("supervisor_stopped")[-1] == {**sup.events("supervisor_stopped")[-1], "clean": True,
                                                    "restarts": 1}


def _gone(pid: int) -> bool:
    """Exited (a zombie awaiting its new parent's wait counts as exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_children_stop_when_the_supervisor_is_killed(start: Any) -> None:
    sup = start()
    sup.wait_ready()
    children = sup.ready_pids()
    sup.proc.kill()
    sup.proc.wait()
    deadline = time.monotonic() + GRACE + 5
    while not all(_gone(pid) for pid in children):
        assert time.monotonic() < deadline, f"orphaned children still running: {children}"
        time.sleep(0.2)
    stopped = [e for e in sup.events("worker_stopped") if e.get("pid") in children]
    assert len(stopped) == PROCESSES, sup.tail()  # they drained (SIGTERM), not died


# -- the supervisor's own logic, with stand-in children (no servers) ------------------------------------------


def _fake_python(tmp_path: Path, body: str) -> str:
    """An executable that takes the place of the Python interpreter: the children run `body` instead."""
    path = tmp_path / "fake-python"
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)
    return str(path)


def _config(port: int = 0, grace: float = 1.0) -> Any:
    from worker.config import parse_config

    return parse_config({
        "opensearch": {"hosts": ["http://127.0.0.1:1"]},
        "dead_letters": {"bucket": "b", "replay_queue_url": "http://127.0.0.1:1/q"},
        "sources": {"logs": {"type": "sqs_s3", "queue_url": "http://127.0.0.1:1/q"}},
        "telemetry": {"metrics_port": port, "metrics_host": "127.0.0.1"},
        "worker": {"shutdown_grace": grace},
    })


async def _poll(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_crashing_child_is_restarted_with_backoff(tmp_path: Path) -> None:
    from worker.supervisor import Supervisor

    mark = tmp_path / "crashed-once"
    # Slot 0 crashes twice, then runs; slot 1 runs from the start. `exec sleep` dies of SIGTERM's default
    # action, as a real child does while it is still starting.
    python = _fake_python(tmp_path, f'if [ "$SLUICE_SUPERVISOR_CHILD" = 0 ] && [ ! -e {mark}.2 ]; then\n'
                                    f'  if [ -e {mark}.1 ]; then touch {mark}.2; else touch {mark}.1; fi; exit 3\n'
                                    f"fi\nexec sleep 60")
    port = free_port()
    sup = Supervisor(str(tmp_path / "unused.yaml"), _config(port), 2, python=python)
    for slot in sup.slots:
        slot.backoff = 0.2
    run = asyncio.create_task(sup.run())
    await _poll(lambda: sup.restarts == 2 and None not in sup.child_pids(), 10, "two restarts")
    assert sup.slots[0].backoff == pytest.approx(0.8)  # doubled after each crash
    status, _ = await asyncio.to_thread(http_get, port, "/healthz")
    assert status == 200
    status, text = await asyncio.to_thread(http_get, port, "/readyz")
    assert status == 503 and "not ready: [0, 1]" in text  # stand-ins never report sluice_ready 1
    metrics_dir = Path(sup.metrics_dir)
    sup.request_stop()
    assert await asyncio.wait_for(run, 10) == 0
    assert not await asyncio.to_thread(metrics_dir.exists)


async def test_straggler_is_killed_when_the_grace_is_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from worker import supervisor

    monkeypatch.setattr(supervisor, "STOP_MARGIN", 0.5)
    python = _fake_python(tmp_path, "trap '' TERM\nwhile :; do sleep 0.1; done")
    sup = supervisor.Supervisor(str(tmp_path / "unused.yaml"), _config(grace=0.5), 2, python=python)
    run = asyncio.create_task(sup.run())
    await _poll(lambda: None not in sup.child_pids(), 10, "children started")
    await asyncio.sleep(0.3)  # the shell has set its trap
    t0 = time.monotonic()
    sup.request_stop()
    assert await asyncio.wait_for(run, 10) == 1  # not clean: children had to be killed
    assert 0.9 <= time.monotonic() - t0 < 3
    assert sup.restarts == 0
