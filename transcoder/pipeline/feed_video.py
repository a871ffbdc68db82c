"""The WebRTC rung's side of the feed (its x264 packets in, FEED_VIDEO packets out).

Encode once, package twice: the rung's thread hands each packet to its segmenter and here.
Timestamps go back to the publisher's clock in microseconds (the t_us the pipeline decided the
frame at, not the 90 kHz ticks rounded back), so a successor's feed continues on the same clock.
"""

from __future__ import annotations

from typing import Any

import av

from cluster.medialink.frames import FEED_VIDEO, CodecConfig, MediaPacket
from transcoder.pipeline import avc
from transcoder.pipeline.feed import Feed
from transcoder.pipeline.keyreq import KeyRequests
from transcoder.pipeline.timing import US

TICKS = 90_000  # the rendition's encoder time base


class VideoFeed:
    def __init__(self, feed: Feed, keys: KeyRequests, width: int, height: int) -> None:
        self.feed = feed
        self.keys = keys
        self._times: dict[int, int] = {}  # encoder pts -> publisher time, until the packet is out
        self._params: avc.ParameterSets | None = None
        feed.codec(
            CodecConfig(FEED_VIDEO, "video", "h264", bitstream="annexb", width=width, height=height)
        )

    def frame(self, pts: int, t_us: int, key: bool) -> bool:
        """A frame goes into the encoder; returns whether to force it to be an IDR.

        Asked even for a grid keyframe, so that a request is answered by that IDR rather than
        by a second one right after it.
        """
        self._times[pts] = t_us
        return self.keys.take(t_us) and not key

    def packet(self, packet: av.Packet[Any], data: bytes, nals: list[bytes]) -> None:
        """An encoded packet (`data` its Annex-B bytes, `nals` its units) goes to the edge."""
        if packet.pts is None or packet.dts is None:
            return
        t_us = self._times.pop(packet.pts, packet.pts * US // TICKS)
        # No B-frames: dts == pts; keep any difference x264 reports anyway.
        dts_us = t_us - (packet.pts - packet.dts) * US // TICKS
        if packet.is_keyframe:
            self._params = avc.ParameterSets.find(nals) or self._params
            data = avc.with_parameter_sets(data, nals, self._params)
        self.feed.packet(MediaPacket(FEED_VIDEO, t_us, dts_us, data, packet.is_keyframe))
