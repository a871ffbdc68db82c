"""Redis key names. Stream and rendition ids are validated before they become part of a key.

Per stream:
    zc:{stream}:epoch                 writer epoch; only the fencing script changes it
    zc:{stream}:renditions            JSON list of rendition descriptors (multivariant playlist)
Per stream and rendition:
    zc:{stream}:{r}:init:{epoch}      fMP4 init segment of one writer (it may change on failover)
    zc:{stream}:{r}:seg:{msn}         segment bytes, with a TTL
    zc:{stream}:{r}:part:{epoch}:{msn}:{i}  LL-HLS part bytes, with a TTL; the writer's epoch is
                                      part of the name because a successor rewrites the parts
                                      of the segment its predecessor left unfinished
    zc:{stream}:{r}:parts             list of JSON part entries of the segment being written
    zc:{stream}:{r}:index             list of JSON segment entries, the playlist window
    zc:{stream}:{r}:state             hash: msn (last written), disc (discontinuity count),
                                      epoch (writer of the last segment), end_us (source time)
    zc:{stream}:{r}:events            pub/sub channel: "msn" of each new segment, "msn.i" of each part
"""

from __future__ import annotations

from cluster.ids import rendition_id, stream_id

PREFIX = "zc"


def epoch(stream: str) -> str:
    return f"{PREFIX}:{stream_id(stream)}:epoch"


def renditions(stream: str) -> str:
    return f"{PREFIX}:{stream_id(stream)}:renditions"


def _r(stream: str, rendition: str) -> str:
    return f"{PREFIX}:{stream_id(stream)}:{rendition_id(rendition)}"


def init(stream: str, rendition: str, writer_epoch: int) -> str:
    return f"{_r(stream, rendition)}:init:{int(writer_epoch)}"


def segment(stream: str, rendition: str, msn: int) -> str:
    return f"{_r(stream, rendition)}:seg:{int(msn)}"


def part(stream: str, rendition: str, writer_epoch: int, msn: int, i: int) -> str:
    return f"{_r(stream, rendition)}:part:{int(writer_epoch)}:{int(msn)}:{int(i)}"


def parts(stream: str, rendition: str) -> str:
    return f"{_r(stream, rendition)}:parts"


def index(stream: str, rendition: str) -> str:
    return f"{_r(stream, rendition)}:index"


def state(stream: str, rendition: str) -> str:
    return f"{_r(stream, rendition)}:state"


def events(stream: str, rendition: str) -> str:
    return f"{_r(stream, rendition)}:events"


def stream_pattern(stream: str) -> str:
    """Glob for every key of a stream (used when a stream is deleted)."""
    return f"{PREFIX}:{stream_id(stream)}:*"
