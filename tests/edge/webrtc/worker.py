"""A scripted transcoder worker, as the edge sees one: HELLO, then a live low-latency feed.

It encodes a stamped test pattern with libx264 (constrained baseline, Annex-B, SPS/PPS at every
IDR) and a tone with libopus, in real time, and sends them as the contract in
cluster/medialink/frames.py says; a KEYREQ from the edge makes its next frame an IDR.
`pts_base_us` lets a test start a successor's clock anywhere, as a real one might.
"""

from __future__ import annotations

import asyncio
import math
import time
from fractions import Fraction
from typing import Any

import av
import numpy as np

from cluster.medialink import frames
from cluster.medialink.frames import FEED_AUDIO, FEED_VIDEO, CodecConfig, FrameReader, Kind
from cluster.medialink.frames import MediaPacket as Pkt
from zoocast.harness.pattern import TestPattern

AUDIO_RATE = 48_000
AUDIO_SAMPLES = 960  # 20 ms, as the feed contract says


class ScriptedWorker:
    def __init__(
        self,
        port: int,
        stream: str,
        epoch: int,
        node: str = "t1",
        *,
        width: int = 192,
        height: int = 108,
        fps: int = 15,
        gop: int = 60,
        pts_base_us: int = 0,
    ) -> None:
        self.port, self.stream, self.epoch, self.node = port, stream, epoch, node
        self.width, self.height, self.fps, self.gop = width, height, fps, gop
        self.pts_base_us = pts_base_us
        self.received: list[frames.Frame] = []  # what the edge sent (ACCEPT, replay, KEYREQ...)
        self.keyreqs = 0
        self.sent_video = 0
        self.sent_packets = 0  # video and audio
        self.idrs = 0
        self._key_wanted = False
        self._accepted = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._writer: asyncio.StreamWriter | None = None

    async def start(self) -> ScriptedWorker:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._writer = writer
        hello = {"v": 1, "stream": self.stream, "epoch": self.epoch, "node": self.node}
        writer.write(frames.encode_json(Kind.HELLO, hello))
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._read(reader)), loop.create_task(self._feed(writer))]
        return self

    def accepted(self) -> bool:
        return any(f.kind is Kind.ACCEPT for f in self.received)

    def kill(self) -> None:
        """What kill -9 does to the link: the socket is reset, nothing more is sent."""
        for task in self._tasks:
            task.cancel()
        if self._writer is not None:
            self._writer.transport.abort()

    async def stop(self) -> None:
        self.kill()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _read(self, reader: asyncio.StreamReader) -> None:
        parser = FrameReader()
        while data := await reader.read(65536):
            for frame in parser.feed(data):
                self.received.append(frame)
                if frame.kind is Kind.ACCEPT:
                    self._accepted.set()
                if frame.kind is Kind.KEYREQ:
                    self.keyreqs += 1
                    self._key_wanted = True

    async def _feed(self, writer: asyncio.StreamWriter) -> None:
        await self._accepted.wait()
        video, audio = self._encoders()
        writer.write(
            frames.encode_codec(
                CodecConfig(FEED_VIDEO, "video", "h264", b"", "annexb", self.width, self.height)
            )
            + frames.encode_codec(
                CodecConfig(FEED_AUDIO, "audio", "opus", sample_rate=AUDIO_RATE, channels=2)
            )
        )
        pattern = TestPattern(self.width, self.height, self.fps)
        started = time.monotonic()
        audio_sent = 0
        for index in range(1 << 30):
            await asyncio.sleep(max(0.0, started + index / self.fps - time.monotonic()))
            frame = pattern.frame(index, int(time.time() * 1e6))
            if self._key_wanted:
                self._key_wanted = False
                frame.pict_type = av.video.frame.PictureType.I
            out = []
            for packet in video.encode(frame):
                pts_us = self.pts_base_us + int(packet.pts * 1_000_000 // self.fps)
                self.idrs += bool(packet.is_keyframe)
                out.append(
                    frames.encode_packet(
                        Pkt(FEED_VIDEO, pts_us, pts_us, bytes(packet), packet.is_keyframe)
                    )
                )
                self.sent_video += 1
            # Audio up to the video's time, 20 ms at a time.
            while audio_sent * AUDIO_SAMPLES * self.fps < (index + 1) * AUDIO_RATE:
                for packet in audio.encode(_tone(audio_sent)):
                    pts_us = self.pts_base_us + int(packet.pts * 1_000_000 // AUDIO_RATE)
                    out.append(frames.encode_packet(Pkt(FEED_AUDIO, pts_us, pts_us, bytes(packet))))
                audio_sent += 1
            self.sent_packets += len(out)
            writer.write(b"".join(out))
            await writer.drain()

    def _encoders(self) -> tuple[Any, Any]:
        video: Any = av.CodecContext.create("libx264", "w")
        video.width, video.height, video.pix_fmt = self.width, self.height, "yuv420p"
        video.time_base = Fraction(1, self.fps)
        video.framerate = Fraction(self.fps)
        video.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "profile": "baseline",
            "g": str(self.gop),
            "forced-idr": "1",
            "x264-params": "repeat-headers=1",
        }
        audio: Any = av.CodecContext.create("libopus", "w")
        audio.sample_rate, audio.layout, audio.format = AUDIO_RATE, "stereo", "s16"
        audio.time_base = Fraction(1, AUDIO_RATE)
        return video, audio


def _tone(index: int) -> av.AudioFrame:
    t = (np.arange(AUDIO_SAMPLES) + index * AUDIO_SAMPLES) / AUDIO_RATE
    mono = (3000 * np.sin(2 * math.pi * 440 * t)).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(
        np.repeat(mono, 2).reshape(1, -1), format="s16", layout="stereo"
    )
    frame.sample_rate = AUDIO_RATE
    frame.pts = index * AUDIO_SAMPLES
    frame.time_base = Fraction(1, AUDIO_RATE)
    return frame
