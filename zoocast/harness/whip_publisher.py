"""A synthetic WHIP publisher: the stamped test pattern + tone over WebRTC, as OBS or a browser would.

`--codec h264` (the default) encodes here and hands aiortc the packets, like OBS: H.264
constrained baseline 42e01f, a fixed keyframe interval, PLI ignored. `--codec vp8` lets aiortc
encode, like a browser, which answers PLI. `--no-candidates` strips the candidates from the offer
as OBS's does (the edge must find this publisher through its connectivity checks). The session
ends with DELETE on the Location, as OBS does when it stops streaming.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import socket
import sys
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpSender, RTCSessionDescription

from cluster.ids import stream_id
from cluster.webrtc.ice import announce_hosts, configuration
from zoocast.harness.rtc_tracks import EncodedPatternTrack, PatternTrack, ToneTrack

log = logging.getLogger(__name__)


class WhipError(RuntimeError):
    """The edge refused the publish or the connection never came up."""


@dataclass(frozen=True)
class WhipStats:
    frames: int
    location: str
    connected: bool


def whip_url(base: str, stream: str) -> str:
    """`http://HOST:PORT` or the full endpoint `http://HOST:PORT/whip/STREAM` -> the endpoint."""
    path = urlsplit(base).path.rstrip("/")
    if path.endswith("/whip/" + stream):
        return base
    return base.rstrip("/") + "/whip/" + stream_id(stream)


def strip_candidates(sdp: str) -> str:
    """The offer as OBS sends it: no candidates, no end-of-candidates (no trickle either)."""
    keep = [
        line
        for line in sdp.splitlines()
        if not line.startswith(("a=candidate:", "a=end-of-candidates"))
    ]
    return "\r\n".join(keep) + "\r\n"


def _announce_for(url: str) -> None:
    # aioice leaves loopback out of the host candidates; an edge on this machine needs it.
    host = urlsplit(url).hostname or ""
    try:
        addr = ipaddress.ip_address(socket.gethostbyname(host))
    except (OSError, ValueError):
        return
    if addr.is_loopback:
        announce_hosts(["127.0.0.1"])


def _tracks(
    codec: str, width: int, height: int, fps: int, gop: float, bitrate: int, audio: bool
) -> list[MediaStreamTrack]:
    video: MediaStreamTrack
    if codec == "h264":
        video = EncodedPatternTrack(width, height, fps, gop, bitrate)
    else:
        video = PatternTrack(width, height, fps)
    return [video, ToneTrack()] if audio else [video]


async def publish_whip(
    url: str,
    key: str,
    *,
    width: int = 320,
    height: int = 180,
    fps: int = 30,
    duration: float | None = None,
    gop: float = 1.0,
    bitrate: int = 400_000,
    codec: str = "h264",
    audio: bool = True,
    candidates: bool = True,
    stop: asyncio.Event | None = None,
    connect_timeout: float = 10.0,
) -> WhipStats:
    """Publish to the WHIP endpoint `url` until `duration` s pass or `stop` is set; then DELETE."""
    if codec not in ("h264", "vp8"):
        raise ValueError(f"codec must be h264 or vp8, not {codec!r}")
    stop = stop or asyncio.Event()
    _announce_for(url)
    pc = RTCPeerConnection(configuration())
    tracks = _tracks(codec, width, height, fps, gop, bitrate, audio)
    for track in tracks:
        transceiver = pc.addTransceiver(track, direction="sendonly")
        if track.kind == "video":
            caps = RTCRtpSender.getCapabilities("video")
            assert caps is not None
            names = {codec.upper(), "RTX"}
            transceiver.setCodecPreferences([c for c in caps.codecs if c.name.upper() in names])
    connected = asyncio.Event()

    @pc.on("connectionstatechange")
    def _state() -> None:
        if pc.connectionState == "connected":
            connected.set()

    auth = {"Authorization": f"Bearer {key}"}
    location = ""
    try:
        await pc.setLocalDescription(await pc.createOffer())
        offer = pc.localDescription.sdp
        async with aiohttp.ClientSession() as http:
            headers = {**auth, "Content-Type": "application/sdp"}
            sdp = offer if candidates else strip_candidates(offer)
            async with http.post(url, data=sdp.encode(), headers=headers) as resp:
                body = await resp.text()
                if resp.status != 201:
                    raise WhipError(f"POST {url}: {resp.status} {body.strip()}")
                location = urljoin(str(resp.url), resp.headers["Location"])
            await pc.setRemoteDescription(RTCSessionDescription(body, "answer"))
            try:
                await asyncio.wait_for(connected.wait(), connect_timeout)
            except TimeoutError:
                raise WhipError(f"not connected within {connect_timeout:g}s") from None
            log.info("publishing to %s (%s)", location, codec)
            try:
                await asyncio.wait_for(stop.wait(), duration)
            except TimeoutError:
                pass
            async with http.delete(location, headers=auth) as resp:
                if resp.status >= 300:
                    log.warning("DELETE %s: %s", location, resp.status)
    finally:
        await pc.close()
    frames = sum(t.frames for t in tracks if isinstance(t, PatternTrack | EncodedPatternTrack))
    return WhipStats(frames, location, connected.is_set())


def main_whip_publish_test(argv: list[str]) -> int:
    """`zoocast publish-test STREAM --whip URL --key KEY`: publish over WHIP until --duration or a signal."""
    parser = argparse.ArgumentParser(
        prog="zoocast publish-test", description=main_whip_publish_test.__doc__
    )
    parser.add_argument("stream")
    parser.add_argument(
        "--whip", required=True, help="http://HOST:PORT or the endpoint .../whip/STREAM"
    )
    parser.add_argument("--key", required=True, help="stream key, sent as the bearer token")
    parser.add_argument("--size", default="640x360", help="WIDTHxHEIGHT, even numbers")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--duration", type=float, help="seconds; default: until stopped")
    parser.add_argument("--gop", type=float, default=2.0, help="keyframe interval (h264), s")
    parser.add_argument("--bitrate", type=int, default=1000, help="video kbit/s (h264)")
    parser.add_argument("--codec", choices=["h264", "vp8"], default="h264")
    parser.add_argument("--no-audio", action="store_true")
    parser.add_argument("--no-candidates", action="store_true", help="offer as OBS does")
    args = parser.parse_args(argv)
    try:
        width, height = (int(part) for part in args.size.lower().split("x"))
        url = whip_url(args.whip, args.stream)
    except ValueError as exc:
        parser.error(str(exc))

    async def run() -> WhipStats:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await publish_whip(
            url,
            args.key,
            width=width,
            height=height,
            fps=args.fps,
            duration=args.duration,
            gop=args.gop,
            bitrate=args.bitrate * 1000,
            codec=args.codec,
            audio=not args.no_audio,
            candidates=not args.no_candidates,
            stop=stop,
        )

    try:
        stats = asyncio.run(run())
    except (WhipError, ValueError, aiohttp.ClientError) as exc:
        print(f"publish-test: {exc}", file=sys.stderr)
        return 1
    print(f"publish-test: sent {stats.frames} frames over WHIP to {stats.location}")
    return 0
