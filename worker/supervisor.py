"""`sluice run --processes N`: one supervisor process keeps N worker processes running behind one `/metrics`.

Why: a Python process parses on one core, so a container with more vCPUs needs more processes. Each child is a
complete single-process worker (its own event loop, sources, sink and dead letters); the sources are safe to run
side by side (SQS hands each message to one receiver; Kinesis leases are per worker id, and each child has its
own).

Children are subprocesses running `python -m worker run --config FILE` with `SLUICE_SUPERVISOR_CHILD` set, not
`multiprocessing` workers: their environment (PROMETHEUS_MULTIPROC_DIR above all) is in place before their
interpreter starts, so no import can create a metric in the wrong mode; a child runs exactly the code path of a
single-process worker, signals included; nothing is pickled; nothing of the supervisor's event loop is forked.

The supervisor forwards SIGTERM/SIGINT (as SIGTERM), gives the children `worker.shutdown_grace` plus
STOP_MARGIN seconds, SIGKILLs what is left, and exits 0 only if every child exited cleanly. A child that exits
on its own is restarted after a backoff (counted in `sluice_supervisor_child_restarts_total`).

Metrics use prometheus_client's multiprocess mode: children write their values to files in a fresh directory,
and the supervisor serves `/metrics` (their merged values plus its own), `/healthz` (every child alive) and
`/readyz` (every child reports `sluice_ready` 1: the gauge is kept per process, so it doubles as the readiness
channel) on `telemetry.metrics_port`. Children bind no port.

Only the standard library is imported at module level: `sluice` imports this module for every command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiohttp import web

    from worker.config import Config

CHILD_ENV = "SLUICE_SUPERVISOR_CHILD"
"""Set in a child's environment to its slot number (0..N-1): the process is a supervised child."""
PARENT_ENV = "SLUICE_SUPERVISOR_PID"
"""The supervisor's pid, so a child can tell whether its supervisor died before it could ask to follow it."""
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

STOP_MARGIN = 5.0
"""Seconds beyond `worker.shutdown_grace` before stragglers are killed. A child finishes its own drain about a
second before the grace ends, so this is only ever spent on a child that is stuck."""
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 30.0
"""Seconds before a crashed child is restarted: doubling from the first to the max while it keeps crashing."""
STABLE_AFTER = 60.0
"""A child that ran this long before it exited starts over at the first backoff: it was not a crash loop."""


# -- command line -------------------------------------------------------------------------------------------


def available_cpus() -> int:
    """CPUs this process may run on (a container's cpuset or `taskset`), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def processes_arg(text: str) -> int:
    """argparse type of `--processes`: a count >= 1, or `auto` / `0` for one per available CPU."""
    if text.strip().lower() in ("auto", "0"):
        return available_cpus()
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of processes or 'auto'") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{n}: the number of processes cannot be negative")
    return n


# -- the child side -------------------------------------------------------------------------------------------


def is_child() -> bool:
    """True in a process the supervisor started (which must then never supervise in turn)."""
    return CHILD_ENV in os.environ


def prepare_child(cfg: Config) -> Config:
    """Adapt a child's config and process before its worker starts.

    The child follows its supervisor (SIGTERM if the supervisor dies, so no orphan keeps consuming), serves no
    port (the supervisor serves one for all), names its Kinesis lease owner uniquely even when the config fixes
    a `worker_id` (children sharing one would read the same shards twice), and tags its log lines with its slot
    and pid.
    """
    import structlog

    from worker.config import KinesisSource

    slot = os.environ[CHILD_ENV]
    _follow_supervisor(int(os.environ.get(PARENT_ENV, "0")))
    whole_line_stderr()
    structlog.contextvars.bind_contextvars(child=int(slot), pid=os.getpid())
    sources = {
        name: scfg.model_copy(update={"worker_id": f"{scfg.worker_id}-{slot}"})
        if isinstance(scfg, KinesisSource) and scfg.worker_id else scfg
        for name, scfg in cfg.sources.items()
    }
    telemetry = cfg.telemetry.model_copy(update={"metrics_port": 0})
    return cfg.model_copy(update={"sources": sources, "telemetry": telemetry})


def _follow_supervisor(supervisor_pid: int) -> None:
    """Ask Linux for SIGTERM when the supervisor dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(pr_set_pdeathsig, int(signal.SIGTERM), 0, 0, 0)
    if supervisor_pid and os.getppid() != supervisor_pid:
        raise SystemExit("sluice: the supervisor exited before this worker started")


def whole_line_stderr() -> None:
    """Make each line written to stderr a single write(2), so lines of the N+1 processes sharing it do not mix.

    With PYTHONUNBUFFERED (the image sets it) stderr is unbuffered and `print`, which structlog uses, writes a
    line and its newline separately: another process's line can land in between, giving two JSON objects on one
    line. A line-buffered writer over a 64 KiB buffer writes each line whole (which a pipe keeps in one piece up
    to PIPE_BUF, 4 KiB; a file at any size). Call it before logging is configured: structlog keeps the stream.
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return
    raw = io.FileIO(fd, "w", closefd=False)
    sys.stderr = io.TextIOWrapper(io.BufferedWriter(raw, buffer_size=1 << 16), encoding=sys.stderr.encoding,
                                  errors="backslashreplace", line_buffering=True)


# -- the supervisor side ------------------------------------------------------------------------------------------


def run_supervisor(config_path: str, cfg: Config, processes: int) -> int:
    """Run N children until SIGTERM/SIGINT; 0 when every child exited cleanly, else 1."""
    # A multiproc dir inherited from the environment must not put the supervisor's own metric objects (created
    # when worker.telemetry is imported below) into files that would be merged with the children's.
    os.environ.pop(MULTIPROC_ENV, None)
    whole_line_stderr()
    from worker.telemetry import configure_logging

    configure_logging(cfg.telemetry.log_level, cfg.telemetry.log_format)
    return asyncio.run(Supervisor(config_path, cfg, processes).run())


@dataclass
class _Slot:
    """One of the N places a child runs in; a restarted child takes its predecessor's slot."""

    index: int
    proc: asyncio.subprocess.Process | None = None
    started: float = 0.0
    backoff: float = BACKOFF_FIRST


class Supervisor:
    """`await Supervisor(path, cfg, n).run()` starts n children and returns the exit code once they stopped.

    `python` is the interpreter the children run; tests put a stand-in there to drive crashes and stuck children.
    """

    def __init__(self, config_path: str, cfg: Config, processes: int, python: str = sys.executable) -> None:
        from worker.telemetry import get_logger

        self.log = get_logger("sluice.supervisor")
        self.config_path = os.path.abspath(config_path)
        self.cfg = cfg
        self.python = python
        self.slots = [_Slot(i) for i in range(processes)]
        self.metrics_dir = tempfile.mkdtemp(prefix="sluice-metrics-")
        self.stopping = asyncio.Event()
        self.stop_deadline = 0.0
        self.restarts = 0
        self.clean = True

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, sig)
        try:
            # Bind the port before starting anything: a port in use fails at once, not after N children started.
            http = await self._start_http()
            self.log.info("supervisor_started", processes=len(self.slots), metrics_dir=self.metrics_dir)
            try:
                async with asyncio.TaskGroup() as tg:
                    for slot in self.slots:
                        tg.create_task(self._keep_running(slot), name=f"child-{slot.index}")
            finally:
                if http is not None:
                    await http.cleanup()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
        self.log.info("supervisor_stopped", clean=self.clean, restarts=self.restarts)
        return 0 if self.clean else 1

    def request_stop(self, sig: int = signal.SIGTERM) -> None:
        """Begin the shutdown: every slot task forwards SIGTERM to its child and stops restarting it."""
        if self.stopping.is_set():
            return
        grace = self.cfg.worker.shutdown_grace + STOP_MARGIN
        self.stop_deadline = time.monotonic() + grace
        self.log.info("shutdown_requested", signal=signal.Signals(sig).name, grace=grace)
        self.stopping.set()

    async def _keep_running(self, slot: _Slot) -> None:
        """Run a child in this slot, restart it when it exits on its own, stop it when the supervisor stops."""
        try:
            while not self.stopping.is_set():
                proc = await self._spawn(slot)
                if proc is not None:
                    rc = await self._wait(slot, proc)
                    if self.stopping.is_set():
                        self._judge(slot, proc.pid, rc)
                        return
                    ran = time.monotonic() - slot.started
                    if ran >= STABLE_AFTER:
                        slot.backoff = BACKOFF_FIRST
                    self.log.error("child_exited", child=slot.index, pid=proc.pid, returncode=rc,
                                   ran=round(ran, 1), restart_in=slot.backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), slot.backoff)
                slot.backoff = min(BACKOFF_MAX, slot.backoff * 2)
                if not self.stopping.is_set():
                    self.restarts += 1
        finally:
            # Reached with a live child only if this task was cancelled (another slot failed unexpectedly).
            if slot.proc is not None and slot.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    slot.proc.kill()

    async def _spawn(self, slot: _Slot) -> asyncio.subprocess.Process | None:
        env = {**os.environ, CHILD_ENV: str(slot.index), PARENT_ENV: str(os.getpid()),
               MULTIPROC_ENV: self.metrics_dir}
        try:
            # Own session: a terminal's Ctrl-C reaches only the supervisor, which forwards it once, as SIGTERM.
            proc = await asyncio.create_subprocess_exec(
                self.python, "-m", "worker", "run", "--config", self.config_path,
                env=env, stdin=asyncio.subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            self.log.error("child_start_failed", child=slot.index, error=str(exc), restart_in=slot.backoff)
            return None
        slot.proc, slot.started = proc, time.monotonic()
        self.log.info("child_started", child=slot.index, pid=proc.pid)
        return proc

    async def _wait(self, slot: _Slot, proc: asyncio.subprocess.Process) -> int:
        """The child's exit code; if the supervisor stops meanwhile: SIGTERM, the grace, then SIGKILL."""
        exited = asyncio.ensure_future(proc.wait())
        stop = asyncio.ensure_future(self.stopping.wait())
        try:
            await asyncio.wait({exited, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not exited.done():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(exited), max(0.0, self.stop_deadline - time.monotonic()))
            except TimeoutError:
                self.log.error("child_killed", child=slot.index, pid=proc.pid, reason="grace period over")
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                self.clean = False
        rc = await exited
        slot.proc = None
        self._forget(proc.pid)
        return rc

    def _judge(self, slot: _Slot, pid: int, rc: int) -> None:
        """A child stopped by the supervisor exits 0; -SIGTERM means it was still starting (nothing taken)."""
        if rc in (0, -signal.SIGTERM):
            self.log.info("child_stopped", child=slot.index, pid=pid, returncode=rc)
        else:
            self.log.error("child_stopped", child=slot.index, pid=pid, returncode=rc)
            self.clean = False

    def _forget(self, pid: int) -> None:
        """Drop a dead child's live gauges (its counters stay: totals must not fall when a child restarts)."""
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, self.metrics_dir)  # type: ignore[no-untyped-call]

    # -- HTTP: /metrics, /healthz, /readyz ------------------------------------------------------------------------

    def child_pids(self) -> list[int | None]:
        """The pid of each slot's running child, None for a slot waiting to restart one."""
        return [s.proc.pid if s.proc is not None and s.proc.returncode is None else None for s in self.slots]

    def ready_pids(self) -> set[int]:
        """Pids whose `sluice_ready` gauge reads 1 in the multiprocess files."""
        from prometheus_client.multiprocess import MultiProcessCollector

        ready: set[int] = set()
        collector = MultiProcessCollector(None, path=self.metrics_dir)  # type: ignore[no-untyped-call]
        for family in collector.collect():  # type: ignore[no-untyped-call]
            if family.name == "sluice_ready":
                ready.update(int(s.labels["pid"]) for s in family.samples if s.value == 1 and "pid" in s.labels)
        return ready

    def _own_metrics(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        yield CounterMetricFamily(
            "sluice_supervisor_child_restarts", "Worker processes restarted after exiting unexpectedly.",
            value=self.restarts)
        yield GaugeMetricFamily(
            "sluice_supervisor_children", "Worker processes running (of `--processes`).",
            value=sum(pid is not None for pid in self.child_pids()))

    async def _start_http(self) -> web.AppRunner | None:
        tcfg = self.cfg.telemetry
        if tcfg.metrics_port == 0:
            return None
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        from worker.health import serve_health

        registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(registry, path=self.metrics_dir)  # type: ignore[no-untyped-call]
        registry.register(_OwnCollector(self))

        def healthy() -> str | None:
            down = [i for i, pid in enumerate(self.child_pids()) if pid is None]
            return f"children not running: {down}" if down else None

        def ready() -> str | None:
            if self.stopping.is_set():
                return "stopping"
            ready_pids = self.ready_pids()
            waiting = [i for i, pid in enumerate(self.child_pids()) if pid is None or pid not in ready_pids]
            return f"children not ready: {waiting}" if waiting else None

        runner = await serve_health(tcfg.metrics_host, tcfg.metrics_port, healthy, ready, registry)
        self.log.info("metrics_server_started", host=tcfg.metrics_host, port=tcfg.metrics_port)
        return runner


class _OwnCollector:
    """The supervisor's own metrics, computed at scrape time (they are not in the children's files)."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    def collect(self) -> Iterator[Any]:
        return self.supervisor._own_metrics()
