"""The feed's output timeline across worker switches (pure: no sockets, no clock)."""

from __future__ import annotations

from edge.playback.webrtc.timeline import Timeline

FRAME = 66_666  # 15 fps in microseconds


def test_first_source_starts_at_zero_and_keeps_its_spacing() -> None:
    t = Timeline()
    t.switch(1)
    assert [t.place(0, 5_000_000 + i * FRAME, 0.0, True) for i in range(3)] == [0, FRAME, 2 * FRAME]


def test_switch_follows_by_real_elapsed_time_whatever_the_new_clock() -> None:
    for new_base in (0, 5_000_000, 900_000_000):  # behind, equal, far ahead
        t = Timeline()
        t.switch(1)
        for i in range(10):
            t.place(0, 5_000_000 + i * FRAME, i * FRAME / 1e6, True)
        last = 9 * FRAME
        t.switch(2)
        first = t.place(0, new_base, 9 * FRAME / 1e6 + 1.5, True)
        assert first == last + 1_500_000
        assert t.place(0, new_base + FRAME, 0.0, True) == first + FRAME


def test_switch_without_elapsed_time_moves_one_frame() -> None:
    t = Timeline()
    t.switch(1)
    t.place(0, 0, 1.0, True)
    t.place(0, FRAME, 1.0, True)
    t.switch(2)
    assert t.place(0, 0, 1.0, True) == 2 * FRAME


def test_tracks_share_the_offset_and_never_go_back() -> None:
    t = Timeline()
    t.switch(1)
    assert t.place(0, 1_000_000, 0.0, True) == 0
    assert t.place(1, 1_020_000, 0.0) == 20_000  # audio keeps its distance to video
    assert t.place(1, 1_010_000, 0.0) is None  # behind what this track already sent
