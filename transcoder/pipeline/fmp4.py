"""A minimal fragmented-MP4 (CMAF-style) writer and box reader (pure: track and samples in, bytes out).

One track per file, track_ID 1. The init segment is ftyp+moov with an empty sample table and an
mvex; each media segment is one moof+mdat whose tfdt carries the publisher timeline, so a
successor's segments continue where its predecessor's stopped. We write the boxes ourselves
instead of driving FFmpeg's mp4 muxer: its fragments only follow video keyframes (an audio-only
file cannot be cut on our grid), it buffers output in its own I/O layer, and it rebases the first
timestamp; here every byte and every decode time is ours to decide.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

TRACK_ID = 1
# sample_depends_on=2 (an I-frame / an audio frame): a sync sample.
SYNC = 0x02000000
# sample_depends_on=1 and sample_is_non_sync_sample=1.
NON_SYNC = 0x01010000
_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
_LANG_UND = 0x55C4  # ISO 639-2 "und", packed as three 5-bit letters


def box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


@dataclass(frozen=True)
class VideoTrack:
    width: int
    height: int
    avcc: bytes  # AVCDecoderConfigurationRecord
    timescale: int = 90_000


@dataclass(frozen=True)
class AudioTrack:
    sample_rate: int
    channels: int
    asc: bytes  # AAC AudioSpecificConfig
    bitrate: int = 0

    @property
    def timescale(self) -> int:
        return self.sample_rate


Track = VideoTrack | AudioTrack


@dataclass(frozen=True)
class Sample:
    data: bytes
    duration: int  # in the track's timescale
    sync: bool
    cts: int = 0  # composition offset (pts - dts)


def init_segment(track: Track) -> bytes:
    ftyp = box(b"ftyp", b"iso6", struct.pack(">I", 0), b"iso6cmfcisommp41")
    mvhd = full_box(
        b"mvhd", 0, 0,
        struct.pack(">IIIIIH", 0, 0, 1000, 0, 0x10000, 0x0100), bytes(10), _MATRIX, bytes(24),
        struct.pack(">I", TRACK_ID + 1),
    )  # fmt: skip
    trex = full_box(b"trex", 0, 0, struct.pack(">IIIII", TRACK_ID, 1, 0, 0, 0))
    return ftyp + box(b"moov", mvhd, _trak(track), box(b"mvex", trex))


def _trak(track: Track) -> bytes:
    video = isinstance(track, VideoTrack)
    width, height = (track.width, track.height) if isinstance(track, VideoTrack) else (0, 0)
    tkhd = full_box(
        b"tkhd", 0, 0x3,  # enabled, in movie
        struct.pack(">IIIII", 0, 0, TRACK_ID, 0, 0), bytes(8),
        struct.pack(">hhhH", 0, 0, 0 if video else 0x0100, 0), _MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )  # fmt: skip
    mdhd = full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, track.timescale, 0, _LANG_UND, 0))
    handler, name = (b"vide", b"VideoHandler\0") if video else (b"soun", b"SoundHandler\0")
    hdlr = full_box(b"hdlr", 0, 0, struct.pack(">I4s", 0, handler), bytes(12), name)
    media_header = full_box(b"vmhd", 0, 1, bytes(8)) if video else full_box(b"smhd", 0, 0, bytes(4))
    dinf = box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1)))
    stbl = box(
        b"stbl",
        full_box(b"stsd", 0, 0, struct.pack(">I", 1), _sample_entry(track)),
        full_box(b"stts", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsc", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
        full_box(b"stco", 0, 0, struct.pack(">I", 0)),
    )
    minf = box(b"minf", media_header, dinf, stbl)
    return box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, minf))


def _sample_entry(track: Track) -> bytes:
    head = bytes(6) + struct.pack(">H", 1)  # reserved, data_reference_index
    if isinstance(track, VideoTrack):
        return box(
            b"avc1", head,
            struct.pack(">HH12xHHIIIH", 0, 0, track.width, track.height, 0x480000, 0x480000, 0, 1),
            bytes(32),  # compressorname
            struct.pack(">Hh", 0x18, -1),
            box(b"avcC", track.avcc),
        )  # fmt: skip
    return box(
        b"mp4a", head,
        struct.pack(">8xHHHHI", track.channels, 16, 0, 0, track.sample_rate << 16),
        full_box(b"esds", 0, 0, _es_descriptor(track)),
    )  # fmt: skip


def _descriptor(tag: int, body: bytes) -> bytes:
    size, n = len(body), bytearray()
    # Expandable size (ISO/IEC 14496-1 8.3.3): 7 bits per byte, high bit = more follows.
    n.append(size & 0x7F)
    size >>= 7
    while size:
        n.insert(0, 0x80 | (size & 0x7F))
        size >>= 7
    return bytes([tag]) + bytes(n) + body


def _es_descriptor(track: AudioTrack) -> bytes:
    # objectTypeIndication 0x40 = MPEG-4 audio; streamType 5 (audio) << 2 | upStream 0 | 1.
    config = struct.pack(">BBBHII", 0x40, 0x15, 0, 0, track.bitrate, track.bitrate)
    decoder = _descriptor(0x04, config + _descriptor(0x05, track.asc))
    return _descriptor(0x03, struct.pack(">HB", 0, 0) + decoder + _descriptor(0x06, b"\x02"))


def media_segment(sequence: int, base_dts: int, samples: Sequence[Sample]) -> bytes:
    """One moof+mdat: `samples` in decode order from `base_dts` (track timescale)."""
    if not samples:
        raise ValueError("a media segment needs at least one sample")
    moof = _moof(sequence, base_dts, samples, data_offset=0)
    # default-base-is-moof: data_offset counts from the moof's first byte to the first sample.
    moof = _moof(sequence, base_dts, samples, data_offset=len(moof) + 8)
    mdat = box(b"mdat", *(s.data for s in samples))
    return moof + mdat


def _moof(sequence: int, base_dts: int, samples: Sequence[Sample], data_offset: int) -> bytes:
    mfhd = full_box(b"mfhd", 0, 0, struct.pack(">I", sequence))
    tfhd = full_box(b"tfhd", 0, 0x020000, struct.pack(">I", TRACK_ID))
    tfdt = full_box(b"tfdt", 1, 0, struct.pack(">Q", base_dts))
    # data-offset, duration, size, flags and (signed, version 1) composition offset per sample.
    rows = b"".join(
        struct.pack(">IIIi", s.duration, len(s.data), SYNC if s.sync else NON_SYNC, s.cts)
        for s in samples
    )
    trun = full_box(b"trun", 1, 0xF01, struct.pack(">Ii", len(samples), data_offset), rows)
    return box(b"moof", mfhd, box(b"traf", tfhd, tfdt, trun))


@dataclass(frozen=True)
class Box:
    kind: str
    start: int
    end: int  # exclusive
    header: int  # 8, or 16 with a 64-bit size

    @property
    def size(self) -> int:
        return self.end - self.start


def boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[Box]:
    """Top-level boxes of data[start:end]; raises ValueError on a truncated or malformed box."""
    end = len(data) if end is None else end
    pos = start
    while pos < end:
        if end - pos < 8:
            raise ValueError(f"truncated box header at {pos}")
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if end - pos < 16:
                raise ValueError(f"truncated large box header at {pos}")
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos  # extends to the end of its container
        if size < header or pos + size > end:
            raise ValueError(f"box {kind!r} at {pos} has bad size {size}")
        yield Box(kind.decode("latin-1"), pos, pos + size, header)
        pos += size


def find(data: bytes, path: str) -> Box | None:
    """The first box at a slash-separated path of container boxes, e.g. "moof/traf/tfdt"."""
    start, end = 0, len(data)
    found: Box | None = None
    for kind in path.split("/"):
        found = next((b for b in boxes(data, start, end) if b.kind == kind), None)
        if found is None:
            return None
        start, end = found.start + found.header, found.end
    return found


def base_decode_time(segment: bytes) -> int:
    """The tfdt of a media segment (version 0 or 1)."""
    tfdt = find(segment, "moof/traf/tfdt")
    if tfdt is None:
        raise ValueError("no moof/traf/tfdt")
    body = tfdt.start + tfdt.header
    version = segment[body]
    fmt = ">Q" if version == 1 else ">I"
    return int(struct.unpack_from(fmt, segment, body + 4)[0])
