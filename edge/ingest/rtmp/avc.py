"""H.264 decoder configuration (avcC) and the picture size its first SPS declares (ITU-T H.264 7.3.2.1.1)."""

from __future__ import annotations

from cluster.errors import BadRequest
from edge.ingest.rtmp.bits import BitReader

# Profiles whose SPS carries chroma format, bit depths and scaling matrices.
_HIGH_PROFILES = {100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135}


def check_avcc(avcc: bytes) -> None:
    """Refuse a sequence header that is not an AVCDecoderConfigurationRecord (ISO 14496-15)."""
    if len(avcc) < 7 or avcc[0] != 1:
        raise BadRequest(f"AVC sequence header is not an avcC record ({len(avcc)} bytes)")


def first_sps(avcc: bytes) -> bytes | None:
    if len(avcc) < 8 or avcc[5] & 0x1F == 0:
        return None
    size = int.from_bytes(avcc[6:8], "big")
    sps = avcc[8 : 8 + size]
    return sps if len(sps) == size else None


def _rbsp(nal: bytes) -> bytes:
    """Drop emulation prevention bytes (00 00 03 -> 00 00)."""
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


def _skip_scaling_list(bits: BitReader, size: int) -> None:
    last = scale = 8
    for _ in range(size):
        if scale:
            scale = (last + bits.se() + 256) % 256
        last = scale or last


def sps_size(sps: bytes) -> tuple[int, int]:
    """(width, height) in pixels after cropping."""
    bits = BitReader(_rbsp(sps[1:]))  # skip the NAL header byte
    profile = bits.u(8)
    bits.u(16)  # constraint flags, level
    bits.ue()  # seq_parameter_set_id
    chroma_format, separate_planes = 1, 0
    if profile in _HIGH_PROFILES:
        chroma_format = bits.ue()
        if chroma_format == 3:
            separate_planes = bits.u(1)
        bits.ue()  # bit_depth_luma_minus8
        bits.ue()  # bit_depth_chroma_minus8
        bits.u(1)  # qpprime_y_zero_transform_bypass_flag
        if bits.u(1):  # seq_scaling_matrix_present_flag
            for i in range(8 if chroma_format != 3 else 12):
                if bits.u(1):
                    _skip_scaling_list(bits, 16 if i < 6 else 64)
    bits.ue()  # log2_max_frame_num_minus4
    poc_type = bits.ue()
    if poc_type == 0:
        bits.ue()  # log2_max_pic_order_cnt_lsb_minus4
    elif poc_type == 1:
        bits.u(1)
        bits.se()
        bits.se()
        for _ in range(bits.ue()):
            bits.se()
    bits.ue()  # max_num_ref_frames
    bits.u(1)  # gaps_in_frame_num_value_allowed_flag
    width_mbs = bits.ue() + 1
    height_units = bits.ue() + 1
    frame_mbs_only = bits.u(1)
    if not frame_mbs_only:
        bits.u(1)  # mb_adaptive_frame_field_flag
    bits.u(1)  # direct_8x8_inference_flag
    left = right = top = bottom = 0
    if bits.u(1):
        left, right, top, bottom = bits.ue(), bits.ue(), bits.ue(), bits.ue()
    # Crop offsets count in chroma samples (Table 6-1), doubled vertically for field coding.
    if separate_planes or chroma_format == 0:
        unit_x, unit_y = 1, 2 - frame_mbs_only
    else:
        unit_x = 1 if chroma_format == 3 else 2
        unit_y = (2 if chroma_format == 1 else 1) * (2 - frame_mbs_only)
    width = width_mbs * 16 - unit_x * (left + right)
    height = (2 - frame_mbs_only) * height_units * 16 - unit_y * (top + bottom)
    if width <= 0 or height <= 0:
        raise BadRequest(f"H.264 SPS declares a {width}x{height} picture")
    return width, height


def avcc_size(avcc: bytes) -> tuple[int, int]:
    """The picture size of an avcC's first SPS, or (0, 0) when it cannot be read: the decoder
    downstream learns the size anyway, so an odd SPS must not refuse the stream."""
    sps = first_sps(avcc)
    if sps is None:
        return 0, 0
    try:
        return sps_size(sps)
    except BadRequest:
        return 0, 0
