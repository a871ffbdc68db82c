"""The synthetic publisher end to end into an ffmpeg RTMP sink, and its command line."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from tests.conftest import wait_for
from tests.harness.media import read_all
from zoocast.harness.publisher import (
    PublishError,
    PublishStats,
    main_publish_test,
    publish,
    rtmp_url,
)
from zoocast.harness.timecode import Timecode


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


LISTEN, ESTABLISHED = "0A", "01"


def tcp_state(port: int, state: str) -> bool:
    """Whether a local socket on `port` is in `state`, found without connecting to it (ffmpeg's
    listen mode would take a probe connection for its one publisher)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1].endswith(f":{port:04X}") and fields[3] == state:
            return True
    return False


class Sink:
    """`ffmpeg -listen 1`: an RTMP server for exactly one publisher, copying what it gets to a file."""

    def __init__(self, port: int, out: Path) -> None:
        self.port, self.out = port, out
        cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-listen", "1"]
        cmd += ["-i", f"rtmp://127.0.0.1:{port}/live/x", "-c", "copy", str(out)]
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
        wait_for(
            lambda: tcp_state(port, LISTEN) or self.proc.poll() is not None, "ffmpeg to listen"
        )

    def finish(self) -> None:
        """Wait for ffmpeg to end after the publisher left, and check it was happy."""
        rc = self.proc.wait(timeout=10)
        assert rc == 0, self.proc.stderr.read() if self.proc.stderr else ""

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()


@pytest.fixture
def sinks(tmp_path: Path) -> Iterator[list[Sink]]:
    """Sinks a test starts; all killed at the end."""
    started: list[Sink] = []
    yield started
    for sink in started:
        sink.close()


def codes_in(path: Path) -> list[Timecode | None]:
    with av.open(str(path)) as container:
        return read_all(list(container.decode(video=0)))


def test_publishes_stamped_frames_in_real_time(sinks: list[Sink], tmp_path: Path) -> None:
    sink = Sink(free_port(), tmp_path / "out.flv")
    sinks.append(sink)
    started = time.time()
    stats = publish(rtmp_url("x", port=sink.port, key="secret"), fps=30, duration=3.0, gop=1.0)
    finished = time.time()
    sink.finish()
    assert stats.connections == 1
    assert 75 <= stats.frames <= 90  # the clock runs from the call: connecting takes some
    with av.open(str(sink.out)) as container:
        kinds = sorted(s.type for s in container.streams)
        assert kinds == ["audio", "video"]
        video = container.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (320, 180)
        frames = list(container.decode(video))
    codes = read_all(frames)
    assert None not in codes and len(codes) == stats.frames
    captures = [c.capture_us / 1e6 for c in codes if c]
    counters = [c.counter for c in codes if c]
    # The counter is the frame slot since publish() began: consecutive means none skipped.
    assert counters == list(range(counters[0], counters[0] + len(codes)))
    assert captures == sorted(captures)
    assert started <= captures[0] < started + 0.5
    assert finished - 0.5 < captures[-1] <= finished
    # Paced by the wall clock: frame k is captured about k / fps after the first.
    drift = [abs(c - captures[0] - k / 30) for k, c in enumerate(captures)]
    assert max(drift) < 0.1


def test_reconnects_after_the_server_dies(sinks: list[Sink], tmp_path: Path) -> None:
    port = free_port()
    sinks.append(Sink(port, tmp_path / "one.flv"))
    result: list[PublishStats] = []
    url = rtmp_url("x", port=port)
    worker = threading.Thread(target=lambda: result.append(publish(url, fps=15, duration=4.0)))
    worker.start()
    try:
        wait_for(lambda: tcp_state(port, ESTABLISHED), "the publisher to connect")
        time.sleep(1.0)  # fault injection timing: let it stream for a second, then crash the server
        sinks[0].proc.kill()  # no goodbye: the publisher finds out on its next write
        sinks.append(Sink(port, tmp_path / "two.flv"))
    finally:
        worker.join(timeout=15)
    sinks[1].finish()
    assert result and result[0].connections == 2
    second = codes_in(sinks[1].out)
    assert None not in second and len(second) >= 15
    # The counter runs on across connections; the new connection starts with a keyframe.
    counters = [c.counter for c in second if c]
    assert counters[0] > 15 and counters == list(range(counters[0], counters[0] + len(counters)))


def test_stops_on_event_and_gives_up_when_refused() -> None:
    stop = threading.Event()
    stop.set()
    assert publish(rtmp_url("x", port=free_port()), stop=stop).frames == 0
    started = time.monotonic()
    with pytest.raises(PublishError, match="3 failed attempts"):
        publish(rtmp_url("x", port=free_port()), retries=2, backoff=0.01, max_backoff=0.02)
    assert time.monotonic() - started < 3


def test_rtmp_url_and_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert rtmp_url("cam-1", "10.0.0.1", 1935, "k") == "rtmp://10.0.0.1:1935/live/cam-1?key=k"
    assert rtmp_url("cam-1") == "rtmp://127.0.0.1:1935/live/cam-1"
    assert rtmp_url("c", key="a b&c").endswith("/live/c?key=a%20b%26c")
    assert main_publish_test(["cam", "--fps", "0"]) == 1
    assert main_publish_test(["cam", "--size", "30x17"]) == 1
    with pytest.raises(SystemExit) as bad_id:
        main_publish_test(["../etc", "--duration", "1"])
    assert bad_id.value.code == 2
    with pytest.raises(SystemExit):
        main_publish_test(["cam", "--size", "big"])
    argv = ["cam", "--port", str(free_port()), "--size", "64x36", "--duration", "0.5"]
    assert main_publish_test(argv) == 1  # nothing listens: a clear error, not a silent success
    assert "never connected" in capsys.readouterr().err
