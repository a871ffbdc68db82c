"""A Wire that keeps what it is given, in clear, for tests of RtpOut and the Feed without sockets."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from edge.playback.webrtc.packetize import runs
from edge.playback.webrtc.rtpout import RtpOut, Wire

SSRC = 0x1234_5678
RTX_SSRC = 0x0BAD_CAFE


@dataclass
class Rtp:
    marker: bool
    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes

    @classmethod
    def parse(cls, data: bytes) -> Rtp:
        b0, b1, seq, ts, ssrc = struct.unpack_from("!BBHII", data)
        assert b0 == 0x80  # version 2, no extension (this wire's tail has none)
        return cls(bool(b1 & 0x80), b1 & 0x7F, seq, ts, ssrc, data[12:])


@dataclass
class Sink:
    connected: bool = True
    full: bool = False  # its socket buffer is full
    alive: bool = True
    fail: bool = False
    rtx: bool = False
    datagrams: list[bytes] = field(default_factory=list)
    batches: list[int] = field(default_factory=list)  # packets per send
    reports: list[tuple[int, int, int, int]] = field(default_factory=list)
    closed: bool = False
    partial: int | None = None  # send this many datagrams of the next batch, then EAGAIN

    def open(self) -> Wire | None:
        if not self.connected:
            return None
        return Wire(
            first_byte=0x80,
            payload_type=96,
            tail=struct.pack("!I", SSRC),
            send=self._send,
            alive=lambda: self.alive,
            close=self._close,
            sent=lambda *report: self.reports.append(report),
            rtx=(97, struct.pack("!I", RTX_SSRC)) if self.rtx else None,
        )

    def _send(self, packets: list[bytes]) -> None:
        if self.fail:
            raise RuntimeError("srtp_protect failed")
        if self.full:
            raise BlockingIOError
        if self.partial is not None and len(packets) > self.partial:
            self.datagrams += packets[: self.partial]  # the per-packet path, cut short
            raise BlockingIOError
        self.datagrams += packets
        self.batches.append(len(packets))

    def _close(self) -> None:
        self.closed = True

    @property
    def packets(self) -> list[Rtp]:
        return [Rtp.parse(d) for d in self.datagrams]

    def payloads(self) -> list[bytes]:
        return [p.payload for p in self.packets]


def out_to(
    sink: Sink, kind: str, asked: list[str] | None = None, ts_origin: int | None = None
) -> RtpOut:
    return RtpOut(kind, sink.open, (asked if asked is not None else []).append, ts_origin)


def send(out: RtpOut, payloads: list[bytes], timestamp: int, key: bool, ntp: int = 0) -> None:
    """One frame, batched as the feed batches it."""
    out.send(payloads, runs(payloads), timestamp, key, ntp, sum(map(len, payloads)))
