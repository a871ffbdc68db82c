"""The chunk-stream reader and writer, without sockets."""

from __future__ import annotations

import random

import pytest

from cluster.errors import BadRequest, TooLarge
from edge.ingest.rtmp.chunk import (
    ABORT,
    AUDIO,
    COMMAND_AMF0,
    SET_CHUNK_SIZE,
    VIDEO,
    ChunkReader,
    ChunkWriter,
    Message,
)


def basic(fmt: int, csid: int) -> bytes:
    if csid < 64:
        return bytes([fmt << 6 | csid])
    if csid < 320:
        return bytes([fmt << 6, csid - 64])
    return bytes([fmt << 6 | 1, (csid - 64) & 0xFF, (csid - 64) >> 8])


def chunk(
    fmt: int,
    csid: int,
    payload: bytes,
    ts: int = 0,
    length: int | None = None,
    type_id: int = VIDEO,
    msid: int = 1,
    ext: bool | None = None,
) -> bytes:
    """One chunk as an encoder would write it; `ts` is the absolute time (fmt 0) or the delta."""
    ext = ts >= 0xFFFFFF if ext is None else ext
    field = (0xFFFFFF if ext else ts).to_bytes(3, "big")
    length = len(payload) if length is None else length
    out = basic(fmt, csid)
    if fmt == 0:
        out += field + length.to_bytes(3, "big") + bytes([type_id]) + msid.to_bytes(4, "little")
    elif fmt == 1:
        out += field + length.to_bytes(3, "big") + bytes([type_id])
    elif fmt == 2:
        out += field
    if ext:
        out += ts.to_bytes(4, "big")
    return out + payload


def set_chunk_size(size: int) -> bytes:
    return chunk(0, 2, size.to_bytes(4, "big"), type_id=SET_CHUNK_SIZE, msid=0)


def feed_all(data: bytes, reader: ChunkReader | None = None) -> list[Message]:
    return (reader or ChunkReader()).feed(data)


def feed_bytewise(data: bytes) -> list[Message]:
    reader = ChunkReader()
    return [m for i in range(len(data)) for m in reader.feed(data[i : i + 1])]


def test_fmt0_single_chunk() -> None:
    data = chunk(0, 3, b"hello", ts=1000, type_id=COMMAND_AMF0, msid=0)
    assert feed_all(data) == [Message(3, COMMAND_AMF0, 0, 1000, b"hello")]


def test_message_continues_in_fmt3_chunks_at_default_size() -> None:
    body = bytes(range(256)) + bytes(44)
    data = (
        chunk(0, 4, body[:128], length=300) + chunk(3, 4, body[128:256]) + chunk(3, 4, body[256:])
    )
    assert feed_all(data) == [Message(4, VIDEO, 1, 0, body)]


def test_header_fields_and_deltas_carry_over_by_fmt() -> None:
    data = (
        chunk(0, 4, b"aaa", ts=1000, type_id=VIDEO, msid=1)
        + chunk(1, 4, b"bb", ts=33, type_id=AUDIO)
        + chunk(2, 4, b"cc", ts=20)
        + chunk(3, 4, b"dd")  # a new message: same length, type, stream and delta
        + chunk(3, 4, b"ee")
    )
    got = [(m.type_id, m.stream_id, m.timestamp, m.body) for m in feed_all(data)]
    assert got == [
        (VIDEO, 1, 1000, b"aaa"),
        (AUDIO, 1, 1033, b"bb"),
        (AUDIO, 1, 1053, b"cc"),
        (AUDIO, 1, 1073, b"dd"),
        (AUDIO, 1, 1093, b"ee"),
    ]


def test_fmt3_new_message_after_fmt0_repeats_the_timestamp_field() -> None:
    # FFmpeg's writer picks fmt 3 when the new delta equals the last field it wrote, which after a
    # fmt 0 header is the absolute time; at time 0 (how streams start) that means "same time".
    data = chunk(0, 6, b"x", ts=0) + chunk(3, 6, b"y") + chunk(0, 7, b"p", ts=40)
    data += chunk(3, 7, b"q")
    assert [m.timestamp for m in feed_all(data)] == [0, 0, 40, 80]


@pytest.mark.parametrize("csid", [2, 63, 64, 319, 320, 65599])
def test_chunk_stream_ids_in_one_two_and_three_bytes(csid: int) -> None:
    body = bytes(200)
    data = chunk(0, csid, body[:128], length=200) + chunk(3, csid, body[128:])
    assert feed_all(data) == [Message(csid, VIDEO, 1, 0, body)]


def test_extended_timestamp_is_repeated_on_fmt3_continuations() -> None:
    body = bytes(range(250)) + bytes(50)
    ts = 0x01234567
    data = (
        chunk(0, 4, body[:128], ts=ts, length=300)
        + chunk(3, 4, body[128:256], ts=ts, ext=True)
        + chunk(3, 4, body[256:], ts=ts, ext=True)
    )
    assert feed_all(data) == [Message(4, VIDEO, 1, ts, body)]


def test_extended_delta_on_fmt1_and_its_continuation() -> None:
    delta = 0x01000005
    data = chunk(0, 4, b"a", ts=10) + chunk(1, 4, bytes(128), ts=delta, length=130)
    data += chunk(3, 4, b"zz", ts=delta, ext=True)
    first, second = feed_all(data)
    assert (first.timestamp, second.timestamp, len(second.body)) == (10, 10 + delta, 130)


def test_timestamps_unwrap_past_32_bits() -> None:
    data = (
        chunk(0, 4, b"a", ts=0xFFFFFFF0)
        + chunk(1, 4, b"b", ts=0x20)  # crosses 2^32
        + chunk(0, 4, b"c", ts=0x30)  # absolute, after the wrap
        + chunk(0, 4, b"d", ts=0x25)  # a small step back is not a wrap
    )
    assert [m.timestamp for m in feed_all(data)] == [
        0xFFFFFFF0,
        0x1_0000_0010,
        0x1_0000_0030,
        0x1_0000_0025,
    ]


def test_interleaved_chunk_streams() -> None:
    video = bytes(range(200))
    data = (
        chunk(0, 6, video[:128], ts=40, length=200)
        + chunk(0, 4, b"audio", ts=41, type_id=AUDIO)
        + chunk(3, 6, video[128:])
    )
    assert feed_all(data) == [
        Message(4, AUDIO, 1, 41, b"audio"),
        Message(6, VIDEO, 1, 40, video),
    ]


def test_chunk_size_change_applies_to_the_next_chunk() -> None:
    body = bytes(range(256)) * 12
    data = set_chunk_size(4096) + chunk(0, 4, body, ts=5) + set_chunk_size(1000)
    data += chunk(0, 4, body[:1000], ts=6, length=3072) + chunk(3, 4, body[1000:2000])
    data += chunk(3, 4, body[2000:3000]) + chunk(3, 4, body[3000:])
    reader = ChunkReader()
    assert feed_all(data, reader) == [Message(4, VIDEO, 1, 5, body), Message(4, VIDEO, 1, 6, body)]
    assert reader.chunk_size == 1000


def _composite() -> bytes:
    body = bytes(random.Random(1).randbytes(5000))
    return (
        chunk(0, 3, b"connect", type_id=COMMAND_AMF0, msid=0)
        + set_chunk_size(1024)
        + chunk(0, 6, body[:1024], ts=0x00FFFFFF, length=2000)
        + chunk(0, 320, b"x", ts=7)
        + chunk(3, 6, body[1024:2000], ts=0x00FFFFFF, ext=True)
        + chunk(1, 6, body[:1024], ts=66, length=1500)
        + chunk(3, 6, body[1024:1500])
        + chunk(2, 6, body[:1024], ts=67)
        + chunk(3, 6, body[1024:1500])
        + chunk(3, 6, body[:1024])
        + chunk(3, 6, body[1024:1500])
    )


def test_byte_by_byte_random_splits_and_one_blob_agree() -> None:
    data = _composite()
    whole = feed_all(data)
    assert [(m.csid, m.timestamp, len(m.body)) for m in whole] == [
        (3, 0, 7),
        (320, 7, 1),
        (6, 0xFFFFFF, 2000),
        (6, 0xFFFFFF + 66, 1500),
        (6, 0xFFFFFF + 133, 1500),
        (6, 0xFFFFFF + 200, 1500),
    ]
    assert feed_bytewise(data) == whole
    rng = random.Random(7)
    for _ in range(20):
        reader, got, pos = ChunkReader(), [], 0
        while pos < len(data):
            step = rng.randint(1, 700)
            got += reader.feed(data[pos : pos + step])
            pos += step
        assert got == whole


def test_a_truncated_chunk_waits_for_more() -> None:
    data = chunk(0, 4, bytes(100), ts=1)
    reader = ChunkReader()
    assert reader.feed(data[:-1]) == []
    assert reader.feed(data[-1:]) == [Message(4, VIDEO, 1, 1, bytes(100))]


def test_abort_drops_a_partial_message() -> None:
    abort = chunk(0, 2, (4).to_bytes(4, "big"), type_id=ABORT, msid=0)
    data = chunk(0, 4, bytes(128), length=500) + abort + chunk(0, 4, b"fresh", ts=9)
    assert feed_all(data) == [Message(4, VIDEO, 1, 9, b"fresh")]


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        (chunk(1, 4, b"x", ts=1), BadRequest, "starts with a fmt 1"),
        (chunk(3, 9, b"x"), BadRequest, "starts with a fmt 3"),
        (set_chunk_size(0), BadRequest, "invalid chunk size 0"),
        (set_chunk_size(0x80000000), BadRequest, "invalid chunk size"),
        (chunk(0, 2, b"\0\0\1", type_id=SET_CHUNK_SIZE, msid=0), BadRequest, "3-byte body"),
        (chunk(0, 4, b"", length=9 * 1024 * 1024), TooLarge, "9437184 bytes"),
        (chunk(0, 4, bytes(128), length=200) + chunk(0, 4, b"x"), BadRequest, "middle"),
    ],
)
def test_malformed_input_is_a_clear_error(data: bytes, error: type[Exception], words: str) -> None:
    with pytest.raises(error, match=words):
        ChunkReader().feed(data)


def test_huge_chunk_size_is_legal_but_messages_stay_capped() -> None:
    reader = ChunkReader()
    assert reader.feed(set_chunk_size(0x7FFFFFFF) + chunk(0, 4, bytes(70000))) == [
        Message(4, VIDEO, 1, 0, bytes(70000))
    ]
    with pytest.raises(TooLarge):
        reader.feed(chunk(0, 4, b"", length=0xFFFFFF))


def test_unfinished_messages_on_many_chunk_streams_are_capped() -> None:
    reader = ChunkReader(max_message=1000, max_pending=1500)
    reader.feed(chunk(0, 4, bytes(128), length=1000))
    with pytest.raises(TooLarge, match="unfinished"):
        reader.feed(chunk(0, 5, bytes(128), length=1000))


def test_writer_output_reads_back() -> None:
    writer, reader = ChunkWriter(), ChunkReader()
    sent = [
        (3, COMMAND_AMF0, 0, 0, b""),
        (70, AUDIO, 1, 0xFFFFFF, bytes(range(256)) * 2),
        (400, VIDEO, 1, 0x12345678, bytes(300)),
    ]
    out = b"".join(writer.message(*m) for m in sent[:1])
    out += writer.set_chunk_size(100)
    out += b"".join(writer.message(*m) for m in sent[1:])
    assert writer.chunk_size == 100
    assert feed_bytewise(out) == reader.feed(out) == [Message(*m) for m in sent]
