"""The worker's end of the media link: connect, HELLO, wait for ACCEPT, then read frames (blocking).

A plain blocking socket on its own thread: the worker has no event loop and needs none.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from cluster.errors import BadRequest
from cluster.medialink import frames
from cluster.medialink.frames import Frame, FrameReader, Kind

RECV = 256 * 1024


class LinkRefused(Exception):
    """The edge answered HELLO with ERROR (not published here, stale epoch, ...)."""


def parse_addr(addr: str) -> tuple[str, int]:
    host, sep, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise BadRequest(f"bad media address {addr!r}: expected host:port")
    return host.strip("[]"), int(port)


class Link:
    def __init__(self, source: str, timeout: float) -> None:
        self.source = source
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._parser = FrameReader()
        self._pending: list[Frame] = []
        self._closed = threading.Event()

    def open(self, hello: dict[str, Any]) -> dict[str, Any]:
        """Connect and say HELLO; returns the ACCEPT body. Raises OSError or LinkRefused."""
        deadline = time.monotonic() + self.timeout
        sock = socket.create_connection(parse_addr(self.source), timeout=self.timeout)
        self._sock = sock
        if self._closed.is_set():  # closed (halted) while connecting
            sock.close()
            raise OSError("media link closed while connecting")
        sock.sendall(frames.encode_json(Kind.HELLO, hello))
        while not self._pending:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            data = sock.recv(RECV)
            if not data:
                raise LinkRefused("the edge closed the link before ACCEPT")
            self._pending = self._parser.feed(data)
        first = self._pending.pop(0)
        if first.kind is Kind.ERROR:
            body = first.json()
            raise LinkRefused(f"{body.get('error')}: {body.get('detail')}")
        if first.kind is not Kind.ACCEPT:
            raise LinkRefused(f"expected ACCEPT, got {first.kind.name}")
        sock.settimeout(None)
        return first.json()

    def frames(self) -> Iterator[Frame]:
        """Frames after ACCEPT until the edge closes the link (or `close` is called)."""
        sock = self._sock
        assert sock is not None, "open() first"
        yield from self._pending
        self._pending = []
        while not self._closed.is_set():
            data = sock.recv(RECV)
            if not data:
                return
            yield from self._parser.feed(data)

    def send(self, data: bytes) -> None:
        """Blocking write (the feed's sender thread only); OSError once the link is closed."""
        sock = self._sock
        if sock is None or self._closed.is_set():
            raise OSError("media link closed")
        sock.sendall(data)

    def close(self) -> None:
        """Safe from any thread: shutdown wakes a reader blocked in recv."""
        if self._closed.is_set():
            return
        self._closed.set()
        sock = self._sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
