"""Custom ladders: user JSON in, a validated Ladder out, and back to the same JSON."""

from __future__ import annotations

from typing import Any

import pytest

from cluster.errors import BadRequest
from cluster.ladder import LADDERS, Ladder, ladder, resolve

HD = {
    "name": "event",
    "rungs": [
        {"name": "1080p", "height": 1080, "video_kbps": 5000},
        {"height": 720, "video_kbps": 2800, "webrtc": True},
        {"height": 480, "video_kbps": 1400},
        {"height": 360, "video_kbps": 800},
    ],
    "gop_seconds": 4,
    "preset": "faster",
}


def test_builtin_ladders_round_trip_through_their_spec() -> None:
    for built_in in LADDERS.values():
        assert Ladder.from_spec(built_in.to_spec()) == built_in


def test_a_custom_ladder_gets_defaults_and_a_cost_by_pixel_rate() -> None:
    got = Ladder.from_spec(HD)
    assert [r.name for r in got.rungs] == ["1080p", "720p", "480p", "360p"]
    assert got.gop_seconds == 4.0 and got.preset == "faster" and got.fps == 30
    assert got.webrtc_rung(got.rungs) == got.rungs[1]
    # 1080p + 720p + 480p + 360p at 30 fps is about 2.9 default ladders of work.
    assert 2.5 < got.cost < 3.2
    assert resolve("ignored", got.to_spec()) == got
    assert resolve("tiny") == ladder("tiny")


def test_rungs_above_the_source_are_skipped_never_upscaled() -> None:
    got = Ladder.from_spec(HD)
    assert [r.name for r in got.rungs_for(360)] == ["360p"]
    assert [r.name for r in got.rungs_for(720)] == ["720p", "480p", "360p"]
    assert [r.name for r in got.rungs_for(240)] == ["360p"]  # the lowest rung always stays


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"rungs": []}, "non-empty"),
        ({"rungs": [{"height": 720}]}, "video_kbps is required"),
        ({"rungs": [{"height": "720", "video_kbps": 1}]}, "height"),
        ({"rungs": [{"height": 721, "video_kbps": 100}]}, "bad rung"),
        ({"rungs": [{"height": 4320, "video_kbps": 100}]}, "beyond 2160p"),
        ({"preset": "placebo-ish"}, "preset"),
        ({"gop_seconds": 30}, "gop_seconds"),
        ({"fps": 0}, "fps"),
        ({"fps": True}, "fps"),
        ({"colour": "blue"}, "unknown fields"),
        ({"rungs": [{"height": 360, "video_kbps": 500, "hdr": True}]}, "unknown fields"),
        ({"name": "../x"}, "rendition"),
    ],
)
def test_bad_specs_are_refused_naming_the_problem(change: dict[str, Any], words: str) -> None:
    with pytest.raises(BadRequest) as err:
        Ladder.from_spec({**HD, **change})
    assert words in err.value.detail


def test_a_dvr_window_lengthens_the_playlist_within_bounds() -> None:
    got = Ladder.from_spec({**HD, "dvr_seconds": 600})
    assert got.window(6) == 150  # ten minutes of 4 s segments
    assert Ladder.from_spec(HD).window(6) == 6
    with pytest.raises(BadRequest):
        Ladder.from_spec({**HD, "dvr_seconds": 86_400})


def test_a_ladder_without_a_marked_rung_still_feeds_webrtc_and_audio_is_reserved() -> None:
    got = Ladder.from_spec(
        {"rungs": [{"height": 1080, "video_kbps": 5000}, {"height": 480, "video_kbps": 1200}]}
    )
    assert [r.name for r in got.rungs if r.webrtc] == ["480p"]  # the highest up to 720p
    tall = Ladder.from_spec({"rungs": [{"height": 1440, "video_kbps": 9000}]})
    assert tall.rungs[0].webrtc  # nothing up to 720p: the lowest one
    with pytest.raises(BadRequest) as err:
        Ladder.from_spec({"rungs": [{"name": "audio", "height": 360, "video_kbps": 500}]})
    assert "audio" in err.value.detail
