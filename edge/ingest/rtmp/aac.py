"""AAC AudioSpecificConfig (ISO 14496-3 1.6.2.1): the sample rate and channel count it declares."""

from __future__ import annotations

from cluster.errors import BadRequest
from edge.ingest.rtmp.bits import BitReader

RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
# channelConfiguration 7 is 7.1, i.e. eight channels; 0 means "see the program config element".
CHANNELS = (0, 1, 2, 3, 4, 5, 6, 8)
SBR, PS = 5, 29


def _object_type(bits: BitReader) -> int:
    aot = bits.u(5)
    return 32 + bits.u(6) if aot == 31 else aot


def _rate(bits: BitReader) -> int:
    index = bits.u(4)
    if index == 15:
        return bits.u(24)
    if index >= len(RATES):
        raise BadRequest(f"AAC: reserved sampling frequency index {index}")
    return RATES[index]


def parse_asc(asc: bytes) -> tuple[int, int]:
    """(sample rate, channels) of an AudioSpecificConfig; channels is 0 when not declared."""
    if len(asc) < 2:
        raise BadRequest(f"AAC: AudioSpecificConfig of {len(asc)} bytes")
    bits = BitReader(asc)
    aot = _object_type(bits)
    if aot == 0:
        raise BadRequest("AAC: audio object type 0 (null)")
    rate = _rate(bits)
    config = bits.u(4)
    channels = CHANNELS[config] if config < len(CHANNELS) else 0
    if aot in (SBR, PS):
        # Explicit HE-AAC signalling: the decoder outputs at the extension rate.
        rate = _rate(bits)
    return rate, channels
