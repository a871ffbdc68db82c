"""One viewer's RTP stream of one kind: the feed's shared payloads in, SRTP datagrams out.

The feed cuts each access unit into RTP payloads once (packetize.py) and hands the same list to
every viewer. What is left per viewer and packet is what cannot be shared: a 12-byte header with
the viewer's own SSRC, sequence number and timestamp, SRTP with the viewer's own keys, and the
system call. This runs synchronously inside the feed's loop over viewers, with no task, queue or
await per packet, unlike aiortc's own sending loop (one task per sender, an RtpPacket object, two
NTP clock reads and several awaits per packet; docs/BENCHMARKS.md has both).

What it sends through is a `Wire`, opened when the viewer's connection is up (sendpath.py makes
one from an aiortc sender; tests make their own). A frame's packets go to the wire in the feed's
runs (packetize.runs), which the wire may send as one segmented batch. A viewer whose socket
cannot take more (its kernel buffer is full) skips to the next keyframe; it never holds back the
feed or other viewers.
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


@dataclass
class Wire:
    """Where one viewer's packets go, fixed once its connection is up."""

    first_byte: int  # V=2 and the extension bit
    payload_type: int
    tail: bytes  # the SSRC and the header extensions (the MID), the same in every packet
    # SRTP-protect these RTP packets with this viewer's keys and send them, one datagram each, in
    # order; BlockingIOError when the socket's buffer is full.
    send: Callable[[list[bytes]], None]
    alive: Callable[[], bool]
    close: Callable[[], None]  # when this viewer's sending ends
    # Sender report stats: (RTP timestamp, NTP time, packets, payload octets) after each frame.
    sent: Callable[[int, int, int, int], None]
    rtx: tuple[int, bytes] | None = None  # RTX payload type and its tail (own SSRC), if agreed


class RtpOut:
    def __init__(
        self,
        kind: str,
        open_wire: Callable[[], Wire | None],
        ask_key: Callable[[str], None],
        ts_origin: int | None = None,
    ) -> None:
        self.kind = kind
        self.video = kind == "video"
        self.open_wire = open_wire
        self.ask_key = ask_key
        # A decoder can start only at a keyframe: video waits for one, first and after a skip.
        self.waiting_key = self.video
        self.frames = 0  # frames sent
        self.packets = 0
        self.octets = 0
        self.skips = 0
        self.closed = False
        # Set by the feed for video: called once connected, to send what it still has of the
        # current GOP (from its keyframe) rather than wait for the next one.
        self.catch_up: Callable[[RtpOut], None] | None = None
        # Set by the session: this viewer can get nothing more, so its session must end.
        self.on_fail: Callable[[], None] = lambda: None
        self._wire: Wire | None = None
        self._connected_mid_gop = False
        self._seq = secrets.randbelow(1 << 16)
        # RFC 3550's random start: a viewer cannot tell this stream's clock from its others'.
        self._ts_origin = secrets.randbits(32) if ts_origin is None else ts_origin
        self._rtx_seq = secrets.randbelow(1 << 16)
        self._history: list[bytes | None] = [None] * HISTORY

    def send(
        self,
        payloads: list[bytes],
        runs: list[tuple[int, int]],
        timestamp: int,
        keyframe: bool,
        ntp: int,
        octets: int,
    ) -> None:
        """One frame, cut into `payloads` (`octets` bytes in all), at `timestamp` in the RTP
        clock of this kind; `runs` are the [start, end) batches the wire may send together
        (packetize.runs). A connection that went away shows as a socket error, or ends the
        session first (whep.py)."""
        wire = self._wire
        if wire is None and (self.closed or (wire := self._connect(keyframe)) is None):
            return  # ICE and DTLS not done yet
        if self.waiting_key:
            if not keyframe:
                if self._connected_mid_gop:
                    # The GOP was too old to catch up on, or the IDR asked for when the viewer
                    # joined went by during ICE and DTLS.
                    self._connected_mid_gop = False
                    self.ask_key("viewer connected")
                return
            self.waiting_key = False
            self._connected_mid_gop = False
        ts = (self._ts_origin + timestamp) & 0xFFFFFFFF
        seq, first, pt, tail = self._seq, wire.first_byte, wire.payload_type, wire.tail
        pack, out, history = _HEADER.pack, wire.send, self._history
        # The marker ends a video frame; audio frames are one packet each, no talkspurts.
        last = len(payloads) - 1 if self.video else -1
        try:
            for start, end in runs:
                batch = []
                for i in range(start, end):
                    packet = pack(first, (0x80 if i == last else 0) | pt, seq, ts) + tail
                    packet += payloads[i]
                    history[seq % HISTORY] = packet
                    batch.append(packet)
                    seq = (seq + 1) & 0xFFFF
                out(batch)
        except BlockingIOError:  # its socket is full: a slow path to this viewer
            # Part of the batch may have gone: its numbers are never used again (one keystream
            # per sequence number; and the receiver's replay check would drop a second one).
            self._seq = seq
            self.skips += 1
            if self.video:
                self.waiting_key = True
                self.ask_key("slow viewer")
            return
        except Exception:  # SRTP or socket trouble ends this viewer's sending, nobody else's
            log.exception("%s RTP to a viewer failed; its session ends", self.kind)
            self.fail()
            return
        self._seq = seq
        self.frames += 1
        self.packets += len(payloads)
        self.octets += octets
        if not self.frames & 7:  # the sender reports every second or so: fresh enough
            wire.sent(ts, ntp, self.packets, self.octets)

    def retransmit(self, seq: int) -> None:
        """A NACKed packet again, as RTX (RFC 4588). Without RTX there is nothing to do: the same
        sequence number again would be dropped by the receiver's SRTP replay check."""
        wire = self._wire
        packet = self._history[seq % HISTORY]
        if wire is None or wire.rtx is None or packet is None:
            return
        if _SEQ.unpack_from(packet, 2)[0] != seq:
            return  # too old: its slot holds a newer packet
        rtx_pt, rtx_tail = wire.rtx
        marker, timestamp = packet[1] & 0x80, _HEADER.unpack_from(packet)[3]
        packet = (
            _HEADER.pack(wire.first_byte, marker | rtx_pt, self._rtx_seq, timestamp)
            + rtx_tail
            + packet[2:4]  # the original sequence number
            + packet[8 + len(wire.tail) :]
        )
        self._rtx_seq = (self._rtx_seq + 1) & 0xFFFF
        try:
            wire.send([packet])
        except Exception:  # a lost retransmission is one more loss, nothing worse
            log.debug("%s retransmission of %d not sent", self.kind, seq, exc_info=True)

    def close(self) -> None:
        self.closed = True
        if self._wire is not None:
            self._wire.close()
            self._wire = None

    def fail(self) -> None:
        if not self.closed:
            self.close()
            self.on_fail()

    def _connect(self, keyframe: bool) -> Wire | None:
        try:
            wire = self.open_wire()
        except Exception:  # this viewer's connection is unusable; the feed goes on
            log.exception("%s RTP to a viewer could not start", self.kind)
            self.fail()
            return None
        if wire is None:
            return None
        if not wire.alive():
            wire.close()
            return None
        self._wire = wire
        if self.video and not keyframe and self.catch_up is not None:
            self.catch_up(self)  # sends through self: it may fail and close
        self._connected_mid_gop = self.waiting_key
        return self._wire
