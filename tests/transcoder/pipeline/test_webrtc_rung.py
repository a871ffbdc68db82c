"""The WebRTC rung's encoder, against aiortc itself: what aiortc's sender packetizes from our
packets, its receiver depacketizes and decodes."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from aiortc.codecs.h264 import H264Decoder, H264Encoder, H264PayloadDescriptor
from aiortc.jitterbuffer import JitterFrame
from av.video.frame import PictureType, VideoFrame

from cluster.ladder import Rung
from transcoder.pipeline import avc
from transcoder.pipeline.rendition import open_encoder

SIZE = (426, 240)


def frame(n: int, key: bool) -> VideoFrame:
    w, h = SIZE
    luma = np.full((h * 3 // 2, w), (n * 12) % 256, dtype=np.uint8)
    out = VideoFrame.from_ndarray(luma, format="yuv420p")
    out.pts, out.time_base = n * 6000, Fraction(1, 90_000)
    out.pict_type = PictureType.I if key else PictureType.NONE
    return out


def test_aiortc_packetizes_and_decodes_the_webrtc_rung() -> None:
    encoder = open_encoder(Rung("240p", 240, 400, webrtc=True), *SIZE, "ultrafast", 15, True)
    sender, receiver = H264Encoder(), H264Decoder()
    decoded, keys = 0, 0
    for n in range(20):
        for packet in encoder.encode(frame(n, key=n in (0, 9))):
            nals = avc.split_annexb(bytes(packet))
            if packet.is_keyframe:
                keys += 1
                sps = nals[0]
                assert avc.nal_type(sps) == avc.NAL_SPS and avc.nal_type(nals[1]) == avc.NAL_PPS
                assert (sps[1], sps[2] & 0x40) == (66, 0x40)  # constrained baseline
            payloads, timestamp = sender.pack(packet)
            data = b"".join(H264PayloadDescriptor.parse(p)[1] for p in payloads)
            decoded += len(receiver.decode(JitterFrame(data=data, timestamp=timestamp)))
    assert (decoded, keys) == (20, 2)
