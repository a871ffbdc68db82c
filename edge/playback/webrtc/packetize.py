"""H.264 access units cut into RTP payloads (RFC 6184: single NAL units, STAP-A, FU-A).

The cut depends on the bytes alone, so the feed cuts each access unit once and every viewer's
RtpOut sends the same payloads. aiortc's `H264Encoder._split_bitstream` and `_packetize` are
static and do exactly this; aiortc is pinned, and tests/edge/webrtc checks that a viewer's
aiortc receiver rebuilds and decodes the frames.
"""

from __future__ import annotations

from aiortc.codecs.h264 import H264Encoder


def cut(data: bytes) -> list[bytes]:
    return H264Encoder._packetize(H264Encoder._split_bitstream(data))
