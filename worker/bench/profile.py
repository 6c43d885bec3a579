"""`sluice bench --profile DIR`: a py-spy profile of each end-to-end phase, and where its time went.

py-spy samples the worker from outside (no instrumentation, so the figures are the worker's own); it is not a
dependency of Sluice (`pip install py-spy` into the venv). The summary groups samples by function, inclusive
(time in the function and what it calls) and self, which is what docs/performance.md's profile table shows.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import TracebackType


class Profiler:
    """`with Profiler(pid, path):` records the process until the block ends (py-spy raw/collapsed format)."""

    def __init__(self, pid: int, path: Path, rate: int = 250) -> None:
        self.pid = pid
        self.path = path
        self.rate = rate
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> str | None:
        """The py-spy executable (next to this interpreter, as in a venv, or on the PATH), or None."""
        beside = Path(sys.executable).parent / "py-spy"
        return str(beside) if beside.exists() else shutil.which("py-spy")

    def __enter__(self) -> Profiler:
        exe = self.available()
        if exe is None:
            raise RuntimeError("--profile needs py-spy (pip install py-spy)")
        self._proc = subprocess.Popen(
            [exe, "record", "--pid", str(self.pid), "--rate", str(self.rate), "--format", "raw", "--nonblocking",
             "--output", str(self.path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
            try:
                self._proc.wait(30)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()


def _function(frame: str) -> str:
    """`name (path/to/module.py:123)` -> `name (module.py)`: one entry per function, not per line."""
    name, _, where = frame.partition(" (")
    file = where.rsplit(":", 1)[0].rsplit("/", 1)[-1].rstrip(")")
    return f"{name} ({file})" if file else name


def summarise(path: Path, top: int = 25) -> tuple[int, list[tuple[str, float, float]]]:
    """(total samples, [(function, inclusive share, self share)]) sorted by inclusive share."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_function(f) for f in stack.split(";") if f]
        if not frames:
            continue
        total += n
        for name in set(frames):
            inclusive[name] += n
        own[frames[-1]] += n
    if not total:
        return 0, []
    rows = [(name, n / total, own[name] / total) for name, n in inclusive.most_common(top * 4)]
    rows = [r for r in rows if not r[0].startswith(("<module>", "run (", "_run (", "run_forever", "_run_once",
                                                     "main (", "_run_module", "_cmd_run"))]
    return total, rows[:top]


def render(path: Path, top: int = 25) -> str:
    total, rows = summarise(path, top)
    lines = [f"{path.name}: {total} samples", "| function | inclusive | self |", "|---|---:|---:|"]
    lines += [f"| `{name}` | {inc:.0%} | {own:.0%} |" for name, inc, own in rows]
    return "\n".join(lines) + "\n"
