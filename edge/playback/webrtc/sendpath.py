"""Where a WHEP viewer's RTP leaves aiortc's hands: every private aiortc/aioice name used is here.

aiortc still does what is per viewer and rare: ICE, DTLS and its SRTP keys, RTCP (sender and
receiver reports, NACK, PLI), and closing. Media does not go through its sender's loop: the
sender gets a track that never yields a packet, and rtpout.RtpOut writes each packet straight
to the viewer's SRTP session and ICE socket. What that needs of aiortc:

- the send parameters the peer connection hands the sender (payload type, MID extension, RTX),
  seen by wrapping the sender's `send`;
- the DTLS transport's SRTP session (`_tx_srtp`), and aioice's nominated pair for component 1
  (`_connection._nominated[1]`: its datagram transport and the remote address);
- pylibsrtp's libsrtp binding (`_binding`, the session's `_srtp`): its `protect()` copies every
  packet in and out of a fresh buffer; `SrtpSocket` protects a frame's packets in place, one
  after another in one buffer, and sends them from there;
- the sender's sender-report counters (name-mangled `__ntp_timestamp` and friends), kept current
  once per frame so that its RTCP loop reports what was really sent;
- the sender's `_retransmit` (a NACK) and `_send_keyframe` (a PLI/FIR), redirected.

aiortc, aioice and pylibsrtp are pinned (pyproject.toml); tests/edge/webrtc covers each of
these with real peer connections.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpSendParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from pylibsrtp import Session
from pylibsrtp._binding import ffi, lib  # type: ignore[import-not-found]

from edge.playback.webrtc.rtpout import RtpOut, Wire

log = logging.getLogger(__name__)

_STATS = "_RTCRtpSender__"
UDP_SEGMENT = getattr(socket, "UDP_SEGMENT", 103)  # Linux >= 4.18 (Python names it from 3.12)
_SRTP_TRAILER = 16  # the most SRTP adds to a packet (a GCM tag; HMAC-SHA1-80 adds 10)
_BUFFER = 65_536


# The kernel has no UDP_SEGMENT; or it refused this batch on this route (EINVAL when the
# segment does not fit the route's MTU, EIO when the device cannot segment).
_NO_SEGMENTATION = {errno.ENOPROTOOPT, errno.EOPNOTSUPP}
_NOT_THIS_BATCH = {errno.EINVAL, errno.EIO}
_shared: tuple[Any, memoryview] | None = None


class SrtpError(Exception):
    pass


def _buffer() -> tuple[Any, memoryview]:
    global _shared
    if _shared is None:
        buf = ffi.new("char[]", _BUFFER)
        _shared = (buf, memoryview(ffi.buffer(buf)))
    return _shared


class SrtpSocket:
    """One viewer's SRTP session and its own handle on the viewer's ICE socket.

    `send` protects a batch of packets in place in one buffer and sends them, as one datagram
    each, with one `sendmsg` asking the kernel to cut them apart (UDP_SEGMENT) when they are of
    one size, else with one `sendto` each.
    """

    # False once the kernel said it has no UDP segmentation at all: then for every viewer.
    segmenting = True

    def __init__(self, srtp: Session, sock: socket.socket, addr: tuple[str, int]) -> None:
        self.sock = sock
        self.addr = addr
        self._session = srtp  # keeps the libsrtp context alive
        self._ctx = srtp._srtp[0]
        self._len = ffi.new("int *")

    def send(self, packets: list[bytes]) -> None:
        # Sending is synchronous on the event loop's thread: one buffer serves every viewer.
        buf, view = _buffer()
        length, ctx, protect = self._len, self._ctx, lib.srtp_protect
        ends = []
        end = 0
        for packet in packets:
            size = len(packet)
            if end + size + _SRTP_TRAILER > _BUFFER:
                raise SrtpError(f"a batch of {len(packets)} packets does not fit {_BUFFER} bytes")
            ffi.memmove(buf + end, packet, size)
            length[0] = size
            status = protect(ctx, buf + end, length)
            if status:
                raise SrtpError(f"srtp_protect failed with status {status}")
            end += length[0]
            ends.append(end)
        if len(ends) > 1 and SrtpSocket.segmenting:
            segment = struct.pack("=H", ends[0])
            try:
                self.sock.sendmsg(
                    [view[:end]], [(socket.SOL_UDP, UDP_SEGMENT, segment)], 0, self.addr
                )
                return
            except OSError as exc:
                if exc.errno in _NO_SEGMENTATION:
                    log.warning("no UDP segmentation offload (%s): one datagram per packet", exc)
                    SrtpSocket.segmenting = False
                elif exc.errno not in _NOT_THIS_BATCH:
                    raise  # EAGAIN (BlockingIOError) included: the caller skips
                # else this route refused this batch (its MTU, say): one datagram per packet
        start = 0
        for end in ends:
            self.sock.sendto(view[start:end], self.addr)
            start = end

    def close(self) -> None:
        self.sock.close()


class IdleTrack(MediaStreamTrack):
    """What a WHEP sender 'sends': its loop waits here for good, media goes by RtpOut."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._ended = asyncio.Event()

    async def recv(self) -> Any:
        await self._ended.wait()
        raise MediaStreamError

    def stop(self) -> None:
        self._ended.set()
        super().stop()


def attach(sender: RTCRtpSender, ask_key: Callable[[str], None]) -> RtpOut:
    """An RtpOut for `sender` (before negotiation ends): it sends once the connection is up."""
    params: list[RTCRtpSendParameters] = []
    send = sender.send

    async def capture(parameters: RTCRtpSendParameters) -> None:
        params.append(parameters)
        await send(parameters)

    setattr(sender, "send", capture)  # noqa: B010
    out = RtpOut(sender.kind, lambda: _open(sender, params[0]) if params else None, ask_key)

    async def retransmit(seq: int) -> None:
        out.retransmit(seq)

    setattr(sender, "_retransmit", retransmit)  # noqa: B010
    # PLI/FIR: aiortc flags an encoder that pre-encoded packets never reach; ask the worker.
    setattr(sender, "_send_keyframe", lambda: ask_key("viewer PLI/FIR"))  # noqa: B010
    return out


def _open(sender: RTCRtpSender, parameters: RTCRtpSendParameters) -> Wire | None:
    dtls = sender.transport
    srtp = getattr(dtls, "_tx_srtp", None)
    pair = dtls.transport._connection._nominated.get(1)
    if dtls.state != "connected" or srtp is None or pair is None:
        return None
    udp: asyncio.DatagramTransport = pair.protocol.transport
    codec = parameters.codecs[0]
    pt = codec.payloadType
    assert pt is not None  # negotiated codecs always have one
    first, tail = _template(parameters, pt, sender._ssrc)
    rtx = next(
        (
            c.payloadType
            for c in parameters.codecs
            if c.mimeType.lower().endswith("/rtx") and c.parameters.get("apt") == pt
        ),
        None,
    )

    def sent(rtp_ts: int, ntp: int, packets: int, octets: int) -> None:
        # What aiortc's own loop records after each packet; its RTCP loop sends them as the SR.
        vars(sender).update(
            {
                _STATS + "ntp_timestamp": ntp,
                _STATS + "rtp_timestamp": rtp_ts,
                _STATS + "packet_count": packets,
                _STATS + "octet_count": octets,
            }
        )

    # Our own descriptor of aioice's socket, so that sendmsg is ours to call (and to close).
    wire = SrtpSocket(srtp, udp.get_extra_info("socket").dup(), pair.remote_addr)
    return Wire(
        first_byte=first,
        payload_type=pt,
        tail=tail,
        send=wire.send,
        alive=lambda: dtls.state == "connected" and not udp.is_closing(),
        close=wire.close,
        sent=sent,
        rtx=None if rtx is None else (rtx, _template(parameters, rtx, sender._rtx_ssrc)[1]),
    )


def _template(parameters: RTCRtpSendParameters, payload_type: int, ssrc: int) -> tuple[int, bytes]:
    """The header's first byte and its part from the SSRC on, as aiortc would write them."""
    extensions = HeaderExtensionsMap()
    extensions.configure(parameters)
    packet = RtpPacket(payload_type=payload_type, ssrc=ssrc)
    packet.extensions.mid = parameters.muxId
    raw = packet.serialize(extensions)
    return raw[0], raw[8:]
