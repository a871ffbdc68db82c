"""A whole cluster as real processes (`zoocast up` minus the demo), with helpers to publish and watch."""

from __future__ import annotations

import io
import re
import signal
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import pytest

from tests.conftest import wait_for
from zoocast.local.demo import api
from zoocast.local.servers import free_port
from zoocast.local.up import LocalCluster


@contextmanager
def running_cluster(root: Path, **shape: Any) -> Iterator[LocalCluster]:
    """A tiny-ladder cluster as real processes (3 transcoders, 1 edge unless `shape` says)."""
    settings: dict[str, Any] = {"ladder": "tiny", "transcoders": 3, "session_timeout": 1.0}
    c = LocalCluster(root, http_port=free_port(), rtmp_port=free_port(), **{**settings, **shape})
    c.start()
    try:
        yield c
    finally:
        c.stop()
        for child in (root / "logs").glob("*.log"):
            # Keep the logs of a failed run readable in the pytest output.
            text = child.read_text(errors="replace")
            if "Traceback" in text:
                print(f"===== {child.name} =====\n{text[-6000:]}")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    with running_cluster(tmp_path / "cluster") as c:
        yield c


def base(c: LocalCluster) -> str:
    return f"http://127.0.0.1:{c.http_port}"


def create(c: LocalCluster, stream: str) -> str:
    return str(api(base(c), "POST", "/api/streams", c.admin_token, {"stream": stream})["key"])


def stream_info(c: LocalCluster, stream: str) -> dict[str, Any]:
    return dict(api(base(c), "GET", f"/api/streams/{stream}"))


def ffmpeg_publish(
    c: LocalCluster, stream: str, key: str, seconds: float, size: str = "426x240"
) -> subprocess.Popen[bytes]:
    url = f"rtmp://127.0.0.1:{c.rtmp_port}/live/{stream}?key={key}"
    cmd = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
        "-f", "lavfi", "-i", f"testsrc=size={size}:rate=15",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", str(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "15", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "64k",
        "-f", "flv", url,
    ]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def get(url: str) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return bytes(resp.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise


@dataclass(frozen=True)
class Seg:
    msn: int
    uri: str
    map_uri: str
    disc_seq: int


@dataclass(frozen=True)
class MediaPlaylist:
    media_sequence: int
    disc_sequence: int
    segments: list[Seg]
    text: str


def parse_media(text: str) -> MediaPlaylist:
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U", text
    msn = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text).group(1))  # type: ignore[union-attr]
    disc = int(re.search(r"#EXT-X-DISCONTINUITY-SEQUENCE:(\d+)", text).group(1))  # type: ignore[union-attr]
    segs, cur_map, d, n = [], "", disc, msn
    for line in lines:
        if line.startswith("#EXT-X-MAP:"):
            cur_map = line.split('URI="', 1)[1].rstrip('"')
        elif line == "#EXT-X-DISCONTINUITY":
            d += 1
        elif line and not line.startswith("#"):
            segs.append(Seg(n, line, cur_map, d))
            n += 1
    return MediaPlaylist(msn, disc, segs, text)


def media_playlist(c: LocalCluster, stream: str, rendition: str) -> MediaPlaylist | None:
    raw = get(f"{base(c)}/hls/{stream}/{rendition}/index.m3u8")
    return parse_media(raw.decode()) if raw else None


def decode_segment(
    c: LocalCluster, stream: str, rendition: str, seg: Seg
) -> list[av.VideoFrame | av.AudioFrame]:
    root = f"{base(c)}/hls/{stream}/{rendition}/"
    init, data = get(root + seg.map_uri), get(root + seg.uri)
    assert init is not None and data is not None, f"missing {seg}"
    with av.open(io.BytesIO(init + data)) as container:
        return list(container.decode(container.streams[0]))


def wait_segments(
    c: LocalCluster, stream: str, rendition: str, count: int, timeout: float = 30.0
) -> MediaPlaylist:
    def enough() -> MediaPlaylist | None:
        pl = media_playlist(c, stream, rendition)
        return pl if pl and len(pl.segments) >= count else None

    result: MediaPlaylist = wait_for(enough, f"{count} segments of {stream}/{rendition}", timeout)
    return result


def carrier(c: LocalCluster, stream: str) -> tuple[str, int]:
    pl = stream_info(c, stream)["placement"]
    assert pl and pl["state"] == "placed", pl
    return str(pl["transcoder"]), int(pl["epoch"])


def signal_group(c: LocalCluster, node: str, sig: signal.Signals) -> None:
    """Signal a role's whole process group: the node and the worker processes it started."""
    import os

    os.killpg(c.child(node).proc.pid, sig)
