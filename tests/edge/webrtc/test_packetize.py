"""The H.264 RTP packetizer against aiortc's depacketizer, and the runs that batch its output."""

from __future__ import annotations

import random

from aiortc.codecs.h264 import H264PayloadDescriptor

from edge.playback.webrtc.packetize import MAX_RUN, cut, runs, split_annexb


def _annexb(nals: list[bytes], long_codes: bool = True) -> bytes:
    code = b"\x00\x00\x00\x01" if long_codes else b"\x00\x00\x01"
    return b"".join(code + n for n in nals)


def _nal(kind: int, size: int, rng: random.Random) -> bytes:
    # No 00 00 0x inside: emulation prevention guarantees that in real streams.
    return bytes([0x60 | kind]) + bytes(rng.randrange(1, 256) for _ in range(size - 1))


def _depacketize(payloads: list[bytes]) -> bytes:
    return b"".join(H264PayloadDescriptor.parse(p)[1] for p in payloads)


def test_split_finds_nal_units_behind_3_and_4_byte_start_codes() -> None:
    rng = random.Random(1)
    nals = [_nal(7, 12, rng), _nal(8, 4, rng), _nal(5, 40, rng)]
    assert split_annexb(_annexb(nals)) == nals
    assert split_annexb(_annexb(nals, long_codes=False)) == nals
    assert split_annexb(b"no start code") == []


def test_every_access_unit_comes_back_whole_from_aiortcs_depacketizer() -> None:
    rng = random.Random(7)
    for _ in range(200):
        nals = [_nal(rng.choice([1, 5, 6, 7, 8]), rng.randrange(2, 6000), rng) for _ in range(4)]
        data = _annexb(nals)
        payloads = cut(data)
        assert all(len(p) <= 1300 for p in payloads)
        assert _depacketize(payloads) == data


def test_small_units_share_a_stap_a_and_large_ones_split_into_equal_fu_a_fragments() -> None:
    rng = random.Random(3)
    sps, pps, idr = _nal(7, 20, rng), _nal(8, 5, rng), _nal(5, 3005, rng)
    payloads = cut(_annexb([sps, pps, idr]))
    assert payloads[0][0] & 0x1F == 24  # STAP-A: SPS and PPS together
    fragments = payloads[1:]
    assert [p[0] & 0x1F for p in fragments] == [28] * 3
    assert [len(p) for p in fragments] == [1004, 1004, 1002]  # 3004 bytes: 1002 + 1002 + 1000
    assert fragments[0][1] & 0x80 and fragments[-1][1] & 0x40
    assert runs(payloads) == [(0, 1), (1, 4)]


def test_runs_are_equal_sizes_ending_with_at_most_one_shorter_and_bounded() -> None:
    sizes = [10, 50, 50, 50, 20, 20, 30, 30, 30]
    payloads = [bytes(n) for n in sizes]
    assert runs(payloads) == [(0, 1), (1, 5), (5, 6), (6, 9)]
    many = [bytes(10)] * (MAX_RUN + 3)
    assert runs(many) == [(0, MAX_RUN), (MAX_RUN, MAX_RUN + 3)]
    assert runs([]) == []
