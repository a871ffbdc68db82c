"""Media playlist parsing on sample playlists: sequences, maps, discontinuities, LL-HLS noise."""

from __future__ import annotations

import pytest

from zoocast.harness.playlist import PlaylistError, parse_attributes, parse_media_playlist

BASE = "http://127.0.0.1:8080/hls/s1/120p/index.m3u8"

FAILOVER = """#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.5
#EXT-X-PART-INF:PART-TARGET=0.5
#EXT-X-MEDIA-SEQUENCE:41
#EXT-X-DISCONTINUITY-SEQUENCE:3
#EXT-X-MAP:URI="init-7.mp4"
#EXT-X-PROGRAM-DATE-TIME:2026-11-22T14:00:00.000Z
#EXTINF:2.000,
seg41.m4s
#EXTINF:1.967,
seg42.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="/hls/s1/120p/init-8.mp4"
#EXTINF:2.000,live
seg43.m4s
#EXT-X-PART:DURATION=0.5,URI="seg44.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.5,URI="seg44.1.m4s"
#EXTINF:1.000,
#EXT-X-GAP
seg44.m4s
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg45.0.m4s"
"""


def test_failover_playlist() -> None:
    pl = parse_media_playlist(FAILOVER, base_url=BASE)
    assert (pl.media_sequence, pl.discontinuity_sequence, pl.target_duration) == (41, 3, 2.0)
    assert not pl.ended
    assert [s.msn for s in pl.segments] == [41, 42, 43, 44]
    assert pl.last_msn == 44
    assert [s.discontinuity for s in pl.segments] == [False, False, True, False]
    assert [s.discontinuity_seq for s in pl.segments] == [3, 3, 4, 4]
    assert [s.duration for s in pl.segments] == [2.0, 1.967, 2.0, 1.0]
    assert [s.gap for s in pl.segments] == [False, False, False, True]
    root = "http://127.0.0.1:8080/hls/s1/120p/"
    assert pl.segments[0].uri == root + "seg41.m4s"
    assert [s.map_uri for s in pl.segments] == [root + "init-7.mp4"] * 2 + [root + "init-8.mp4"] * 2


def test_vod_without_base_url() -> None:
    text = "#EXTM3U\r\n#EXT-X-TARGETDURATION:1\r\n#EXTINF:1,\r\na.ts\r\n\r\n#EXT-X-ENDLIST\r\n"
    pl = parse_media_playlist(text)
    assert pl.ended and pl.media_sequence == 0
    assert [(s.msn, s.uri, s.map_uri) for s in pl.segments] == [(0, "a.ts", None)]


def test_empty_live_playlist() -> None:
    pl = parse_media_playlist("#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:9\n")
    assert pl.segments == () and pl.last_msn is None


def test_attributes_keep_commas_inside_quotes() -> None:
    attrs = parse_attributes('URI="a,b.mp4",BYTERANGE="720@0",BANDWIDTH=800000')
    assert attrs == {"URI": "a,b.mp4", "BYTERANGE": "720@0", "BANDWIDTH": "800000"}


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n120p/index.m3u8\n",
        "#EXTM3U\nseg.m4s\n",
        "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:x\n",
        "#EXTM3U\n#EXTINF:abc,\nseg.m4s\n",
        "#EXTM3U\n#EXT-X-MAP:BYTERANGE=1\n",
    ],
)
def test_rejects(text: str) -> None:
    with pytest.raises(PlaylistError):
        parse_media_playlist(text)
