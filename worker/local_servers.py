"""Real local stand-ins for AWS (moto server) and OpenSearch (osmem-server), as separate processes.

The tests and `sluice demo` talk to them over HTTP exactly as they would to the real services, so
connection pools, retries, timeouts and process-level faults (a stopped or frozen server) are exercised
for real instead of being patched out in-process. No Docker is needed.

Both servers are optional dependencies (`pip install 'sluice[local]'`); they are imported lazily so the
worker itself never needs them.

Each server is started by us and stopped by its process id. A server can also be stopped and later
started again on the same port, which is how fault tests simulate an outage. Both keep their state in
memory only: a restart comes back empty.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Self

__all__ = [
    "AWS_REGION",
    "DUMMY_AWS_ENV",
    "LocalEnvironment",
    "LocalServerError",
    "LocalStack",
    "ManagedProcess",
    "MissingLocalDependency",
    "MotoServer",
    "OsmemProcess",
    "free_port",
    "start_local_stack",
]

AWS_REGION = "us-east-1"

# Dummy credentials: botocore refuses to sign without some, and fixed values keep a developer's real
# profile from ever being picked up by a test or the demo.
DUMMY_AWS_ENV: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": AWS_REGION,
    "AWS_REGION": AWS_REGION,
    # Without this, botocore probes the EC2 metadata endpoint when something is missing, and each probe
    # costs a timeout on a laptop.
    "AWS_EC2_METADATA_DISABLED": "true",
}

_INSTALL_HINT = "pip install 'sluice[local]'"


class LocalServerError(RuntimeError):
    """A local server did not come up (or died); the message carries the tail of its log."""


class MissingLocalDependency(LocalServerError):
    """The optional `local` extra is not installed."""


def _missing(what: str) -> MissingLocalDependency:
    return MissingLocalDependency(f"{what} is not installed; install the local servers with: {_INSTALL_HINT}")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now.

    There is a small window before the caller binds it; servers that can pick their own port (osmem)
    are asked to do so instead, and this is only for those that cannot (moto).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _http_answers(url: str, timeout: float = 1.0) -> bool:
    """True as soon as anything speaks HTTP at `url`, whatever the status: that is all "up" means here."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            resp.read()
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False
    return True


def _wait_stopped(pid: int, timeout: float = 2.0) -> None:
    """SIGSTOP takes effect when the kernel next schedules the process; on a loaded machine a request sent
    right after `kill` could still be answered. Wait until /proc shows the process stopped (Linux only)."""
    stat = Path(f"/proc/{pid}/stat")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return
        if state in ("T", "t"):
            return
        time.sleep(0.005)


class ManagedProcess:
    """A child process we started and must be able to end, by its pid, whatever state it is in.

    Subclasses that know how to launch their process override `_launch` and gain `start`/`restart`;
    a bare `ManagedProcess(popen)` just adopts an already started process (the demo uses that for
    the worker it spawns).
    """

    name = "process"
    startup_timeout: float = 30.0

    def __init__(self, popen: subprocess.Popen[bytes] | None = None, *, log_path: Path | None = None) -> None:
        self._popen = popen
        self.log_path = log_path
        self._paused = False

    # -- state ------------------------------------------------------------------------------------

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise LocalServerError(f"{self.name} was never started")
        return self._popen.pid

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    @property
    def paused(self) -> bool:
        return self._paused and self.running

    # -- lifecycle ----------------------------------------------------------------------------------

    def _launch(self) -> subprocess.Popen[bytes]:
        raise LocalServerError(f"{type(self).__name__} cannot (re)start its process")

    def _wait_ready(self, deadline: float) -> None:
        """Block until the freshly launched process serves; the default trusts it at once."""

    def start(self) -> Self:
        """Launch (again) and wait until it serves; a no-op when it already runs."""
        if self.running:
            return self
        self._paused = False
        self._popen = self._launch()
        try:
            self._wait_ready(time.monotonic() + self.startup_timeout)
        except BaseException:
            self.kill()
            raise
        return self

    def restart(self) -> Self:
        """Stop, then start on the same address; the state (buckets, queues, indices) does not survive."""
        self.stop()
        return self.start()

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it is still there after `timeout`; waits, so the port is free after."""
        popen = self._popen
        if popen is None or popen.poll() is not None:
            return self.returncode
        if self._paused:
            # A stopped process does not act on SIGTERM until it is continued.
            self.resume()
        popen.send_signal(signal.SIGTERM)
        try:
            return popen.wait(timeout)
        except subprocess.TimeoutExpired:
            popen.kill()
            return popen.wait()

    def kill(self) -> None:
        """SIGKILL and reap: a crash, as far as anyone talking to it can tell."""
        popen = self._popen
        if popen is None or popen.poll() is not None:
            return
        popen.kill()
        popen.wait()
        self._paused = False

    def pause(self) -> None:
        """SIGSTOP: the port stays open and connections hang, like an overloaded or partitioned server.

        Unlike `stop`, the in-memory state survives, which makes it the cheaper way to fake an outage
        when the test needs its buckets and queues afterwards.
        """
        if self.running and not self._paused:
            os.kill(self.pid, signal.SIGSTOP)
            self._paused = True
            _wait_stopped(self.pid)

    def resume(self) -> None:
        if self._paused and self.running:
            os.kill(self.pid, signal.SIGCONT)
        self._paused = False

    def close(self) -> None:
        """Final stop; subclasses also drop what they created on disk."""
        self.stop()

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        pid = self._popen.pid if self._popen is not None else None
        return f"<{type(self).__name__} pid={pid} running={self.running}>"


class _LoggedServer(ManagedProcess):
    """A server whose output goes to a file, never to a pipe that nobody drains and that fills up."""

    def __init__(self, *, log_dir: Path | None, startup_timeout: float) -> None:
        super().__init__()
        self._own_dir = log_dir is None
        self.log_dir = Path(tempfile.mkdtemp(prefix=f"sluice-{self.name}-")) if log_dir is None else log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.log_dir / f"{self.name}.log"
        self.startup_timeout = startup_timeout

    def _open_log(self) -> IO[bytes]:
        log = self.log_path
        assert log is not None
        handle = log.open("ab")
        handle.write(f"--- {self.name} starting at {time.strftime('%H:%M:%S')} ---\n".encode())
        handle.flush()
        return handle

    def _fail(self, why: str) -> LocalServerError:
        return LocalServerError(f"{self.name} {why}; log {self.log_path}:\n{self.log_tail()}")

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.log_dir, ignore_errors=True)


# moto has no "exit with my parent" option: a pytest run killed with SIGKILL would leave the server
# behind, holding its port. This bootstrap adds a watchdog thread, then runs moto's own server main.
_MOTO_BOOTSTRAP = """
import os, sys, threading, time
parent = int(sys.argv[1])
def _watch():
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)
threading.Thread(target=_watch, daemon=True).start()
from moto.server import main
main(sys.argv[2:])
"""


class MotoServer(_LoggedServer):
    """moto in server mode (S3, SQS and the rest of AWS) on 127.0.0.1, in its own Python process."""

    name = "moto"

    def __init__(
        self,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        log_dir: Path | None = None,
        startup_timeout: float = 30.0,
        start: bool = True,
    ) -> None:
        if importlib.util.find_spec("moto") is None:
            raise _missing("moto")
        if importlib.util.find_spec("flask") is None or importlib.util.find_spec("flask_cors") is None:
            raise _missing("moto's server mode (moto[server])")
        super().__init__(log_dir=log_dir, startup_timeout=startup_timeout)
        self.host = host
        self.port = port if port is not None else free_port(host)
        if start:
            self.start()

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def region(self) -> str:
        return AWS_REGION

    def _launch(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, **DUMMY_AWS_ENV}
        # moto builds queue URLs from the request's Host header, but falls back on MOTO_PORT elsewhere.
        env["MOTO_PORT"] = str(self.port)
        args = [
            sys.executable,
            "-c",
            _MOTO_BOOTSTRAP,
            str(os.getpid()),
            "-H",
            self.host,
            "-p",
            str(self.port),
        ]
        with self._open_log() as log:
            return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)

    def _wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if not self.running:
                raise self._fail(f"exited with code {self.returncode} during start-up")
            if _http_answers(f"{self.endpoint_url}/moto-api/"):
                if not self.running:  # someone else answered on our port
                    raise self._fail(f"lost port {self.port} to another process")
                return
            time.sleep(0.05)
        raise self._fail(f"did not answer within {self.startup_timeout} s")

    def reset(self) -> None:
        """Forget every bucket, queue and object, without the cost of a restart."""
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", data=b"", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()

    def __repr__(self) -> str:
        return f"<MotoServer {self.endpoint_url} pid={self._popen.pid if self._popen else None}>"


class OsmemProcess(_LoggedServer):
    """osmem-server: an in-memory, OpenSearch-compatible engine in one Go binary, started in ~20 ms.

    It is slow to index (a few thousand documents a second) and holds everything in memory, so tests
    keep their volumes small. The first start asks the binary for a free port and reads the address
    back from its ready line; restarts reuse that port.
    """

    name = "osmem"

    def __init__(
        self,
        port: int | None = None,
        *,
        host: str = "127.0.0.1",
        japanese: bool = False,
        seed: Sequence[str | os.PathLike[str]] = (),
        log_dir: Path | None = None,
        startup_timeout: float = 30.0,
        start: bool = True,
    ) -> None:
        try:
            import osmem_server
        except ImportError:
            raise _missing("osmem-server") from None
        try:
            self._binary: str = osmem_server.resolve_binary()
        except osmem_server.OsmemError as e:
            raise MissingLocalDependency(f"{e} ({_INSTALL_HINT})") from None
        super().__init__(log_dir=log_dir, startup_timeout=startup_timeout)
        self.host = host
        self.port = port or 0
        self.japanese = japanese
        self.seed = [os.fspath(s) for s in seed]
        self.version = ""
        self._log_offset = 0
        if start:
            self.start()

    @property
    def url(self) -> str:
        if not self.port:
            raise LocalServerError("osmem was never started, so it has no port yet")
        return f"http://{self.host}:{self.port}"

    def _launch(self) -> subprocess.Popen[bytes]:
        args = [
            self._binary,
            "--addr",
            f"{self.host}:{self.port}",
            # We stop it by pid; stdin is /dev/null so its default stdin watch would exit at once.
            "--no-stdin-watch",
            # ...and it exits by itself if this process dies without getting to stop it.
            "--parent-pid",
            str(os.getpid()),
        ]
        if not self.japanese:
            args.append("--no-ja")
        for s in self.seed:
            args += ["--seed", s]
        assert self.log_path is not None
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self._open_log() as log:
            return subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def _ready_line(self) -> dict[str, object] | None:
        assert self.log_path is not None
        with self.log_path.open("rb") as f:
            f.seek(self._log_offset)
            for raw in f:
                if not raw.startswith(b"{"):
                    continue
                try:
                    msg = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(msg, dict) and "url" in msg:
                    return msg
        return None

    def _wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            ready = self._ready_line()
            if ready is not None:
                url = str(ready["url"])
                self.port = int(url.rsplit(":", 1)[1])
                self.version = str(ready.get("version", ""))
                if _http_answers(self.url + "/"):
                    return
            if not self.running:
                raise self._fail(f"exited with code {self.returncode} during start-up")
            time.sleep(0.02)
        raise self._fail(f"did not answer within {self.startup_timeout} s")

    def __repr__(self) -> str:
        where = f"http://{self.host}:{self.port}" if self.port else "(not started)"
        return f"<OsmemProcess {where} pid={self._popen.pid if self._popen else None}>"


@dataclass
class LocalEnvironment:
    """Everything `sluice demo` needs: an AWS endpoint and an OpenSearch URL, both on this machine."""

    moto: MotoServer
    opensearch: OsmemProcess
    region: str = AWS_REGION
    _closed: bool = field(default=False, repr=False)

    @property
    def aws_endpoint_url(self) -> str:
        return self.moto.endpoint_url

    @property
    def opensearch_url(self) -> str:
        return self.opensearch.url

    def aws_env(self) -> dict[str, str]:
        """Environment for a child process (a worker) that must use the dummy credentials."""
        return dict(DUMMY_AWS_ENV)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.opensearch.close()
        finally:
            self.moto.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# The brief's name for the facade; LocalEnvironment is the same class.
LocalStack = LocalEnvironment


def start_local_stack(
    *,
    aws_port: int | None = None,
    opensearch_port: int | None = None,
    log_dir: Path | None = None,
    japanese: bool = False,
    startup_timeout: float = 30.0,
) -> LocalEnvironment:
    """Start moto and osmem (about 0.7 s together); whichever started is stopped if the other fails."""
    moto = MotoServer(
        aws_port,
        log_dir=None if log_dir is None else log_dir / "moto",
        startup_timeout=startup_timeout,
    )
    try:
        osmem = OsmemProcess(
            opensearch_port,
            japanese=japanese,
            log_dir=None if log_dir is None else log_dir / "osmem",
            startup_timeout=startup_timeout,
        )
    except BaseException:
        with contextlib.suppress(Exception):
            moto.close()
        raise
    return LocalEnvironment(moto=moto, opensearch=osmem)
