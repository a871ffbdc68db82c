"""Playlist rendering, checked line by line and by ffprobe-independent parsing rules."""

from __future__ import annotations

import pytest

from cluster.hot.model import RenditionInfo, SegmentEntry
from edge.playback.hls.playlist import media, multivariant


def _entries(
    msns: range, epoch: int = 1, disc_at: int | None = None, epoch_after: int = 2
) -> list[SegmentEntry]:
    out = []
    for msn in msns:
        e = epoch_after if disc_at is not None and msn >= disc_at else epoch
        out.append(
            SegmentEntry(
                msn,
                2.0,
                e,
                msn * 2_000_000,
                (msn + 1) * 2_000_000,
                1.7e9 + msn * 2,
                disc=msn == disc_at,
            )
        )
    return out


def test_media_playlist_counts_and_sequences() -> None:
    text = media(_entries(range(10, 16)), discontinuities=0)
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U"
    assert "#EXT-X-MEDIA-SEQUENCE:10" in lines
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:0" in lines
    assert "#EXT-X-TARGETDURATION:2" in lines
    assert [x for x in lines if x.endswith(".m4s")] == [f"{m}.m4s" for m in range(10, 16)]
    assert lines.count('#EXT-X-MAP:URI="init/1.mp4"') == 1
    assert "#EXT-X-DISCONTINUITY" not in lines


def test_failover_inside_window_adds_tag_and_new_map() -> None:
    text = media(_entries(range(10, 16), disc_at=13), discontinuities=1)
    lines = text.splitlines()
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:0" in lines
    i = lines.index("#EXT-X-DISCONTINUITY")
    assert lines[i + 1] == '#EXT-X-MAP:URI="init/2.mp4"'
    assert lines[i + 4] == "13.m4s"


def test_discontinuity_sequence_grows_as_the_tag_slides_out() -> None:
    before = media(_entries(range(12, 18), disc_at=13), discontinuities=1)
    at_head = media(_entries(range(13, 19), disc_at=13), discontinuities=1)
    after = media(_entries(range(14, 20), disc_at=13), discontinuities=1)
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:0" in before
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:1" in at_head and "#EXT-X-DISCONTINUITY\n" not in at_head
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:1" in after


def test_empty_window_is_an_error() -> None:
    with pytest.raises(ValueError):
        media([], 0)


def test_multivariant_lists_video_by_bandwidth_with_audio_group() -> None:
    text = multivariant(
        [
            RenditionInfo("360p", "video", 900_000, "avc1.64001e", 640, 360, 30),
            RenditionInfo("audio", "audio", 130_000, "mp4a.40.2"),
            RenditionInfo("720p", "video", 2_700_000, "avc1.64001f", 1280, 720, 30),
        ]
    )
    lines = text.splitlines()
    assert any(
        x.startswith("#EXT-X-MEDIA:TYPE=AUDIO") and 'URI="audio/index.m3u8"' in x for x in lines
    )
    infs = [x for x in lines if x.startswith("#EXT-X-STREAM-INF")]
    assert "BANDWIDTH=2830000" in infs[0] and "RESOLUTION=1280x720" in infs[0]
    assert 'CODECS="avc1.64001f,mp4a.40.2"' in infs[0] and 'AUDIO="aud"' in infs[0]
    assert lines[lines.index(infs[1]) + 1] == "360p/index.m3u8"
