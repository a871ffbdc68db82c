"""GOP cache: starts at a keyframe, resets on the next one, stays bounded."""

from __future__ import annotations

from cluster.medialink.frames import CodecConfig, MediaPacket
from edge.relay.gop import GopCache


def _v(t: int, key: bool = False, size: int = 10) -> MediaPacket:
    return MediaPacket(0, t, t, b"v" * size, keyframe=key)


def _a(t: int) -> MediaPacket:
    return MediaPacket(1, t, t, b"a")


def _cache(**kw: float) -> GopCache:
    c = GopCache(max_bytes=int(kw.get("max_bytes", 1000)), max_seconds=kw.get("max_seconds", 10))
    c.codec(CodecConfig(0, "video", "h264", b"avcc", "avcc"))
    c.codec(CodecConfig(1, "audio", "aac", b"asc"))
    return c


def test_nothing_before_the_first_keyframe() -> None:
    c = _cache()
    c.add(_a(0))
    c.add(_v(1))
    assert c.snapshot()[1] == []


def test_holds_packets_since_the_last_keyframe() -> None:
    c = _cache()
    for t, key in [(0, True), (33, False), (66, False), (100, True), (133, False)]:
        c.add(_v(t, key))
        c.add(_a(t + 1))
    codecs, pkts = c.snapshot()
    assert [x.codec for x in codecs] == ["h264", "aac"]
    assert pkts[0].keyframe and pkts[0].dts_us == 100
    assert [p.dts_us for p in pkts] == [100, 101, 133, 134]


def test_an_oversized_gop_is_dropped_until_the_next_keyframe() -> None:
    c = _cache(max_bytes=100)
    c.add(_v(0, True, 50))
    c.add(_v(1, False, 60))
    assert c.snapshot()[1] == [] and c.size == 0
    c.add(_v(2, False, 1))
    assert c.snapshot()[1] == []
    c.add(_v(3, True, 5))
    assert [p.dts_us for p in c.snapshot()[1]] == [3]


def test_a_too_long_gop_is_dropped() -> None:
    c = _cache(max_seconds=1)
    c.add(_v(0, True))
    c.add(_v(900_000))
    assert len(c.snapshot()[1]) == 2
    c.add(_v(1_100_000))
    assert c.snapshot()[1] == []


def test_keeps_an_older_keyframe_to_cover_the_minimum_window() -> None:
    # Keyframes every second; a successor may need frames up to a segment (here 2 s) back.
    c = GopCache(max_bytes=1 << 20, max_seconds=30, min_seconds=2)
    c.codec(CodecConfig(0, "video", "h264", b"avcc", "avcc"))
    for i in range(0, 60):
        t = i * 100_000
        c.add(_v(t, key=i % 10 == 0))
    # Newest is 5.9 s: the latest keyframe at least 2 s older is 3.0 s.
    pkts = c.snapshot()[1]
    assert pkts[0].keyframe and pkts[0].dts_us == 3_000_000
    assert pkts[-1].dts_us == 5_900_000 and len(pkts) == 30


def test_the_byte_bound_drops_old_gops_before_giving_up() -> None:
    c = GopCache(max_bytes=250, max_seconds=30, min_seconds=10)
    c.codec(CodecConfig(0, "video", "h264", b"avcc", "avcc"))
    for i in range(30):
        c.add(_v(i * 100_000, key=i % 10 == 0, size=10))
    # 300 bytes wanted for the 10 s window; 250 allowed: the first GOP goes.
    pkts = c.snapshot()[1]
    assert pkts[0].dts_us == 1_000_000 and c.size == 200
