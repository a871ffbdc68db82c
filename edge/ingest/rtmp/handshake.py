"""The RTMP handshake, server side (pure): C0 C1 C2 in, S0 S1 S2 out.

    client  C0 (version 3) + C1 (1536 bytes)           then C2 (1536 bytes, an echo of S1)
    server  S0 (version 3) + S1 (1536 bytes) + S2 (an echo of C1)

This is the simple handshake. FFmpeg and Flash-era encoders may send a "digest" C1 (a non-zero
version in bytes 4-7 and an HMAC inside); a publisher does not verify the server's answer, and an
S1 whose version bytes are zero tells a client that verifies (a player) to skip it. So one echo
serves OBS and FFmpeg alike. C2 is read and ignored: checking it buys no security.
"""

from __future__ import annotations

import os
import struct

from cluster.errors import BadRequest

VERSION = 3
SIZE = 1536


class Handshake:
    def __init__(self, now_ms: int = 0, random: bytes | None = None) -> None:
        body = random if random is not None else os.urandom(SIZE - 8)
        if len(body) != SIZE - 8:
            raise ValueError(f"S1 needs {SIZE - 8} random bytes")
        # time, then zero: the "version" field that marks a simple (non-digest) handshake.
        self._s1 = struct.pack(">II", now_ms & 0xFFFFFFFF, 0) + body
        self._buf = bytearray()
        self._answered = False
        self.done = False
        self.leftover = b""  # bytes after C2: the start of the chunk stream

    def feed(self, data: bytes) -> bytes:
        """Take client bytes; return what to send back (S0 S1 S2 once, else nothing)."""
        if self.done:
            raise RuntimeError("handshake already complete")
        self._buf += data
        out = b""
        if not self._answered and self._buf:
            if self._buf[0] != VERSION:
                hint = " (encrypted RTMPE is not supported)" if self._buf[0] in (6, 8) else ""
                raise BadRequest(f"RTMP: handshake version {self._buf[0]}{hint}")
            if len(self._buf) >= 1 + SIZE:
                c1 = bytes(self._buf[1 : 1 + SIZE])
                del self._buf[: 1 + SIZE]
                self._answered = True
                out = bytes([VERSION]) + self._s1 + c1
        if self._answered and len(self._buf) >= SIZE:
            self.leftover = bytes(self._buf[SIZE:])
            self._buf.clear()
            self.done = True
        return out
