"""The lifecycle of Sluice's one-shot commands (`sluice backfill`, `sluice replay`): quiet logs, the worker's
GC settings, SIGINT/SIGTERM as "stop after what is in flight" (a second signal stops at once), and exit codes
that scripts can rely on. One place, so the commands cannot drift apart on what Ctrl-C or a crash means."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable

from worker import telemetry as m
from worker.config import Config

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

log = m.get_logger("sluice.command")


def run_command(name: str, cfg: Config, body: Callable[[asyncio.Event], Awaitable[int]],
                known: Callable[[Exception], int | None] = lambda _: None) -> int:
    """Run `body(stop)` on uvloop and return its exit code.

    `stop` is set by the first SIGINT/SIGTERM; a second one cancels `body` (EXIT_INTERRUPTED). An exception
    `known` maps to a code is the command's own business (it printed what it needed); any other is printed in
    one line, not as a traceback (EXIT_FAILED).
    """
    import uvloop

    from worker.app import tune_gc

    level = cfg.telemetry.log_level if cfg.telemetry.log_level != "info" else "warning"
    m.configure_logging(level, cfg.telemetry.log_format)
    tune_gc()

    async def main() -> int:
        stop = asyncio.Event()
        task = asyncio.current_task()

        def on_signal() -> None:
            if stop.is_set() and task is not None:
                task.cancel()  # a second signal: stop at once (unfinished work is picked up next time)
            stop.set()

        loop = asyncio.get_running_loop()
        handled: list[signal.Signals] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError, RuntimeError):  # not the main thread: no signal handling
                loop.add_signal_handler(sig, on_signal)
                handled.append(sig)
        try:
            return await body(stop)
        except asyncio.CancelledError:
            print(f"sluice {name}: stopped", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Exception as exc:
            code = known(exc)
            if code is not None:
                return code
            log.debug(f"{name}_crashed", exc_info=True)
            print(f"sluice {name}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return EXIT_FAILED
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)

    return uvloop.run(main())
