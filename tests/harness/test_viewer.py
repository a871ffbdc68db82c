"""The HLS follower against a loopback HTTP server serving real fMP4 segments with stamped frames."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from tests.conftest import wait_for
from tests.harness.media import fmp4_segments, stamped_frames
from zoocast.harness.viewer import HlsFollower, decode_segment, discontinuities, gaps, msn_monotonic

FPS = 15
BASE = "/hls/s/120p/"
T0_US = 1_800_000_000_000_000


class Files(http.server.ThreadingHTTPServer):
    files: dict[str, bytes]


class Handler(http.server.BaseHTTPRequestHandler):
    server: Files

    def do_GET(self) -> None:
        body = self.server.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Files]:
    srv = Files(("127.0.0.1", 0), Handler)
    srv.files = {}
    thread = threading.Thread(target=srv.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def epoch(first_frame: int, count: int) -> tuple[list[int], bytes, list[bytes]]:
    """One transcoder's output: frames first_frame.. at FPS, 1 s segments, its own init segment."""
    times = [T0_US + (first_frame + k) * 1_000_000 // FPS for k in range(count)]
    frames = stamped_frames(212, 120, times, np.random.default_rng(first_frame))
    init, segments = fmp4_segments(frames, 212, 120, FPS, gop=FPS)
    return times, init, segments


class Live:
    """A sliding 3-segment window over epoch A's segments then epoch B's, as a transcoder writes it."""

    def __init__(self, server: Files, n_a: int, n_b: int) -> None:
        self.server, self.n_a, self.total = server, n_a, n_a + n_b

    def show(self, last: int, ended: bool = False) -> None:
        first = max(0, last - 3)
        # A discontinuity tag that slid out of the window is counted in the sequence instead.
        lines = [
            "#EXTM3U",
            "#EXT-X-VERSION:7",
            "#EXT-X-TARGETDURATION:1",
            f"#EXT-X-MEDIA-SEQUENCE:{first}",
            f"#EXT-X-DISCONTINUITY-SEQUENCE:{int(first > self.n_a)}",
        ]
        for i in range(first, last):
            if i == self.n_a:
                lines.append("#EXT-X-DISCONTINUITY")
            if i == first or i == self.n_a:
                lines.append(f'#EXT-X-MAP:URI="{"a" if i < self.n_a else "b"}.mp4"')
            lines += ["#EXTINF:1.0,", f"{i}.m4s"]
        if ended:
            lines.append("#EXT-X-ENDLIST")
        self.server.files[BASE + "index.m3u8"] = "\n".join(lines).encode()


def test_follows_across_a_failover(server: Files) -> None:
    # Transcoder A carries 3 s; B takes over after 1 s of content is lost, with a new init segment.
    times_a, init_a, segs_a = epoch(0, 3 * FPS)
    times_b, init_b, segs_b = epoch(4 * FPS, 2 * FPS)
    server.files[BASE + "a.mp4"], server.files[BASE + "b.mp4"] = init_a, init_b
    for i, seg in enumerate(segs_a + segs_b):
        server.files[f"{BASE}{i}.m4s"] = seg
    live = Live(server, len(segs_a), len(segs_b))
    follower = HlsFollower(f"http://127.0.0.1:{server.server_address[1]}{BASE}index.m3u8")
    live.show(2)
    follower.poll()  # joins at the live edge: segment 1 only
    for last in range(3, live.total + 1):
        live.show(last, ended=last == live.total)
        follower.poll()
    assert follower.ended and not follower.errors and not follower.skipped, follower.errors
    records = follower.records
    assert [r.capture for r in records] == [t / 1e6 for t in times_a[FPS:] + times_b]
    assert [r.msn for r in records] == [1 + i // FPS for i in range(4 * FPS)]
    assert msn_monotonic(records) and discontinuities(records) == 1
    assert records[2 * FPS].discontinuity
    g = gaps(records)
    assert g.content_gap == pytest.approx(1.0, abs=0.01)
    assert g.unreadable == 0 and g.repeated == 0
    assert follower.playlist_sequences == [0, 0, 1, 2]
    assert follower.sequence_rewinds == []


def test_records_skips_and_rewinds(server: Files) -> None:
    _, init, segs = epoch(0, 5 * FPS)
    server.files[BASE + "a.mp4"] = init
    for i, seg in enumerate(segs):
        server.files[f"{BASE}{i}.m4s"] = seg
    live = Live(server, n_a=5, n_b=0)
    follower = HlsFollower(f"http://127.0.0.1:{server.server_address[1]}{BASE}index.m3u8")
    live.show(1)
    follower.poll()
    live.show(5)  # the follower was away: segments 1 left the window unseen
    follower.poll()
    assert follower.skipped == [1]
    assert [r.msn for r in follower.records] == [0] * FPS + [2] * FPS + [3] * FPS + [4] * FPS
    live.show(2)  # a broken server: the media sequence goes backwards
    follower.poll()
    assert follower.sequence_rewinds == [(2, 0)]
    del server.files[BASE + "index.m3u8"]
    assert follower.poll() == 0
    assert follower.errors and "404" in follower.errors[-1]


def test_background_thread_follows_until_stopped(server: Files) -> None:
    times, init, segs = epoch(0, 2 * FPS)
    server.files[BASE + "a.mp4"] = init
    for i, seg in enumerate(segs):
        server.files[f"{BASE}{i}.m4s"] = seg
    live = Live(server, n_a=2, n_b=0)
    live.show(1)
    follower = HlsFollower(
        f"http://127.0.0.1:{server.server_address[1]}{BASE}index.m3u8", poll_interval=0.02
    ).start()
    wait_for(lambda: len(follower.snapshot()) == FPS, "the first segment's frames")
    live.show(2)
    wait_for(lambda: len(follower.snapshot()) == 2 * FPS, "the second segment's frames")
    records = follower.stop()
    assert [r.capture for r in records] == [t / 1e6 for t in times]
    assert records[0].arrival <= records[-1].arrival


def test_decode_segment_reads_every_frame() -> None:
    times, init, segments = epoch(0, 2 * FPS)
    decoded = [code for seg in segments for _, code in decode_segment(init + seg)]
    assert [c.capture_us if c else None for c in decoded] == times
