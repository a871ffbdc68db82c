"""Ladder profiles: the WebRTC rung is marked once and survives a small source."""

from __future__ import annotations

import pytest

from cluster.errors import BadRequest
from cluster.ladder import Ladder, Rung, ladder

HIGH = Rung("720p", 720, 2500, webrtc=True)
LOW = Rung("360p", 360, 800)


def test_the_builtin_ladders_mark_one_webrtc_rung() -> None:
    assert [r.name for r in ladder("default").rungs if r.webrtc] == ["720p"]
    assert [r.name for r in ladder("tiny").rungs if r.webrtc] == ["240p"]


def test_at_most_one_webrtc_rung() -> None:
    with pytest.raises(BadRequest, match="more than one WebRTC rung"):
        Ladder("two", (HIGH, Rung("360p", 360, 800, webrtc=True)))
    assert Ladder("none", (LOW,)).webrtc_rung((LOW,)) is None


def test_a_source_too_small_for_the_webrtc_rung_feeds_the_highest_rung_kept() -> None:
    lowest = Rung("180p", 180, 300)
    profile = Ladder("p", (HIGH, LOW, lowest))
    assert profile.webrtc_rung(profile.rungs_for(1080)) == HIGH
    assert profile.webrtc_rung(profile.rungs_for(480)) == LOW
    # Below every rung the lowest is kept, and it feeds WebRTC.
    assert profile.webrtc_rung(profile.rungs_for(100)) == lowest
    # A marked rung below the source's size is kept and used as such.
    marked = Rung("360p", 360, 800, webrtc=True)
    low_marked = Ladder("q", (Rung("720p", 720, 2500), marked))
    assert low_marked.webrtc_rung(low_marked.rungs_for(1080)) == marked
