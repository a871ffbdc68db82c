"""One viewer's RTP stream of one kind: the feed's shared payloads in, SRTP datagrams out.

The feed cuts each access unit into RTP payloads once (packetize.py) and hands the same list to
every viewer. What is left per viewer and packet is what cannot be shared: a 12-byte header with
the viewer's own SSRC, sequence number and timestamp, SRTP with the viewer's own keys, and one
`sendto`. This runs synchronously inside the feed's loop over viewers, with no task, queue or
await per packet; aiortc's own sending loop (one task per sender, an RtpPacket object, two NTP
clock reads and several awaits per packet) cost four times as much (docs/BENCHMARKS.md).

What it sends through is a `Wire`, opened when the viewer's connection is up (sendpath.py makes
one from an aiortc sender; tests make their own). A viewer whose datagrams pile up in its
socket's buffer skips to the next keyframe; it never holds back the feed or other viewers.
"""

from __future__ import annotations

import logging
import secrets
import struct
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

_HEADER = struct.Struct("!BBHI")  # V/P/X/CC, M/PT, sequence number, timestamp; the SSRC follows
_SEQ = struct.Struct("!H")
HISTORY = 128  # packets kept for retransmission, as aiortc's sender keeps
# Datagrams queued in user space for one viewer before it skips to the next keyframe: the kernel
# buffer is full by then, so more would only add latency.
MAX_BACKLOG = 256 * 1024


@dataclass
class Wire:
    """Where one viewer's packets go, fixed once its connection is up."""

    first_byte: int  # V=2 and the extension bit
    payload_type: int
    tail: bytes  # the SSRC and the header extensions (the MID), the same in every packet
    protect: Callable[[bytes], bytes]  # SRTP with this viewer's keys
    send: Callable[[bytes], None]  # one datagram to this viewer
    backlog: Callable[[], int]  # bytes waiting in user space to be sent
    alive: Callable[[], bool]
    # Sender report stats: (RTP timestamp, NTP time, packets, payload octets) after each frame.
    sent: Callable[[int, int, int, int], None]
    rtx: tuple[int, bytes] | None = None  # RTX payload type and its tail (own SSRC), if agreed


class RtpOut:
    def __init__(
        self,
        kind: str,
        open_wire: Callable[[], Wire | None],
        ask_key: Callable[[str], None],
        max_backlog: int = MAX_BACKLOG,
        ts_origin: int | None = None,
    ) -> None:
        self.kind = kind
        self.video = kind == "video"
        self.open_wire = open_wire
        self.ask_key = ask_key
        self.max_backlog = max_backlog
        # A decoder can start only at a keyframe: video waits for one, first and after a skip.
        self.waiting_key = self.video
        self.frames = 0  # frames sent
        self.packets = 0
        self.octets = 0
        self.skips = 0
        self.closed = False
        self._wire: Wire | None = None
        self._connected_mid_gop = False
        self._seq = secrets.randbelow(1 << 16)
        # RFC 3550's random start: a viewer cannot tell this stream's clock from its others'.
        self._ts_origin = secrets.randbits(32) if ts_origin is None else ts_origin
        self._rtx_seq = secrets.randbelow(1 << 16)
        self._history: list[bytes | None] = [None] * HISTORY

    def send(self, payloads: list[bytes], timestamp: int, keyframe: bool, ntp: int) -> None:
        """One frame, cut into `payloads`, at `timestamp` in the RTP clock of this kind."""
        wire = self._wire
        if wire is None and (self.closed or (wire := self._connect()) is None):
            return  # ICE and DTLS not done yet
        if self.waiting_key:
            if not keyframe:
                if self._connected_mid_gop:
                    # The IDR asked for when the viewer joined went by during ICE and DTLS.
                    self._connected_mid_gop = False
                    self.ask_key("viewer connected")
                return
            self.waiting_key = False
            self._connected_mid_gop = False
        if not wire.alive():
            self.close()  # the session ends too (whep.py), by the connection's state change
            return
        if wire.backlog() > self.max_backlog:
            self.skips += 1
            if self.video:
                self.waiting_key = True
                self.ask_key("slow viewer")
            return
        ts = (self._ts_origin + timestamp) & 0xFFFFFFFF
        seq, first, pt, tail = self._seq, wire.first_byte, wire.payload_type, wire.tail
        pack, protect, out, history = _HEADER.pack, wire.protect, wire.send, self._history
        last = len(payloads) - 1
        octets = 0
        try:
            for i, payload in enumerate(payloads):
                # The marker ends a video frame; audio frames are one packet each, no talkspurts.
                marker = 0x80 if self.video and i == last else 0
                packet = pack(first, marker | pt, seq, ts) + tail + payload
                history[seq % HISTORY] = packet
                out(protect(packet))
                seq = (seq + 1) & 0xFFFF
                octets += len(payload)
        except Exception:  # SRTP or socket trouble ends this viewer's sending, nobody else's
            log.exception("%s RTP to a viewer failed; its sending stops", self.kind)
            self.close()
            return
        self._seq = seq
        self.frames += 1
        self.packets += len(payloads)
        self.octets += octets
        wire.sent(ts, ntp, self.packets, self.octets)

    def retransmit(self, seq: int) -> None:
        """A NACKed packet again: as RTX when agreed, else as it was (payload and all)."""
        wire = self._wire
        packet = self._history[seq % HISTORY]
        if wire is None or packet is None or _SEQ.unpack_from(packet, 2)[0] != seq:
            return  # too old, or never sent
        if wire.rtx is not None:
            rtx_pt, rtx_tail = wire.rtx
            header_end = 8 + len(wire.tail)
            marker_ts = packet[1] & 0x80, _HEADER.unpack_from(packet)[3]
            packet = (
                _HEADER.pack(wire.first_byte, marker_ts[0] | rtx_pt, self._rtx_seq, marker_ts[1])
                + rtx_tail
                + packet[2:4]  # the original sequence number (RFC 4588)
                + packet[header_end:]
            )
            self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
        try:
            wire.send(wire.protect(packet))
        except Exception:  # libsrtp refuses a sequence number twice without RTX: that one is lost
            log.debug("%s retransmission of %d not sent", self.kind, seq, exc_info=True)

    def close(self) -> None:
        self.closed = True
        self._wire = None

    def _connect(self) -> Wire | None:
        wire = self.open_wire()
        if wire is None or not wire.alive():
            return None
        self._wire = wire
        self._connected_mid_gop = self.video
        return wire
