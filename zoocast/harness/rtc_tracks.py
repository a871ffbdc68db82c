"""aiortc media tracks for the synthetic WebRTC publisher: the stamped test pattern and the tone.

`EncodedPatternTrack` encodes H.264 itself and hands aiortc `av.Packet`s, which aiortc only
packetizes: like OBS, keyframes come at a fixed interval and a PLI changes nothing. `PatternTrack`
hands aiortc raw frames, so aiortc encodes (VP8 or H.264) and answers PLI as a browser does.
Both pace frames on the wall clock (frames are skipped, never bunched, when the machine falls
behind) and stamp each frame with the wall clock just before it is encoded.
"""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction
from typing import Any

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av.frame import Frame
from av.packet import Packet
from av.video.codeccontext import VideoCodecContext

from zoocast.harness.pattern import TestPattern, Tone

OPUS_FRAME = 960  # 20 ms at 48 kHz: one Opus packet per frame


class _Pacer:
    """Slot k is due at start + k / rate; a late caller skips to the current slot."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.start: float | None = None
        self.next = 0

    async def wait(self) -> int:
        now = time.monotonic()
        if self.start is None:
            self.start = now
        slot = max(self.next, int((now - self.start) * self.rate))
        await asyncio.sleep(max(0.0, self.start + slot / self.rate - now))
        self.next = slot + 1
        return slot


class PatternTrack(MediaStreamTrack):
    """Raw stamped frames; aiortc encodes them with the negotiated codec."""

    kind = "video"

    def __init__(self, width: int, height: int, fps: int) -> None:
        super().__init__()
        self.pattern = TestPattern(width, height, fps)
        self.pacer = _Pacer(fps)
        self.frames = 0

    async def recv(self) -> Frame:
        if self.readyState != "live":
            raise MediaStreamError
        slot = await self.pacer.wait()
        self.frames += 1
        return self.pattern.frame(slot, time.time_ns() // 1000)


class EncodedPatternTrack(MediaStreamTrack):
    """Stamped frames encoded here as H.264 constrained baseline (what aiortc negotiates), Annex-B
    with SPS/PPS before every IDR, one IDR every `gop` seconds, no B-frames."""

    kind = "video"

    def __init__(self, width: int, height: int, fps: int, gop: float, bitrate: int) -> None:
        super().__init__()
        self.pattern = TestPattern(width, height, fps)
        self.pacer = _Pacer(fps)
        self.frames = 0
        keyint = max(1, round(gop * fps))
        codec = av.CodecContext.create("libx264", "w")
        assert isinstance(codec, VideoCodecContext)
        codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
        codec.time_base = Fraction(1, fps)
        codec.framerate = Fraction(fps, 1)
        codec.bit_rate = bitrate
        codec.profile = "Constrained Baseline"
        # level 3.1 is what the 42e01f profile-level-id announces.
        codec.options = {
            "preset": "veryfast",
            "tune": "zerolatency",
            "level": "31",
            "x264-params": f"keyint={keyint}:min-keyint={keyint}:scenecut=0:repeat-headers=1",
        }
        self.codec = codec
        self._pending: list[Packet[Any]] = []

    async def recv(self) -> Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        while not self._pending:
            slot = await self.pacer.wait()
            frame = self.pattern.frame(slot, time.time_ns() // 1000)
            self.frames += 1
            # zerolatency: one packet out per frame in; the thread keeps x264 off the event loop.
            self._pending = list(await asyncio.to_thread(self.codec.encode, frame))
        return self._pending.pop(0)


class ToneTrack(MediaStreamTrack):
    """The 440 Hz tone as 20 ms s16 frames (aiortc's Opus encoder takes only s16)."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.tone = Tone(samples=OPUS_FRAME)
        self.pacer = _Pacer(self.tone.sample_rate / OPUS_FRAME)
        self.resampler = av.AudioResampler(format="s16", layout="mono", rate=self.tone.sample_rate)

    async def recv(self) -> Frame:
        if self.readyState != "live":
            raise MediaStreamError
        slot = await self.pacer.wait()
        # A skipped slot is silence in real life too; keep the tone's clock on the wall clock.
        self.tone.next_pts = slot * OPUS_FRAME
        frame = self.tone.frame()
        out = self.resampler.resample(frame)
        assert len(out) == 1
        out[0].pts, out[0].time_base = frame.pts, frame.time_base
        return out[0]
