"""kinesis-mock (the npm package `kinesis-local`) as a child process, for the resharding tests.

moto gets resharding wrong (records keep going to the closed parent, GetRecords never returns
`ChildShards`), so tests of shard splits and merges run against kinesis-mock instead. It is a Scala.js
build that runs on the machine's node; the exact version is pinned in tools/kinesis-local and installed
with `npm ci --prefix tools/kinesis-local` (node_modules is not committed).

It serves Kinesis only (no DynamoDB: lease tables stay on moto), on two ports: plain HTTP, which
`endpoint_url` points at, and HTTPS with a self-signed certificate (`tls_endpoint_url`, verify off).
State is in memory only; a restart comes back empty.

kinesis-mock itself cannot be told which address to bind (it listens on every interface) and does not
notice its parent dying, so a few lines of JavaScript run before it: they pin `listen()` to our host, exit
when our end of its stdin closes (also when pytest is SIGKILLed), and let a test move its wall clock
forward (`advance_clock`) to expire shard iterators without waiting five minutes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from worker.local_servers import AWS_REGION, MissingLocalDependency, _LoggedServer, free_port

__all__ = ["INSTALL_HINT", "PACKAGE_DIR", "KinesisLocal", "KinesisLocalMissing"]

TOOL_DIR = Path(__file__).resolve().parents[1] / "tools" / "kinesis-local"
PACKAGE_DIR = TOOL_DIR / "node_modules" / "kinesis-local"
INSTALL_HINT = "npm ci --prefix tools/kinesis-local"

# moto's account, so stream ARNs look the same whichever emulator served them (kinesis-mock's own
# default is 000000000000).
DEFAULT_ACCOUNT_ID = "123456789012"

# Every simulated "this takes a while" of kinesis-mock (each defaults to 500 ms). Real AWS takes seconds;
# a short delay still leaves the stream CREATING/UPDATING for a moment, so the wait-for-ACTIVE paths run.
_DURATION_VARS = (
    "CREATE_STREAM_DURATION",
    "DELETE_STREAM_DURATION",
    "SPLIT_SHARD_DURATION",
    "MERGE_SHARDS_DURATION",
    "UPDATE_SHARD_COUNT_DURATION",
    "UPDATE_STREAM_MODE_DURATION",
    "REGISTER_STREAM_CONSUMER_DURATION",
    "DEREGISTER_STREAM_CONSUMER_DURATION",
    "START_STREAM_ENCRYPTION_DURATION",
    "STOP_STREAM_ENCRYPTION_DURATION",
)

_CLOCK_ACK = "sluice-clock-offset-ms"

# Runs in node before kinesis-mock's main.js. kinesis-mock calls `server.listen(port, callback)`, which
# binds every interface; this inserts our host. The wall clock it reads (Scala.js: timeOrigin + now()) is
# shifted by an offset read from stdin; `performance.now()` itself is left alone so timers and timeouts
# keep their pace. EOF on stdin means the test process is gone, and so should we be. cats-effect replaces
# process.exit and SIGTERM with a graceful shutdown that waits (10 s and more) for open keep-alive
# connections, so both exit through node's own process.exit, saved before kinesis-mock loads.
_BOOTSTRAP = f"""
'use strict';
const net = require('net');
const host = process.env.SLUICE_KINESIS_HOST;
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {{
  if (typeof args[0] === 'number') {{
    if (typeof args[1] === 'string') args.splice(1, 1);
    args.splice(1, 0, host);
  }} else if (args[0] !== null && typeof args[0] === 'object') {{
    args[0] = {{ ...args[0], host }};
  }}
  return listen.apply(this, args);
}};
let offset = 0;
const origin = performance.timeOrigin;
Object.defineProperty(performance, 'timeOrigin', {{ get: () => origin + offset }});
const dateNow = Date.now;
Date.now = () => dateNow() + offset;
let pending = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {{
  pending += chunk;
  let nl;
  while ((nl = pending.indexOf('\\n')) >= 0) {{
    const ms = Number(pending.slice(0, nl));
    pending = pending.slice(nl + 1);
    if (Number.isFinite(ms)) offset = ms;
    process.stderr.write('{_CLOCK_ACK} ' + offset + '\\n');
  }}
}});
const exit = process.exit.bind(process);
process.stdin.on('end', () => exit(0));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => exit(0));
require(process.env.SLUICE_KINESIS_MAIN);
"""


class KinesisLocalMissing(MissingLocalDependency):
    """node or the pinned kinesis-local package is not installed; the message says how to fix it."""


def _package_version() -> str:
    try:
        meta = json.loads((PACKAGE_DIR / "package.json").read_text())
    except (OSError, ValueError):
        return ""
    return str(meta.get("version", ""))


class KinesisLocal(_LoggedServer):
    """kinesis-mock on `host`, plain-HTTP and TLS ports both free ports; start, stop and restart by pid.

    `delay` is how long (seconds) CreateStream, SplitShard, MergeShards, UpdateShardCount and the other
    slow operations keep the stream out of ACTIVE. Only the status waits: a split or merge is in
    ListShards, and new records go to the children, from the moment the call returns. Keep test volumes
    small: kinesis-mock slows down as a shard fills (PutRecords of 500 records: ~0.1 s on an empty shard,
    ~3 s once it holds 5,000).
    """

    name = "kinesis-local"

    def __init__(
        self,
        port: int | None = None,
        *,
        tls_port: int | None = None,
        host: str = "127.0.0.1",
        delay: float = 0.1,
        shard_limit: int = 50,
        account_id: str = DEFAULT_ACCOUNT_ID,
        log_level: str = "INFO",
        extra_env: dict[str, str] | None = None,
        log_dir: Path | None = None,
        startup_timeout: float = 30.0,
        start: bool = True,
    ) -> None:
        node = shutil.which("node")
        if node is None:
            raise KinesisLocalMissing(f"node is not on PATH; kinesis-local needs node >= 18, then: {INSTALL_HINT}")
        if not (PACKAGE_DIR / "main.js").is_file() or not (PACKAGE_DIR / "server.json").is_file():
            raise KinesisLocalMissing(f"kinesis-local is not installed in {TOOL_DIR}; run: {INSTALL_HINT}")
        super().__init__(log_dir=log_dir, startup_timeout=startup_timeout)
        self._node = node
        self.host = host
        self.port = port if port is not None else free_port(host)
        self.tls_port = tls_port if tls_port is not None else free_port(host)
        self.delay = delay
        self.shard_limit = shard_limit
        self.account_id = account_id
        # Without LOG_LEVEL kinesis-mock logs nothing at all, whatever its README says about INFO.
        self.log_level = log_level
        self.extra_env = dict(extra_env or {})
        self.version = _package_version()
        self.clock_offset = 0.0
        if start:
            self.start()

    # -- addresses ------------------------------------------------------------------------------------

    @property
    def endpoint_url(self) -> str:
        """Plain HTTP: what botocore/aiobotocore should use (no certificate to ignore)."""
        return f"http://{self.host}:{self.port}"

    @property
    def tls_endpoint_url(self) -> str:
        """HTTPS with kinesis-mock's bundled self-signed certificate: clients need `verify=False`."""
        return f"https://{self.host}:{self.tls_port}"

    @property
    def region(self) -> str:
        return AWS_REGION

    # -- process --------------------------------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        millis = f"{max(0, round(self.delay * 1000))}ms"
        env = dict(os.environ)
        env.update({name: millis for name in _DURATION_VARS})
        env.update(
            {
                "KINESIS_MOCK_CERT_PATH": str(PACKAGE_DIR / "server.json"),
                "KINESIS_MOCK_PLAIN_PORT": str(self.port),
                "KINESIS_MOCK_TLS_PORT": str(self.tls_port),
                "SHARD_LIMIT": str(self.shard_limit),
                "AWS_ACCOUNT_ID": self.account_id,
                "AWS_REGION": AWS_REGION,
                "SHOULD_PERSIST_DATA": "false",
                "LOAD_DATA_IF_EXISTS": "false",
                "LOG_LEVEL": self.log_level,
                "ROOT_LOG_LEVEL": "ERROR",
                # cats-effect's starvation warnings are noise on a busy 2-core CI machine.
                "CATS_EFFECT_CPU_STARVATION_CHECK_INITIAL_DELAY": "Inf",
                "SLUICE_KINESIS_HOST": self.host,
                "SLUICE_KINESIS_MAIN": str(PACKAGE_DIR / "main.js"),
            }
        )
        env.update(self.extra_env)
        return env

    def _launch(self) -> subprocess.Popen[bytes]:
        self.clock_offset = 0.0
        with self._open_log() as log:
            return subprocess.Popen(
                [self._node, "-e", _BOOTSTRAP],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self._env(),
                # A relative PERSIST_PATH would land here if persistence were ever switched on.
                cwd=self.log_dir,
            )

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/healthcheck", timeout=1.0) as resp:
                return bool(resp.status == 200)
        except OSError:  # HTTPError included: only a 200 means it serves
            return False

    def _tls_listens(self) -> bool:
        try:
            with socket.create_connection((self.host, self.tls_port), timeout=1.0):
                return True
        except OSError:
            return False

    def _wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if not self.running:
                raise self._fail(f"exited with code {self.returncode} during start-up")
            if self._answers() and self._tls_listens():
                if not self.running:  # someone else answered on our ports
                    raise self._fail(f"lost port {self.port} or {self.tls_port} to another process")
                return
            time.sleep(0.05)
        raise self._fail(f"did not answer within {self.startup_timeout} s")

    def _close_stdin(self) -> None:
        popen = self._popen
        if popen is not None and popen.stdin is not None and not popen.stdin.closed:
            with contextlib.suppress(OSError):  # a broken pipe: it is gone already
                popen.stdin.close()

    def stop(self, timeout: float = 10.0) -> int | None:
        try:
            return super().stop(timeout)
        finally:
            self._close_stdin()

    def kill(self) -> None:
        try:
            super().kill()
        finally:
            self._close_stdin()

    # -- time -----------------------------------------------------------------------------------------

    def advance_clock(self, seconds: float, timeout: float = 5.0) -> None:
        """Move kinesis-mock's wall clock forward, e.g. 301 s to expire every shard iterator issued so far.

        Only the time it stamps and checks moves (iterator age, ApproximateArrivalTimestamp,
        AT_TIMESTAMP); its timers and the stream-state delays keep real time. Cumulative; reset by restart.
        """
        popen = self._popen
        if not self.running or popen is None or popen.stdin is None:
            raise self._fail("is not running")
        target = self.clock_offset + seconds
        millis = round(target * 1000)
        assert self.log_path is not None
        seen_from = self.log_path.stat().st_size
        popen.stdin.write(f"{millis}\n".encode())
        popen.stdin.flush()
        ack = f"{_CLOCK_ACK} {millis}".encode()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.log_path.open("rb") as f:
                f.seek(seen_from)
                if ack in f.read():
                    self.clock_offset = target
                    return
            if not self.running:
                raise self._fail(f"exited with code {self.returncode}")
            time.sleep(0.01)
        raise self._fail(f"did not acknowledge a clock offset of {millis} ms within {timeout} s")

    def __repr__(self) -> str:
        pid = self._popen.pid if self._popen is not None else None
        return f"<KinesisLocal {self.endpoint_url} tls={self.tls_port} pid={pid} version={self.version}>"
