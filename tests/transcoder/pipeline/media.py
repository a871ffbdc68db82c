"""Test media: a short synthetic clip made by the ffmpeg CLI, demuxed into media-link packets.

MP4 demuxing gives exactly what RTMP ingest yields: AVCC H.264 with its avcC record, raw AAC
with its AudioSpecificConfig.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import av

from cluster.medialink.frames import CodecConfig, MediaPacket

SECONDS = 8
FPS = 15
SIZE = (426, 240)  # tall enough for both rungs of the tiny ladder (240p, 120p)


@dataclass(frozen=True)
class Media:
    codecs: list[CodecConfig]
    packets: list[MediaPacket]  # in decode order, interleaved

    def keyframes(self) -> list[int]:
        video = next(c.track for c in self.codecs if c.kind == "video")
        return [p.pts_us for p in self.packets if p.track == video and p.keyframe]

    def split(self, replay_from_us: int, live_from_us: int) -> tuple[list[MediaPacket], ...]:
        """(replay, live): a GOP-cache-like replay from a video keyframe, then the rest."""
        start = next(
            i for i, p in enumerate(self.packets) if p.keyframe and p.pts_us == replay_from_us
        )
        rest = self.packets[start:]
        replay = [p for p in rest if p.dts_us < live_from_us]
        live = [p for p in rest if p.dts_us >= live_from_us]
        return replay, live

    def until(self, end_us: int) -> list[MediaPacket]:
        return [p for p in self.packets if p.dts_us < end_us]


def make_clip(path: Path, audio: str = "aac", video: bool = True) -> Path:
    w, h = SIZE
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y"]
    if video:
        cmd += ["-f", "lavfi", "-i", f"testsrc=size={w}x{h}:rate={FPS}"]
    cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", str(SECONDS)]
    if video:
        cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-g", str(FPS), "-pix_fmt", "yuv420p"]
    cmd += ["-c:a", "aac", "-b:a", "64k"] if audio == "aac" else ["-c:a", "libopus"]
    subprocess.run([*cmd, str(path)], check=True)
    return path


def demux(path: Path) -> Media:
    codecs: list[CodecConfig] = []
    packets: list[MediaPacket] = []
    with av.open(str(path)) as container:
        for v in container.streams.video:
            vc = v.codec_context
            extradata = bytes(vc.extradata or b"")
            codecs.append(
                CodecConfig(v.index, "video", vc.name, extradata, "avcc", vc.width, vc.height)
            )
        for a in container.streams.audio:
            ac = a.codec_context
            extradata = bytes(ac.extradata or b"")
            codecs.append(
                CodecConfig(
                    a.index,
                    "audio",
                    ac.name,
                    extradata,
                    sample_rate=ac.sample_rate,
                    channels=ac.channels,
                )
            )
        for p in container.demux():
            if p.dts is None or p.pts is None or p.time_base is None:
                continue
            tb = p.time_base
            packets.append(
                MediaPacket(
                    p.stream.index,
                    int(p.pts * tb * 1_000_000),
                    int(p.dts * tb * 1_000_000),
                    bytes(p),
                    keyframe=p.is_keyframe,
                )
            )
    packets.sort(key=lambda p: p.dts_us)
    return Media(codecs, packets)
