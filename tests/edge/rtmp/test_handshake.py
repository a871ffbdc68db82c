"""The simple handshake, fed whole and byte by byte."""

from __future__ import annotations

import random

import pytest

from cluster.errors import BadRequest
from edge.ingest.rtmp.handshake import SIZE, Handshake

C1 = random.Random(3).randbytes(SIZE)
C2 = random.Random(4).randbytes(SIZE)
S1_RANDOM = bytes(range(256)) * 6


def test_answers_c0_c1_with_s0_s1_s2_echoing_c1() -> None:
    hs = Handshake(now_ms=0x01020304, random=S1_RANDOM[: SIZE - 8])
    out = hs.feed(b"\x03" + C1)
    assert len(out) == 1 + 2 * SIZE
    assert out[0] == 3
    # S1: our time, then zero "version" bytes so no client tries digest verification.
    assert out[1:9] == b"\x01\x02\x03\x04\x00\x00\x00\x00"
    assert out[1 + SIZE :] == C1
    assert not hs.done
    assert hs.feed(C2 + b"chunks") == b""
    assert hs.done and hs.leftover == b"chunks"


def test_byte_by_byte() -> None:
    hs, out = Handshake(), b""
    data = b"\x03" + C1 + C2 + b"\x02rest"
    for i in range(len(data)):
        out += hs.feed(data[i : i + 1])
        if hs.done:
            break
    assert hs.done and hs.leftover == b""  # C2's last byte completes it; "rest" is not read
    assert out[1 + SIZE :] == C1


@pytest.mark.parametrize(("version", "words"), [(6, "RTMPE"), (0x47, "version 71")])
def test_other_versions_are_refused(version: int, words: str) -> None:
    with pytest.raises(BadRequest, match=words):
        Handshake().feed(bytes([version]))
