"""The worker's stop switch and the hand-offs between its threads.

Any thread may halt the whole pipeline (EOS, link closed, fenced, SIGTERM, an error); the first
reason wins and becomes the exit code. Queue hand-offs block for back-pressure but wake up often
enough to notice a halt, so the worker stops within a fraction of a second wherever it is.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from cluster.errors import Fenced
from cluster.hot.fence import Stale

T = TypeVar("T")

POLL = 0.05  # seconds a blocked hand-off waits before looking at the stop switch again

# Exit codes. Zero is final for the transcoder (it will not restart this epoch); others are
# worth a retry.
OK = 0
FAILED = 1
LINK_REFUSED = 2
LINK_UNREACHABLE = 3
REDIS_UNAVAILABLE = 4
ORPHANED = 5


class End:
    """Sentinel passed down the queues when the input ended cleanly: finish, then exit."""


END = End()


class Control:
    def __init__(self) -> None:
        self.stopped = threading.Event()
        self.reason = ""
        self.code = OK
        self._lock = threading.Lock()
        self._on_halt: list[Callable[[], None]] = []

    def on_halt(self, fn: Callable[[], None]) -> None:
        """Run `fn` when halted (at once if already): e.g. close the link so its reader wakes."""
        self._on_halt.append(fn)
        if self.stopped.is_set():
            fn()

    def halt(self, reason: str, code: int = OK) -> bool:
        """Stop everything; returns False if something else stopped it first."""
        with self._lock:
            if self.stopped.is_set():
                return False
            self.reason, self.code = reason, code
            self.stopped.set()
        for fn in list(self._on_halt):
            fn()
        return True

    def put(self, q: queue.Queue[T], item: T) -> bool:
        """Blocking put that gives up when halted; False means the item was not delivered."""
        while not self.stopped.is_set():
            try:
                q.put(item, timeout=POLL)
                return True
            except queue.Full:
                continue
        return False

    def get(self, q: queue.Queue[T]) -> T | None:
        """Blocking get that returns None when halted."""
        while not self.stopped.is_set():
            try:
                return q.get(timeout=POLL)
            except queue.Empty:
                continue
        return None


def spawn(
    name: str, control: Control, log: logging.LoggerAdapter[Any], body: Callable[[], None]
) -> threading.Thread:
    """Run `body` on a daemon thread; whatever ends it abnormally halts the whole worker.

    Daemon, because a thread stuck inside an encoder call must not keep a stopping worker alive.
    """

    def main() -> None:
        try:
            body()
        except Fenced as exc:
            control.halt(f"fenced: epoch {exc.stored_epoch} owns the stream now")
        except Stale as exc:
            control.halt(f"another writer of this epoch is ahead (msn {exc.current})")
        except Exception as exc:
            if control.halt(f"{name} failed: {exc!r}", FAILED):
                log.exception("%s failed", name)

    thread = threading.Thread(target=main, name=name, daemon=True)
    thread.start()
    return thread


def join_all(threads: list[threading.Thread], timeout: float) -> list[str]:
    """Join `threads` within `timeout` seconds in all; the names of those still running.

    Bounded, because a thread can only notice a halt between two codec calls.
    """
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return [t.name for t in threads if t.is_alive()]
