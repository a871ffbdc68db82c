"""FFmpeg's WHIP muxer (the FFmpeg 8 bundled with PyAV) as a third-party client of the edge."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import av

from edge.ingest.whip.packets import AUDIO_TRACK, VIDEO_TRACK
from tests.conftest import await_for
from tests.edge.whip.conftest import Edge
from zoocast.harness import timecode
from zoocast.harness.frames import luma


async def test_ffmpeg_whip_muxer_publishes_and_deletes(edge: Edge, tmp_path: Path) -> None:
    key = await edge.registry.create("cam", "tiny")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.edge.whip.ffmpeg_push",
        edge.url("/whip/cam"), key, "4", str(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        relay = await await_for(lambda: edge.publishing.relay("cam"), "the publish to start")
        await await_for(lambda: relay.packets_in > 80, "media at the relay", 15)
        codecs, packets = relay.gop.snapshot()
        out, _ = await asyncio.wait_for(proc.communicate(), 20)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, out.decode(errors="replace")[-3000:]
    assert {c.track: c.codec for c in codecs} == {VIDEO_TRACK: "h264", AUDIO_TRACK: "opus"}
    video = [p for p in packets if p.track == VIDEO_TRACK]
    assert video[0].keyframe
    decoder = av.CodecContext.create("h264", "r")
    frames = [f for p in video for f in decoder.decode(av.Packet(p.data))]  # type: ignore[attr-defined]
    assert frames and all(timecode.read(luma(f)) for f in frames)
    # Its DELETE ended the publish.
    await await_for(lambda: relay.ended and not edge.ingest.sessions, "the publish to end")
