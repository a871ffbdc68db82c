"""Dying with the parent: a pipe whose write end only the transcoder holds (its death in, exit out).

When the transcoder dies, even by kill -9, the kernel closes the write end; every worker watching
the read end sees EOF and exits at once, which also closes its media link, so the edge notices
immediately instead of after a ZooKeeper session timeout.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

from transcoder.pipeline.control import ORPHANED

Alive = Connection | int


def parent_pipe() -> tuple[Connection, Connection]:
    """(read end to hand to each worker, write end the parent keeps open and never writes to).

    Start workers with the "forkserver" or "spawn" context: a plain fork would give the child a
    copy of the write end too, and the pipe would never close.
    """
    reader, writer = multiprocessing.Pipe(duplex=False)
    return reader, writer


def watch_parent(alive: Alive, log: logging.LoggerAdapter[Any]) -> None:
    """Exit the process (os._exit) as soon as the pipe's write end closes everywhere."""

    def watch(conn: Alive) -> None:
        # `conn` stays referenced by this frame: a collected Connection would close the fd.
        fd = conn if isinstance(conn, int) else conn.fileno()
        while True:
            try:
                data = os.read(fd, 64)
            except InterruptedError:
                continue
            except OSError:
                data = b""
            if not data:
                log.warning("the transcoder is gone (parent pipe closed): exiting now")
                flush_logs()
                os._exit(ORPHANED)

    threading.Thread(target=watch, args=(alive,), name="parent-watch", daemon=True).start()


def flush_logs() -> None:
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
