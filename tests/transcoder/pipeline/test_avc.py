"""H.264 helpers: Annex-B splitting, MP4 sample data, avcC and RFC 6381 names."""

from __future__ import annotations

from transcoder.pipeline import avc
from transcoder.pipeline.audio import audio_codecs
from transcoder.pipeline.video import output_size

SPS_HIGH = bytes.fromhex("6764001eacd940")  # High, level 3.0
SPS_BASE = bytes.fromhex("6742c00dd9")  # Constrained Baseline, level 1.3
PPS = bytes.fromhex("68ebecb22c")
IDR = bytes.fromhex("6588840021")
AUD = bytes.fromhex("0910")


def test_split_handles_three_and_four_byte_start_codes() -> None:
    au = b"\x00\x00\x00\x01" + AUD + b"\x00\x00\x01" + SPS_HIGH + b"\x00\x00\x00\x01" + PPS
    au += b"\x00\x00\x01" + IDR
    assert avc.split_annexb(au) == [AUD, SPS_HIGH, PPS, IDR]
    assert avc.split_annexb(b"") == []
    assert avc.split_annexb(b"garbage without start code") == []


def test_samples_are_length_prefixed_without_parameter_sets() -> None:
    sample = avc.to_sample([AUD, SPS_HIGH, PPS, IDR, b"\x06\x05\x01\x00"])
    assert sample == b"\x00\x00\x00\x05" + IDR + b"\x00\x00\x00\x04\x06\x05\x01\x00"


def test_avcc_record_and_codec_string() -> None:
    params = avc.ParameterSets.find([SPS_HIGH, PPS, IDR])
    assert params is not None
    assert params.codecs() == "avc1.64001e"
    record = params.avcc()
    assert record[:6] == bytes([1, 0x64, 0x00, 0x1E, 0xFF, 0xE1])
    assert record[6:8] == len(SPS_HIGH).to_bytes(2, "big")
    assert record[8 : 8 + len(SPS_HIGH)] == SPS_HIGH
    assert record[-4:] == bytes([0xFD, 0xF8, 0xF8, 0])  # High: 4:2:0, 8-bit
    base = avc.ParameterSets(SPS_BASE, PPS)
    assert base.codecs() == "avc1.42c00d"
    assert base.avcc().endswith(PPS)  # no extension for Baseline
    assert avc.ParameterSets.find([PPS, IDR]) is None


def test_idr_access_units_get_parameter_sets_in_front() -> None:
    sc = avc.START_CODE
    params = avc.ParameterSets(SPS_BASE, PPS)
    bare = sc + IDR
    assert avc.with_parameter_sets(bare, [IDR], params) == sc + SPS_BASE + sc + PPS + sc + IDR
    assert avc.split_annexb(avc.with_parameter_sets(bare, [IDR], params)) == [SPS_BASE, PPS, IDR]
    # Already there (x264's repeat-headers), not an IDR, or nothing known yet: unchanged.
    full = sc + SPS_BASE + sc + PPS + sc + IDR
    assert avc.with_parameter_sets(full, [SPS_BASE, PPS, IDR], params) == full
    non_idr = sc + b"\x41\x9a\x00"
    assert avc.with_parameter_sets(non_idr, [b"\x41\x9a\x00"], params) == non_idr
    assert avc.with_parameter_sets(bare, [IDR], None) == bare


def test_audio_codec_string_from_the_asc() -> None:
    assert audio_codecs(bytes.fromhex("1190")) == "mp4a.40.2"  # AAC-LC 48 kHz stereo
    assert audio_codecs(bytes.fromhex("2b92")) == "mp4a.40.5"  # HE-AAC


def test_output_sizes_keep_aspect_and_never_upscale() -> None:
    assert output_size(240, 426, 240) == (426, 240)
    assert output_size(120, 426, 240) == (212, 120)
    assert output_size(720, 1920, 1080) == (1280, 720)
    assert output_size(120, 320, 90) == (320, 90)  # the ladder keeps its lowest rung
    assert output_size(360, 480, 271) == (478, 270)  # even, from 478.2
