"""The audio side of the feed (the audio chain's 48 kHz stereo samples in, FEED_AUDIO Opus out).

Fed the very samples the AAC encoder gets, after the chain fitted them to its clock (gaps filled
with silence, overlaps dropped), so Opus packets are stamped by counting samples on the same
timeline: publisher time, the same instants as the HLS audio.
"""

from __future__ import annotations

from fractions import Fraction

import av
from av.audio.codeccontext import AudioCodecContext
from av.audio.frame import AudioFrame

from cluster.medialink.frames import FEED_AUDIO, CodecConfig, MediaPacket
from transcoder.pipeline.feed import Feed
from transcoder.pipeline.timing import AudioClock

RATE = 48_000  # what WebRTC's Opus always uses
LAYOUT = "stereo"
FORMAT = "flt"  # libopus takes interleaved samples (s16 or flt), the AAC path has planar ones
FRAME = 960  # 20 ms: the packet duration browsers expect
KBPS = 96


def open_encoder() -> AudioCodecContext:
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate, enc.layout, enc.format = RATE, LAYOUT, FORMAT
    enc.bit_rate = KBPS * 1000
    enc.time_base = Fraction(1, RATE)
    enc.options = {"frame_duration": "20"}
    enc.open()
    return enc


class OpusFeed:
    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.encoder = open_encoder()
        # Same rate and layout: only the sample layout in memory changes, with no delay.
        self._interleave = av.AudioResampler(format=FORMAT, layout=LAYOUT, rate=RATE)
        self._fifo = av.AudioFifo()
        self._chunks = 0  # Opus frames into the encoder
        self._encoded = 0  # Opus packets out
        extradata = bytes(self.encoder.extradata or b"")  # OpusHead, for decoders that want it
        feed.codec(
            CodecConfig(FEED_AUDIO, "audio", "opus", extradata, sample_rate=RATE, channels=2)
        )

    def write(self, frame: AudioFrame, clock: AudioClock) -> None:
        """Samples the AAC path put on `clock`'s timeline, in the same order."""
        for out in self._interleave.resample(frame):
            out.pts = None
            self._fifo.write(out)
        while self._fifo.samples >= FRAME:
            chunk = self._fifo.read(FRAME)
            if chunk is None:
                break
            chunk.pts = self._chunks * FRAME
            self._chunks += 1
            for packet in self.encoder.encode(chunk):
                # Stamped by count, like the AAC frames; the 6.5 ms look-ahead is ignored.
                t_us = clock.time_of(self._encoded * FRAME)
                self._encoded += 1
                self.feed.packet(MediaPacket(FEED_AUDIO, t_us, t_us, bytes(packet), True))
