"""Encoded frames out of aiortc's receivers, only for the receivers WHIP ingest marks.

aiortc (pinned at 1.16.0) has no public way to receive without decoding. Its RTCRtpReceiver hands
every frame its jitter buffer reassembled (an H.264 access unit in Annex-B, a whole VP8 frame, one
Opus packet) to a decoder thread, which asks the module-level `aiortc.rtcrtpreceiver.get_decoder`
for a decoder when the codec changes. `install()` replaces that one function, once per process,
with a dispatcher: a thread that is the decoder thread of a receiver passed to `mark()` gets a
pass-through "decoder" that wraps the frame in an `av.Packet` (RTP timestamp as pts, 1/clock rate
as time base, so `track.recv()` yields packets); every other thread gets aiortc's own decoder. An
ordinary aiortc consumer in the same process (a WHEP viewer in a test) therefore still decodes.

The decoder thread is recognised through the receiver's private `__decoder_thread` attribute;
`get_decoder` is called from inside that thread, never before `receive()` has set the attribute.
tests/edge/whip/test_passthrough.py runs both kinds of receiver side by side against the real
aiortc, so an upgrade that renames either private name fails there rather than in production.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from fractions import Fraction

import av
from aiortc import RTCRtpReceiver, rtcrtpreceiver
from aiortc.codecs.base import Decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av.frame import Frame

_THREAD_ATTR = "_RTCRtpReceiver__decoder_thread"

_lock = threading.Lock()
_marked: weakref.WeakSet[RTCRtpReceiver] = weakref.WeakSet()
_aiortc_get_decoder: Callable[[RTCRtpCodecParameters], Decoder] | None = None


class PassThrough(Decoder):
    """A "decoder" that returns the encoded frame it is given, as an av.Packet."""

    def __init__(self, codec: RTCRtpCodecParameters) -> None:
        self.codec = codec
        self.time_base = Fraction(1, codec.clockRate)

    def decode(self, encoded_frame: JitterFrame) -> list[Frame]:
        packet = av.Packet(encoded_frame.data)
        packet.pts = packet.dts = encoded_frame.timestamp
        packet.time_base = self.time_base
        # aiortc only queues what a decoder returns; the track's consumer checks the type.
        return [packet]  # type: ignore[list-item]


def install() -> None:
    """Put the dispatcher in place of aiortc's `get_decoder` (idempotent)."""
    global _aiortc_get_decoder
    with _lock:
        if _aiortc_get_decoder is None:
            # Not re-exported by aiortc's typing; it is the name the decoder thread looks up.
            _aiortc_get_decoder = rtcrtpreceiver.get_decoder  # type: ignore[attr-defined]
            rtcrtpreceiver.get_decoder = _get_decoder  # type: ignore[attr-defined]


def mark(receiver: RTCRtpReceiver) -> None:
    """From now on `receiver.track.recv()` yields av.Packets, not decoded frames.

    Call before the connection starts receiving (after setRemoteDescription is fine)."""
    install()
    with _lock:
        _marked.add(receiver)


def is_marked(receiver: RTCRtpReceiver) -> bool:
    with _lock:
        return receiver in _marked


def _get_decoder(codec: RTCRtpCodecParameters) -> Decoder:
    me = threading.current_thread()
    with _lock:
        passes = any(getattr(r, _THREAD_ATTR, None) is me for r in _marked)
        original = _aiortc_get_decoder
    if passes:
        return PassThrough(codec)
    assert original is not None
    return original(codec)
