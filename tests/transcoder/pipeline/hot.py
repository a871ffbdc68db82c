"""Reading back what a worker wrote to Redis, and decoding it."""

from __future__ import annotations

import io
import json
import subprocess
from typing import Any

import av
import redis

from cluster.hot import keys
from cluster.hot.model import RenditionInfo, SegmentEntry, renditions_from_json

RENDITIONS = ("240p", "120p", "audio")


def entries(r: redis.Redis, stream: str, rendition: str) -> list[SegmentEntry]:
    return [SegmentEntry.from_json(x) for x in r.lrange(keys.index(stream, rendition), 0, -1)]


def has_segments(
    r: redis.Redis, stream: str, count: int, names: tuple[str, ...] = RENDITIONS
) -> bool:
    return all(len(entries(r, stream, n)) >= count for n in names)


def blob(r: redis.Redis, key: str) -> bytes:
    value = r.get(key)
    assert isinstance(value, bytes), f"{key} is missing"
    return value


def state(r: redis.Redis, stream: str, rendition: str) -> dict[str, int]:
    """The numeric fields of a rendition's state hash (the publisher session is left out)."""
    raw = r.hgetall(keys.state(stream, rendition))
    return {k.decode(): int(v) for k, v in raw.items() if k != b"session"}


def renditions(r: redis.Redis, stream: str) -> dict[str, RenditionInfo]:
    return {i.name: i for i in renditions_from_json(blob(r, keys.renditions(stream)))}


def file_of(r: redis.Redis, stream: str, rendition: str, segs: list[SegmentEntry]) -> bytes:
    """Init segment of the writer of `segs` followed by the segments: a playable fMP4 file."""
    epochs = {e.epoch for e in segs}
    assert len(epochs) == 1, f"segments of several writers: {epochs}"
    init = blob(r, keys.init(stream, rendition, epochs.pop()))
    return init + b"".join(blob(r, keys.segment(stream, rendition, e.msn)) for e in segs)


def video(data: bytes) -> list[av.VideoFrame]:
    with av.open(io.BytesIO(data), "r") as container:
        return list(container.decode(video=0))


def audio(data: bytes) -> list[av.AudioFrame]:
    with av.open(io.BytesIO(data), "r") as container:
        return list(container.decode(audio=0))


def at(frame: av.VideoFrame | av.AudioFrame) -> float:
    """A decoded frame's presentation time in seconds."""
    assert frame.time is not None
    return frame.time


def ffprobe(data: bytes) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", "-"],
        input=data,
        capture_output=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result
