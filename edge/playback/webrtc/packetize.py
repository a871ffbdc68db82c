"""H.264 cut into RTP payloads once per access unit, shared by every viewer's sender.

aiortc's RTCRtpSender hands each `av.Packet` its track returns to its encoder's `pack()`, which
for H.264 splits the Annex-B access unit and cuts FU-A/STAP-A payloads, in Python, once per
viewer. The payloads depend on the bytes alone (aiortc's `H264Encoder._split_bitstream` and
`_packetize` are static), so the feed cuts each access unit once and every sender's encoder is
replaced by one that looks them up. Private API: a sender keeps its encoder in
`_RTCRtpSender__encoder` and makes one only while that is None; aiortc is pinned, and
tests/edge/webrtc/test_playback.py checks the senders really use the shared payloads.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import av
from aiortc.codecs.base import Encoder
from aiortc.codecs.h264 import H264Encoder
from aiortc.rtcrtpsender import RTCRtpSender
from av.frame import Frame


def cut(data: bytes) -> list[bytes]:
    return H264Encoder._packetize(H264Encoder._split_bitstream(data))


class SharedPayloads:
    """Payloads of the feed's latest video packets, found by packet identity."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        # The packet is kept with its payloads: while it lives, its id() cannot be reused.
        self._by_id: dict[int, tuple[av.Packet[Any], list[bytes]]] = {}
        self._order: deque[int] = deque()
        self.cuts = 0  # access units cut here
        self.hits = 0  # packets a sender took from here
        self.misses = 0  # packets a sender had to cut itself

    def add(self, packet: av.Packet[Any], data: bytes) -> None:
        self._by_id[id(packet)] = (packet, cut(data))
        self._order.append(id(packet))
        self.cuts += 1
        while len(self._order) > self.keep:
            self._by_id.pop(self._order.popleft(), None)

    def get(self, packet: av.Packet[Any]) -> list[bytes]:
        entry = self._by_id.get(id(packet))
        if entry is not None and entry[0] is packet:
            self.hits += 1
            return entry[1]
        self.misses += 1
        return cut(bytes(packet))


class SharedH264Packer(Encoder):
    """What a viewer's video sender uses instead of aiortc's H264Encoder: packets only."""

    def __init__(self, shared: SharedPayloads) -> None:
        self.shared = shared

    def encode(self, frame: Frame, force_keyframe: bool = False) -> tuple[list[bytes], int]:
        raise TypeError("a WHEP feed track yields encoded packets, never frames")

    def pack(self, packet: av.Packet[Any]) -> tuple[list[bytes], int]:
        # The feed stamps video packets in the 90 kHz RTP clock already (feed.py).
        assert packet.pts is not None
        return self.shared.get(packet), packet.pts


def share(sender: RTCRtpSender, shared: SharedPayloads) -> None:
    """Make `sender` take its H.264 payloads from `shared` (before it starts sending)."""
    setattr(sender, "_RTCRtpSender__encoder", SharedH264Packer(shared))  # noqa: B010
