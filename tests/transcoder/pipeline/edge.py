"""A stand-in for the ingest edge's media-link server: one scripted feed per worker connection.

It also reads what the worker sends back (the low-latency feed) and can ask it for keyframes.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cluster.medialink import frames
from cluster.medialink.frames import CodecConfig, FrameReader, Kind, MediaPacket


@dataclass
class Feed:
    """What the edge sends to the next worker that connects."""

    replay: Sequence[MediaPacket] = ()
    live: Sequence[MediaPacket] = ()
    pace: float = 0.0  # 1.0 = live packets at real time; 0 = as fast as possible
    refuse: str = ""  # answer HELLO with ERROR
    eos: bool = False  # send EOS right after the live packets
    sent: threading.Event = field(default_factory=threading.Event)


class FakeEdge:
    def __init__(self, codecs: list[CodecConfig]) -> None:
        self.codecs = codecs
        self.server = socket.create_server(("127.0.0.1", 0))
        self.addr = f"127.0.0.1:{self.server.getsockname()[1]}"
        self.feeds: queue.Queue[Feed] = queue.Queue()
        self.hellos: list[dict[str, Any]] = []
        self.disconnects: list[float] = []  # when a worker's side of the link closed
        # Worker -> edge frames after ACCEPT, in order: one list per worker connection.
        self.received: list[list[frames.Frame]] = []
        self.sent: list[MediaPacket] = []  # live packets sent so far
        self._conn: socket.socket | None = None  # the latest worker's link
        self._write = threading.Lock()  # the serving thread and keyreq() both write
        self._eos = threading.Event()
        self._drop = threading.Event()
        self._stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def feed(self, feed: Feed) -> Feed:
        self.feeds.put(feed)
        return feed

    def send_eos(self) -> None:
        self._eos.set()

    def drop(self) -> None:
        """Close the link from the edge's side, as when a newer epoch takes over."""
        self._drop.set()

    def keyreq(self) -> int:
        """Ask the worker carrying the stream now for a keyframe on its feed; returns how many
        live packets went before the request on the link."""
        conn = self._conn
        assert conn is not None, "no worker connected"
        with self._write:
            conn.sendall(frames.encode(Kind.KEYREQ))
            return len(self.sent)

    def feed_codecs(self, link: int = -1) -> dict[int, CodecConfig]:
        got = list(self.received[link]) if self.received else []
        return {f.codec().track: f.codec() for f in got if f.kind is Kind.CODEC}

    def feed_packets(self, track: int, link: int = -1) -> list[MediaPacket]:
        got = list(self.received[link]) if self.received else []
        packets = [f.packet() for f in got if f.kind is Kind.PACKET]
        return [p for p in packets if p.track == track]

    def close(self) -> None:
        self._stop.set()
        self.server.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            parser = FrameReader()
            got: list[frames.Frame] = []
            while not got:
                data = conn.recv(4096)
                if not data:
                    return
                got = parser.feed(data)
            hello = got[0].json()
            self.hellos.append(hello)
            feed = self.feeds.get(timeout=10)
            if feed.refuse:
                conn.sendall(
                    frames.encode_json(Kind.ERROR, {"error": "conflict", "detail": feed.refuse})
                )
                return
            accept = {"v": 1, "stream": hello["stream"], "epoch": hello["epoch"]}
            out = [frames.encode_json(Kind.ACCEPT, accept)]
            out += [frames.encode_codec(c) for c in self.codecs]
            out += [frames.encode_packet(p, replay=True) for p in feed.replay]
            self._conn = conn
            left = threading.Event()
            got = []
            self.received.append(got)
            # Read all along, as the real edge does: a worker whose feed is not read drops it.
            reader = threading.Thread(
                target=self._read, args=(conn, parser, got, left), daemon=True
            )
            reader.start()
            try:
                self._sendall(conn, b"".join(out))
                self._send_live(conn, feed)
                feed.sent.set()
                if feed.eos:
                    self._sendall(conn, frames.encode(Kind.EOS))
                self._hold(conn, left)
            except OSError:
                self.disconnects.append(time.monotonic())
            finally:
                # Wakes our reader blocked in recv; a bare close would neither wake it nor let
                # the worker see the link close while that recv holds the socket.
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    def _sendall(self, conn: socket.socket, data: bytes) -> None:
        with self._write:
            conn.sendall(data)

    def _read(
        self,
        conn: socket.socket,
        parser: FrameReader,
        got: list[frames.Frame],
        left: threading.Event,
    ) -> None:
        try:
            while data := conn.recv(65536):
                got.extend(parser.feed(data))
        except OSError:
            pass
        left.set()

    def _send_live(self, conn: socket.socket, feed: Feed) -> None:
        start = time.monotonic()
        first = feed.live[0].dts_us if feed.live else 0
        for p in feed.live:
            if feed.pace:
                delay = start + (p.dts_us - first) / 1e6 / feed.pace - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            with self._write:  # so that keyreq() knows which packets went before it
                conn.sendall(frames.encode_packet(p, replay=False))
                self.sent.append(p)

    def _hold(self, conn: socket.socket, left: threading.Event) -> None:
        """Keep the link open until the worker leaves, EOS is asked for, or the test ends."""
        while not self._stop.is_set() and not self._drop.is_set():
            if self._eos.is_set():
                self._sendall(conn, frames.encode(Kind.EOS))
                self._eos.clear()
            if left.wait(0.02):
                break
        self.disconnects.append(time.monotonic())
