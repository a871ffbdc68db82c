"""A measuring WHEP viewer: a WHEP URL in, one FrameRecord per decoded video frame out.

It plays the stream as any WHEP client does (aiortc, recvonly audio and video, one POST with a
complete offer, DELETE on leave) and decodes normally. Each decoded frame's arrival wall time
and the capture time read from its timecode give glass-to-glass latency; the largest step in
capture time is the failover gap (analysis.gaps). It also keeps the RTP timestamps of the video
frames, unwrapped, so a test can check they never go backwards across a transcoder switch.

If this process also runs a WHIP ingest, aiortc's receivers may hand out encoded packets
instead of frames (see edge/ingest/whip/passthrough.py); the viewer then decodes them itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urljoin

import aiohttp
import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from cluster.webrtc.ice import announce_hosts, configuration
from zoocast.harness import timecode
from zoocast.harness.analysis import FrameRecord, Gaps, Latency, gaps, latency
from zoocast.harness.frames import luma

log = logging.getLogger(__name__)

VIDEO_CLOCK = 90_000


class WhepError(Exception):
    pass


class WhepViewer:
    def __init__(
        self,
        url: str,
        *,
        hosts: Sequence[str] = ("127.0.0.1",),
        stun: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self.clock = clock
        self.records: list[FrameRecord] = []
        self.rtp_timestamps: list[int] = []  # video, unwrapped 90 kHz
        self.audio_frames = 0
        self.location: str | None = None
        announce_hosts(hosts)
        self.pc = RTCPeerConnection(configuration(stun))
        self._tasks: list[asyncio.Task[None]] = []
        self._decoders: dict[str, Any] = {}  # only when receivers hand out packets

    async def start(self) -> WhepViewer:
        try:
            await self._negotiate()
        except BaseException:
            await self.pc.close()
            raise
        return self

    async def _negotiate(self) -> None:
        pc = self.pc
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
        pc.on("track", self._on_track)
        # aiortc gathers every candidate in setLocalDescription: the offer is complete (no trickle).
        await pc.setLocalDescription(await pc.createOffer())
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                self.url,
                data=pc.localDescription.sdp,
                headers={"Content-Type": "application/sdp"},
            ) as resp,
        ):
            body = await resp.text()
            if resp.status != 201:
                raise WhepError(f"POST {self.url}: {resp.status} {body}")
            self.location = urljoin(self.url, resp.headers["Location"])
        await pc.setRemoteDescription(RTCSessionDescription(body, "answer"))

    async def stop(self) -> None:
        if self.location is not None:
            try:
                async with aiohttp.ClientSession() as http, http.delete(self.location):
                    pass
            except aiohttp.ClientError as exc:
                log.info("WHEP DELETE %s failed: %s", self.location, exc)
        await self.pc.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def gaps(self) -> Gaps:
        return gaps(self.records)

    def latency(self) -> Latency:
        return latency(self.records)

    def readable(self) -> list[FrameRecord]:
        return [r for r in self.records if r.capture is not None]

    def _on_track(self, track: MediaStreamTrack) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(self._consume(track)))

    async def _consume(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                item = await track.recv()
                for frame in self._frames(track.kind, item):
                    if isinstance(frame, av.VideoFrame):
                        self._video(frame)
                    else:
                        self.audio_frames += 1
        except MediaStreamError:
            pass

    def _frames(self, kind: str, item: Any) -> list[Any]:
        if not isinstance(item, av.Packet):
            return [item]
        decoder: Any = self._decoders.get(kind)
        if decoder is None:
            decoder = av.CodecContext.create("h264" if kind == "video" else "opus", "r")
            self._decoders[kind] = decoder
        try:
            frames = list(decoder.decode(item))
        except av.FFmpegError:
            return []
        for frame in frames:
            frame.pts = item.pts
        return frames

    def _video(self, frame: av.VideoFrame) -> None:
        arrival = self.clock()
        code = timecode.read(luma(frame))
        if frame.pts is not None:
            self._timestamp(int(frame.pts))
        self.records.append(
            FrameRecord(
                arrival=arrival,
                capture=None if code is None else code.capture_us / 1e6,
                counter=None if code is None else code.counter,
                msn=0,
                discontinuity=False,
                pts=None if frame.pts is None else frame.pts / VIDEO_CLOCK,
            )
        )

    def _timestamp(self, raw: int) -> None:
        stamps = self.rtp_timestamps
        if not stamps:
            stamps.append(raw)
            return
        # RTP timestamps are 32-bit: take the nearest unwrapped value to the previous one.
        prev = stamps[-1]
        delta = (raw - prev) % (1 << 32)
        if delta >= 1 << 31:
            delta -= 1 << 32
        stamps.append(prev + delta)


async def watch(url: str, seconds: float) -> WhepViewer:
    """Play `url` for `seconds` and return the viewer with its records (stopped)."""
    viewer = await WhepViewer(url).start()
    try:
        await asyncio.sleep(seconds)
    finally:
        await viewer.stop()
    return viewer


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m zoocast.harness.whep_viewer URL`: glass-to-glass latency and the largest gap."""
    import argparse

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("url", help="the WHEP endpoint, e.g. http://127.0.0.1:8080/whep/demo")
    p.add_argument("--seconds", type=float, default=10.0)
    args = p.parse_args(argv)
    viewer = asyncio.run(watch(args.url, args.seconds))
    readable = viewer.readable()
    print(f"{len(viewer.records)} frames decoded, {len(readable)} with a capture code")
    if len(readable) >= 2:
        lat, g = viewer.latency(), viewer.gaps()
        print(f"glass-to-glass: p50 {lat.p50 * 1000:.0f} ms, p90 {lat.p90 * 1000:.0f} ms, "
              f"max {lat.max * 1000:.0f} ms")  # fmt: skip
        print(f"largest content gap {g.content_gap:.3f} s, stall {g.stall:.3f} s")
    return 0 if readable else 1


if __name__ == "__main__":
    raise SystemExit(main())
