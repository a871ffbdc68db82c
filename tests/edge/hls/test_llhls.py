"""Low-Latency HLS playlists: rendered by our pure code, read back by a third-party parser (m3u8)."""

from __future__ import annotations

import m3u8
import pytest

from cluster.errors import BadRequest
from cluster.hot.model import PartEntry, SegmentEntry
from edge.playback.hls.blocking import Position, Wanted, check, parse, ready
from edge.playback.hls.playlist import LowLatency, Report, media, next_part, skippable

PART = 0.5


def _segments(msns: range, epoch: int = 1, disc_at: int | None = None) -> list[SegmentEntry]:
    out = []
    for msn in msns:
        e = epoch + 1 if disc_at is not None and msn >= disc_at else epoch
        parts: list[list[float | bool]] = [[PART, i == 0] for i in range(4)]
        out.append(
            SegmentEntry(
                msn, 2.0, e, msn * 2_000_000, (msn + 1) * 2_000_000, 1.7e9 + msn * 2,
                disc=msn == disc_at, parts=parts,
            )
        )  # fmt: skip
    return out


def _open(msn: int, n: int, epoch: int = 1) -> list[PartEntry]:
    return [PartEntry(msn, i, PART, i == 0, epoch) for i in range(n)]


def test_ll_playlist_parses_with_parts_hint_and_reports() -> None:
    ll = LowLatency(PART, 1, _open(16, 2), [Report("360p", 15, 1)])
    text = media(_segments(range(10, 16)), 0, ll)
    pl = m3u8.loads(text)
    assert pl.version == 9
    assert pl.media_sequence == 10
    assert pl.server_control.can_block_reload == "YES"
    assert pl.server_control.part_hold_back == pytest.approx(3 * PART)
    assert pl.server_control.can_skip_until == pytest.approx(12.0)
    assert pl.part_inf.part_target == pytest.approx(PART)
    # The parser shows the segment being written as a last entry with parts and no URI.
    *done, growing = pl.segments
    assert [s.uri for s in done] == [f"{m}.m4s" for m in range(10, 16)]
    assert growing.uri is None and [p.uri for p in growing.parts] == [
        "part/1/16.0.m4s",
        "part/1/16.1.m4s",
    ]
    # Parts of the last three target durations: segments 14 and 15, then the open one.
    listed = [p.uri for s in done for p in s.parts]
    assert listed == [f"part/1/{m}.{i}.m4s" for m in (14, 15) for i in range(4)]
    assert pl.preload_hint.hint_type == "PART" and pl.preload_hint.uri == "part/1/16.2.m4s"
    (report,) = pl.rendition_reports
    assert (report.uri, report.last_msn, report.last_part) == ("../360p/index.m3u8", 15, 1)
    assert text.count("INDEPENDENT=YES") == 2 + 1  # first part of 14, 15 and 16


def test_plain_playlist_has_no_ll_tags() -> None:
    text = media(_segments(range(3)), 0)
    assert "#EXT-X-VERSION:7" in text
    for tag in ("PART", "SERVER-CONTROL", "PRELOAD-HINT", "RENDITION-REPORT"):
        assert tag not in text


def test_delta_update_skips_what_is_older_than_six_targets() -> None:
    entries = _segments(range(100, 110))  # 20 s of 2 s segments, target 2 -> skip beyond 12 s
    assert skippable(entries, 2) == 4
    ll = LowLatency(PART, 1, _open(110, 1))
    full, delta = media(entries, 3, ll), media(entries, 3, ll, skip=True)
    pl = m3u8.loads(delta)
    assert pl.skip.skipped_segments == 4
    assert pl.media_sequence == 100  # the sequence names the first segment, skipped or not
    assert [s.uri for s in pl.segments if s.uri] == [f"{m}.m4s" for m in range(104, 110)]
    assert "#EXT-X-DISCONTINUITY-SEQUENCE:3" in delta and "#EXT-X-DISCONTINUITY-SEQUENCE:3" in full
    assert '#EXT-X-MAP:URI="init/1.mp4"' in delta  # the shown segments still name their init


def test_failover_in_the_open_segment_marks_the_discontinuity_before_its_parts() -> None:
    parts = [PartEntry(16, 0, PART, True, 2, disc=True)]
    text = media(_segments(range(10, 16)), 0, LowLatency(PART, 2, parts))
    lines = text.splitlines()
    i = lines.index('#EXT-X-PART:DURATION=0.500,URI="part/2/16.0.m4s",INDEPENDENT=YES')
    assert lines[i - 2 : i] == ["#EXT-X-DISCONTINUITY", '#EXT-X-MAP:URI="init/2.mp4"']


@pytest.mark.parametrize(
    ("pos", "want", "expected"),
    [
        (Position(5, 0), Wanted(5), True),
        (Position(5, 0), Wanted(6), False),
        (Position(5, 2), Wanted(6, 1), True),
        (Position(5, 2), Wanted(6, 2), False),
        (Position(5, 2), Wanted(5, 9), True),  # a complete segment holds every part of it
        (Position(5, 2), Wanted(7, 0), False),
    ],
)
def test_ready_follows_the_spec(pos: Position, want: Wanted, expected: bool) -> None:
    assert ready(pos, want) is expected


def test_requests_too_far_ahead_are_refused_and_bad_directives_rejected() -> None:
    check(Position(5, 1), Wanted(7))
    with pytest.raises(BadRequest):
        check(Position(5, 1), Wanted(8))
    with pytest.raises(BadRequest):
        check(Position(5, 1), Wanted(6, 5))
    assert parse({}) is None
    assert parse({"_HLS_msn": "7", "_HLS_part": "2"}) == Wanted(7, 2)
    for bad in ({"_HLS_part": "1"}, {"_HLS_msn": "-1"}, {"_HLS_msn": "x"}):
        with pytest.raises(BadRequest):
            parse(bad)


def test_a_part_lost_to_a_failed_write_does_not_shift_the_hint() -> None:
    parts = [PartEntry(16, 0, PART, True, 1), PartEntry(16, 2, PART, False, 1)]  # 16.1 lost
    text = media(_segments(range(10, 16)), 0, LowLatency(PART, 1, parts))
    assert m3u8.loads(text).preload_hint.uri == "part/1/16.3.m4s"
    assert next_part(parts) == 3 and ready(Position(15, next_part(parts)), Wanted(16, 2))
