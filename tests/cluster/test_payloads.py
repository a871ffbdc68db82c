"""Znode payloads: byte round trips, version checks, clear errors on junk."""

from __future__ import annotations

import json

import pytest

from cluster.errors import BadRequest
from cluster.payloads import (
    Assignment,
    DrainMarker,
    EdgeInfo,
    LeaderInfo,
    Move,
    Placement,
    Publisher,
    StreamRecord,
    TranscoderInfo,
)

SAMPLES = [
    TranscoderInfo("t1", "http://h:1", "h:2", 2.0, 1.0, ["a", "b"]),
    EdgeInfo("e1", "http://h:8080", "rtmp://h:1935/live", "h:9000", 3, 1),
    LeaderInfo("c1", "http://h:1"),
    StreamRecord("ab" * 32, profile="tiny"),
    Publisher("e1", "sess", "h:9000", codecs=["aac", "h264"], broken_epoch=4),
    Placement("t2", 3, "placed", "moved", history=[Move(1.5, 3, "t1", "t2", "died")]),
    Assignment("s1", 3, "h:9000", "tiny"),
    DrainMarker(reason="upgrade"),
]


@pytest.mark.parametrize("payload", SAMPLES, ids=lambda p: type(p).__name__)
def test_round_trip(payload: object) -> None:
    kind = type(payload)
    assert kind.parse(bytes(payload)) == payload  # type: ignore[attr-defined]
    assert json.loads(bytes(payload))["v"] == 1  # type: ignore[call-overload]


def test_placement_moves_bump_the_epoch_and_keep_a_bounded_history() -> None:
    p = Placement(None, 0, "idle", "new")
    for i in range(15):
        p = p.moved(f"t{i}", "placed", "test")
    assert p.epoch == 15 and len(p.history) == Placement.HISTORY
    assert p.history[0].dst == "t14" and p.history[0].src == "t13"


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"not json",
        b"[]",
        b'{"v": 2, "edge": "e"}',
        b'{"v": 1}',
        b'{"v": 1, "history": [{"x": 1}]}',
    ],
)
def test_junk_is_a_clear_error(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        Placement.parse(raw)
