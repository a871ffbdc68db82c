"""AMF0 round trips, and malformed input that must end as BadRequest only."""

from __future__ import annotations

import random

import pytest

from cluster.errors import BadRequest
from edge.ingest.rtmp import amf0
from edge.ingest.rtmp.amf0 import UNDEFINED, EcmaArray


@pytest.mark.parametrize(
    "value",
    [
        0.0,
        -1.5,
        1e300,
        True,
        False,
        "",
        "connect",
        "ünïcødé ✓",
        "x" * 70000,  # a long string
        None,
        UNDEFINED,
        {},
        {"app": "live", "tcUrl": "rtmp://h/live", "nested": {"a": [1.0, None, "b"]}},
        {"": "an empty key is legal"},
        EcmaArray({"width": 320.0, "height": 180.0}),
        [],
        [1.0, "two", [3.0], {"four": 4.0}, UNDEFINED],
    ],
)
def test_round_trip(value: amf0.Value) -> None:
    decoded = amf0.decode(amf0.encode(value))
    assert decoded == [value]
    assert type(decoded[0]) is type(value)


def test_a_command_is_several_values() -> None:
    data = amf0.encode("publish", 5.0, None, "s1?key=k", "live")
    assert amf0.decode(data) == ["publish", 5.0, None, "s1?key=k", "live"]


def test_ints_encode_as_numbers() -> None:
    assert amf0.decode(amf0.encode(3)) == [3.0]


def test_known_bytes() -> None:
    # From an FFmpeg connect command.
    assert amf0.encode("connect", 1.0) == (
        b"\x02\x00\x07connect\x00\x3f\xf0\x00\x00\x00\x00\x00\x00"
    )
    assert amf0.decode(b"\x03\x00\x03app\x02\x00\x04live\x00\x00\x09") == [{"app": "live"}]
    # A date: ms since the epoch, then a time zone that is dropped.
    assert amf0.decode(b"\x0b" + b"\x40\x59\x00\x00\x00\x00\x00\x00" + b"\x00\x00") == [100.0]


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"\x00\x3f\xf0", "truncated"),
        (b"\x02\x00\x10abc", "truncated"),
        (b"\x0c\xff\xff\xff\xff", "truncated"),
        (b"\x03\x00\x03app\x02\x00\x04live", "truncated"),  # no object end
        (b"\x09", "object end outside"),
        (b"\x07\x00\x01", "unsupported type marker 7"),
        (b"\x11", "unsupported type marker 17"),
        (b"\x0a\xff\xff\xff\xff\x05", "strict array of 4294967295"),
        (b"\x02\x00\x02\xff\xfe", "not UTF-8"),
        (b"\x0a\x00\x00\x00\x01" * 40 + b"\x05", "too deep"),
        (b"\x08\x00\x00\x00\x01\x00\x01a", "truncated"),
    ],
)
def test_malformed(data: bytes, words: str) -> None:
    with pytest.raises(BadRequest, match=words):
        amf0.decode(data)


def test_random_and_mutated_input_only_ever_raises_bad_request() -> None:
    rng = random.Random(42)
    valid = amf0.encode(
        "connect", 1.0, {"app": "live", "flashVer": "FMLE/3.0", "x": [1.0, {"y": None}]}
    )
    for i in range(3000):
        if i % 2:
            data = rng.randbytes(rng.randint(0, 64))
        else:
            mutated = bytearray(valid)
            for _ in range(rng.randint(1, 4)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            data = bytes(mutated[: rng.randint(0, len(mutated))])
        try:
            amf0.decode(data)
        except BadRequest:
            pass


def test_unencodable_value_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        amf0.encode(object())  # type: ignore[arg-type]
