"""The fMP4 writer and box reader, and the segmenter, without sockets or Redis."""

from __future__ import annotations

import io
import struct
from fractions import Fraction

import av
import pytest
from av.video.frame import PictureType

from transcoder.pipeline import avc, fmp4
from transcoder.pipeline.audio import open_encoder as open_aac
from transcoder.pipeline.segments import Closed, Mark, Segmenter

VIDEO = fmp4.VideoTrack(64, 48, avc.ParameterSets(bytes.fromhex("6742c00dd9"), b"\x68\xce").avcc())


def test_init_segment_box_tree() -> None:
    init = fmp4.init_segment(VIDEO)
    assert [b.kind for b in fmp4.boxes(init)] == ["ftyp", "moov"]
    for path in ("moov/mvhd", "moov/trak/tkhd", "moov/mvex/trex", "moov/trak/mdia/minf/stbl"):
        assert fmp4.find(init, path) is not None, path
    mdhd = fmp4.find(init, "moov/trak/mdia/mdhd")
    assert mdhd is not None
    (timescale,) = struct.unpack_from(">I", init, mdhd.start + 8 + 4 + 8)
    assert timescale == 90_000
    audio = fmp4.init_segment(fmp4.AudioTrack(48_000, 2, bytes.fromhex("1190")))
    assert fmp4.find(audio, "moov/trak/mdia/minf/smhd") is not None


def test_media_segment_offsets_and_decode_time() -> None:
    samples = [fmp4.Sample(b"a" * 10, 3000, True), fmp4.Sample(b"bb" * 7, 3000, False)]
    seg = fmp4.media_segment(7, 1 << 33, samples)  # a decode time past 32 bits
    moof, mdat = list(fmp4.boxes(seg))
    assert (moof.kind, mdat.kind) == ("moof", "mdat")
    assert seg[mdat.start + 8 :] == b"a" * 10 + b"bb" * 7
    assert fmp4.base_decode_time(seg) == 1 << 33
    trun = fmp4.find(seg, "moof/traf/trun")
    assert trun is not None
    count, offset = struct.unpack_from(">Ii", seg, trun.start + 12)
    assert (count, offset) == (2, mdat.start + 8 - moof.start)
    with pytest.raises(ValueError):
        fmp4.media_segment(1, 0, [])


def test_box_reader_refuses_truncation() -> None:
    good = fmp4.box(b"free", b"1234")
    assert [b.size for b in fmp4.boxes(good + good)] == [12, 12]
    with pytest.raises(ValueError):
        list(fmp4.boxes(good[:-1]))
    with pytest.raises(ValueError):
        list(fmp4.boxes(good + b"\x00\x00"))
    large = struct.pack(">I4sQ", 1, b"mdat", 20) + b"abcd"
    assert next(fmp4.boxes(large)).header == 16


def test_segmenter_closes_at_the_next_cut_and_drops_what_precedes_the_first() -> None:
    seg = Segmenter()
    assert seg.add(0, 0, b"early", True) is None  # before any cut: dropped
    assert seg.add(10, 10, b"k1", True, Mark(100, 1.0)) is None
    assert seg.add(20, 20, b"p1", False) is None
    assert seg.add(35, 35, b"p2", False) is None
    closed = seg.add(50, 50, b"k2", True, Mark(500, 5.0))
    assert isinstance(closed, Closed)
    assert closed.base_dts == 10
    assert [(s.data, s.duration, s.sync) for s in closed.samples] == [
        (b"k1", 10, True),
        (b"p1", 15, False),
        (b"p2", 15, False),
    ]
    assert (closed.start, closed.end, closed.duration) == (Mark(100, 1.0), Mark(500, 5.0), 0.0004)
    with pytest.raises(ValueError):
        seg.add(50, 50, b"again", False)


def test_x264_output_packaged_by_us_decodes() -> None:
    """Encode 3 s at 10 fps with keyframes forced every second; package; decode with FFmpeg."""
    enc = av.CodecContext.create("libx264", "w")
    enc.width, enc.height, enc.pix_fmt = 64, 48, "yuv420p"
    enc.time_base, enc.framerate = Fraction(1, 90_000), Fraction(10)
    enc.options = {"preset": "ultrafast", "tune": "zerolatency", "x264-params": "scenecut=0"}
    seg, init, closed = Segmenter(), b"", []
    for i in range(31):
        frame = av.VideoFrame(64, 48, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([i * 8 % 256]) * plane.buffer_size)
        frame.pts, frame.time_base = i * 9000, enc.time_base
        frame.pict_type = PictureType.I if i % 10 == 0 else PictureType.NONE
        for p in enc.encode(frame):
            assert p.pts is not None and p.dts is not None
            nals = avc.split_annexb(bytes(p))
            if not init:
                params = avc.ParameterSets.find(nals)
                assert params is not None
                init = fmp4.init_segment(fmp4.VideoTrack(64, 48, params.avcc()))
            cut = Mark(p.pts, 0.0) if p.is_keyframe else None
            if (c := seg.add(p.dts, p.pts, avc.to_sample(nals), p.is_keyframe, cut)) is not None:
                closed.append(c)
    assert [c.base_dts for c in closed] == [0, 90_000, 180_000]
    media = b"".join(fmp4.media_segment(n + 1, c.base_dts, c.samples) for n, c in enumerate(closed))
    with av.open(io.BytesIO(init + media), "r") as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 30
    assert [round(f.time, 3) for f in frames if f.key_frame] == [0.0, 1.0, 2.0]
    # The last segment alone, after the init, decodes from its own keyframe at its own time.
    alone = init + fmp4.media_segment(9, closed[2].base_dts, closed[2].samples)
    with av.open(io.BytesIO(alone), "r") as container:
        assert next(round(f.time, 1) for f in container.decode(video=0)) == 2.0


def test_aac_packaged_by_us_decodes() -> None:
    enc = open_aac(64)
    track = fmp4.AudioTrack(48_000, 2, bytes(enc.extradata or b""), 64_000)
    samples = []
    for i in range(50):
        frame = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
        frame.sample_rate, frame.pts = 48_000, i * 1024
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        samples += [fmp4.Sample(bytes(p), 1024, True) for p in enc.encode(frame)]
    data = fmp4.init_segment(track) + fmp4.media_segment(1, 96_000, samples)
    with av.open(io.BytesIO(data), "r") as container:
        stream = container.streams.audio[0]
        assert (stream.codec_context.name, stream.rate, stream.channels) == ("aac", 48_000, 2)
        decoded = list(container.decode(stream))
    assert len(decoded) == len(samples) and decoded[0].time == 2.0
