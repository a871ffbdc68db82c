"""H.264 bitstream helpers (pure): Annex-B in, MP4 sample data, avcC records and RFC 6381 names out."""

from __future__ import annotations

from dataclasses import dataclass

NAL_IDR = 5
NAL_SPS = 7
NAL_PPS = 8
NAL_AUD = 9
# Parameter sets live in the avcC of the init segment and access-unit delimiters mean nothing in
# MP4, so neither belongs in an 'avc1' sample.
_NOT_IN_SAMPLES = {NAL_SPS, NAL_PPS, NAL_AUD}
# Profiles whose avcC carries the chroma/bit-depth extension (ISO/IEC 14496-15, 5.3.3.1.2).
_HIGH_PROFILES = {100, 110, 122, 144}


def split_annexb(data: bytes) -> list[bytes]:
    """NAL units of an Annex-B access unit, without start codes."""
    nals: list[bytes] = []
    start = _next_start(data, 0)
    while start is not None:
        body = start[1]
        following = _next_start(data, body)
        end = following[0] if following else len(data)
        # A 4-byte start code leaves its leading zero at the end of the previous unit.
        nal = data[body:end].rstrip(b"\x00")
        if nal:
            nals.append(nal)
        start = following
    return nals


def _next_start(data: bytes, pos: int) -> tuple[int, int] | None:
    """(where the start code begins, where the NAL unit after it begins), or None."""
    i = data.find(b"\x00\x00\x01", pos)
    return None if i < 0 else (i, i + 3)


def nal_type(nal: bytes) -> int:
    return nal[0] & 0x1F


def to_sample(nals: list[bytes]) -> bytes:
    """MP4 sample data: each NAL unit behind a 4-byte big-endian length (avcC lengthSize 4)."""
    return b"".join(
        len(n).to_bytes(4, "big") + n for n in nals if nal_type(n) not in _NOT_IN_SAMPLES
    )


@dataclass(frozen=True)
class ParameterSets:
    sps: bytes
    pps: bytes

    @classmethod
    def find(cls, nals: list[bytes]) -> ParameterSets | None:
        sps = next((n for n in nals if nal_type(n) == NAL_SPS), None)
        pps = next((n for n in nals if nal_type(n) == NAL_PPS), None)
        return cls(sps, pps) if sps and pps and len(sps) >= 4 else None

    def avcc(self) -> bytes:
        """AVCDecoderConfigurationRecord for the 'avcC' box; samples use 4-byte lengths."""
        profile, compat, level = self.sps[1], self.sps[2], self.sps[3]
        out = bytes([1, profile, compat, level, 0xFC | 3, 0xE0 | 1])
        out += len(self.sps).to_bytes(2, "big") + self.sps
        out += bytes([1]) + len(self.pps).to_bytes(2, "big") + self.pps
        if profile in _HIGH_PROFILES:
            # We only ever encode 8-bit 4:2:0 (yuv420p): chroma_format_idc 1, bit depths 8.
            out += bytes([0xFC | 1, 0xF8, 0xF8, 0])
        return out

    def codecs(self) -> str:
        """RFC 6381 name: profile_idc, constraint flags and level_idc straight from the SPS."""
        return f"avc1.{self.sps[1]:02x}{self.sps[2]:02x}{self.sps[3]:02x}"


START_CODE = b"\x00\x00\x00\x01"


def with_parameter_sets(data: bytes, nals: list[bytes], params: ParameterSets | None) -> bytes:
    """An Annex-B access unit with SPS and PPS in front of its IDR: a WebRTC viewer may start
    decoding at any IDR and has no out-of-band parameter sets."""
    types = {nal_type(n) for n in nals}
    if NAL_IDR not in types or {NAL_SPS, NAL_PPS} <= types or params is None:
        return data
    return START_CODE + params.sps + START_CODE + params.pps + data
