"""Stopping a command on SIGINT or SIGTERM within a second, keeping what is finished.

Python runs a signal handler only in the main thread, between two bytecodes. A compile or a
group's program holds the main thread inside XLA for as long as it runs (minutes), so a plain
program's Ctrl-C waits for it. Here:

- ``call(fn, ...)`` runs device work on a worker thread while the main thread waits in a loop,
  where the handler runs at once.
- ``install()`` (the command line) turns the first SIGINT or SIGTERM into ``Interrupted``, a
  ``SystemExit`` with status 128 + signal (130, 143) raised in the main thread. The code that
  catches it saves its state and calls ``leave``: ``os._exit`` when a worker still runs (an
  XLA program cannot be cancelled, and interpreter shutdown would wait for it). A second
  signal exits at once. A watchdog thread, woken through ``signal.set_wakeup_fd`` even while
  the main thread is held in C, exits the process ``GRACE_S`` after the first signal if it is
  still alive (commands that call XLA from the main thread).
- ``deferred()`` holds a signal back for a short critical section (writing a finished
  group's files), so that work done is not thrown away a millisecond before it is saved.

Files are written atomically (``bench.results``), so even the forced exits leave none half
written.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

T = TypeVar("T")

GRACE_S = 1.0  # the watchdog's wait for the main thread to save its state and exit
POLL_S = 0.2  # how often call() runs its poll function
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(SystemExit):
    """The first SIGINT/SIGTERM after ``install()``; exits with status 128 + signal."""

    def __init__(self, signum: int):
        super().__init__(128 + signum)
        self.signum = signum

    @property
    def signal_name(self) -> str:
        return signal.Signals(self.signum).name


class _State:
    installed = False
    reported = False  # report() said what was kept
    signum: int | None = None  # the first signal received
    deferring = 0  # depth of deferred() sections
    pending = False  # a signal arrived inside a deferred() section
    workers: list[threading.Thread] = []  # noqa: RUF012 (one process-wide list)


_state = _State()


def report(line: str) -> None:
    """Say on stderr, in one line, what an interruption kept and how to resume."""
    _state.reported = True
    print(line, file=sys.stderr, flush=True)


def _report_default(signum: int | None = None) -> None:
    signum = _state.signum if signum is None else signum
    if signum is not None and not _state.reported:
        name = signal.Signals(signum).name
        report(f"interrupted by {name}; the command was: {command_line()}")


def _exit_now(status: int) -> NoReturn:
    _report_default(status - 128 if status > 128 else None)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


def _handler(signum: int, frame: Any) -> None:
    if _state.signum is not None:  # a second signal: leave at once
        _exit_now(128 + signum)
    _state.signum = signum
    if _state.deferring:
        _state.pending = True
        return
    raise Interrupted(signum)


def _watch(fd: int) -> None:
    first: tuple[float, int] | None = None  # (time, signal) of the first signal
    while True:
        timeout = None if first is None else max(0.0, first[0] + GRACE_S - time.monotonic())
        if not select.select([fd], [], [], timeout)[0]:
            assert first is not None
            _exit_now(128 + first[1])  # the main thread did not finish in time
        for signum in os.read(fd, 512):
            if signum not in SIGNALS:
                continue
            if first is not None:
                _exit_now(128 + signum)
            first = (time.monotonic(), signum)


def install() -> None:
    """Handle SIGINT and SIGTERM as the module docstring says (main thread only; once).

    A signal the parent process ignores (a background job's SIGINT) stays ignored.
    """
    if _state.installed or threading.current_thread() is not threading.main_thread():
        return
    handled = [s for s in SIGNALS if signal.getsignal(s) is not signal.SIG_IGN]
    if not handled:
        return
    r, w = os.pipe()
    os.set_blocking(w, False)  # the C-level handler must never block on it
    signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    for s in handled:
        signal.signal(s, _handler)
    threading.Thread(target=_watch, args=(r,), name="interrupt-watchdog", daemon=True).start()
    atexit.register(_report_default)  # interrupted before anything said what was kept
    _state.installed = True


def installed() -> bool:
    return _state.installed


def call(fn: Callable[..., T], /, *args: Any, poll: Callable[[], None] | None = None, **kw) -> T:
    """``fn(*args, **kw)`` on a worker thread; the main thread waits where signal handlers
    run, calling ``poll()`` (e.g. a progress display) every ``POLL_S`` seconds.

    If the wait is interrupted, the worker keeps running (a daemon thread): ``leave`` ends
    the process without waiting for it.
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def work() -> None:
        try:
            box["value"] = fn(*args, **kw)
        except BaseException as e:  # handed to the caller's thread
            box["error"] = e
        finally:
            done.set()

    worker = threading.Thread(target=work, name=getattr(fn, "__name__", "worker"), daemon=True)
    _state.workers = [t for t in _state.workers if t.is_alive()] + [worker]
    worker.start()
    while not done.wait(POLL_S):
        if poll is not None:
            poll()
    worker.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold a first signal back until the block ends (keep the block short: milliseconds)."""
    _state.deferring += 1
    try:
        yield
    finally:
        _state.deferring -= 1
        if not _state.deferring and _state.pending:
            _state.pending = False
            raise Interrupted(_state.signum or signal.SIGINT)


def is_interruption(e: BaseException) -> bool:
    return isinstance(e, Interrupted | KeyboardInterrupt)


def leave(e: BaseException) -> NoReturn:
    """Re-raise an interruption once its state is saved; exit at once (status 128 + signal)
    if a worker from ``call`` is still running device work."""
    if isinstance(e, Interrupted) and any(t.is_alive() for t in _state.workers):
        _exit_now(e.code if isinstance(e.code, int) else 1)
    raise e


def command_line(argv: list[str] | None = None) -> str:
    """The command that started this process, as typed (``python -m bench ...``)."""
    argv = list(sys.argv if argv is None else argv)
    main = Path(argv[0]) if argv else Path("python")
    prog = f"python -m {main.parent.name}" if main.name == "__main__.py" else str(main)
    return " ".join([prog, *map(shlex.quote, argv[1:])])


__all__ = [
    "Interrupted",
    "call",
    "command_line",
    "deferred",
    "install",
    "installed",
    "is_interruption",
    "leave",
    "report",
]
