"""The worker's low-latency feed, end to end: fake edge in, real encoders, feed read back by the
edge and decoded, HLS in real Redis alongside."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import av
import redis
from av.audio.codeccontext import AudioCodecContext
from av.audio.frame import AudioFrame
from av.video.codeccontext import VideoCodecContext
from av.video.frame import VideoFrame

from cluster.medialink.frames import FEED_AUDIO, FEED_VIDEO, CodecConfig, Kind, MediaPacket
from tests.conftest import wait_for
from tests.transcoder.conftest import StartWorker
from tests.transcoder.pipeline import hot
from tests.transcoder.pipeline.edge import FakeEdge, Feed
from tests.transcoder.pipeline.media import FPS, Media
from transcoder.pipeline import avc
from transcoder.pipeline.job import Job

GOP_US = 2_000_000  # the tiny ladder's gop_seconds


def decode_video(cfg: CodecConfig, packets: list[MediaPacket]) -> list[VideoFrame]:
    decoder = av.CodecContext.create(cfg.codec, "r")
    assert isinstance(decoder, VideoCodecContext)
    out: list[VideoFrame] = []
    for p in packets:
        out += decoder.decode(av.Packet(p.data))
    return out + decoder.decode(None)


def decode_audio(cfg: CodecConfig, packets: list[MediaPacket]) -> list[AudioFrame]:
    decoder = av.CodecContext.create(cfg.codec, "r")
    assert isinstance(decoder, AudioCodecContext)
    decoder.extradata = cfg.extradata
    decoder.sample_rate = cfg.sample_rate
    out: list[AudioFrame] = []
    for p in packets:
        out += decoder.decode(av.Packet(p.data))
    return out


def clip_video(clip: Media) -> int:
    return next(c.track for c in clip.codecs if c.kind == "video")


def keys_at(packets: list[MediaPacket]) -> list[int]:
    return [p.pts_us for p in packets if p.keyframe]


def test_the_feed_carries_the_webrtc_rung_and_opus_besides_hls(
    redis_sync: redis.Redis,
    clip: Media,
    edge: FakeEdge,
    make_job: Callable[..., Job],
    start_worker: StartWorker,
) -> None:
    edge.feed(Feed(live=clip.packets))
    proc = start_worker(make_job(1))
    wait_for(lambda: hot.has_segments(redis_sync, "cam", 3), "3 segments in every rendition", 30)
    wait_for(lambda: len(edge.feed_packets(FEED_VIDEO)) >= 3 * 2 * FPS, "3 GOPs of feed video")
    edge.send_eos()
    proc.join(10)
    assert proc.exitcode == 0

    codecs = edge.feed_codecs()
    video_cfg, audio_cfg = codecs[FEED_VIDEO], codecs[FEED_AUDIO]
    # The 240p rung at the clip's aspect ratio (the source's own size).
    assert (video_cfg.kind, video_cfg.codec, video_cfg.bitstream) == ("video", "h264", "annexb")
    assert (video_cfg.width, video_cfg.height) == (426, 240)
    assert (audio_cfg.kind, audio_cfg.codec) == ("audio", "opus")
    assert (audio_cfg.sample_rate, audio_cfg.channels) == (48_000, 2)
    # Each track's CODEC comes before its first packet.
    got = edge.received[-1]
    for track in (FEED_VIDEO, FEED_AUDIO):
        codec_at = next(
            i for i, f in enumerate(got) if f.kind is Kind.CODEC and f.codec().track == track
        )
        packet_at = next(
            i for i, f in enumerate(got) if f.kind is Kind.PACKET and f.packet().track == track
        )
        assert codec_at < packet_at

    video = edge.feed_packets(FEED_VIDEO)
    # The publisher's timestamps, frame for frame; no B-frames.
    source = {p.pts_us for p in clip.packets if p.track == clip_video(clip)}
    assert all(p.pts_us == p.dts_us and p.pts_us in source for p in video)
    assert [p.pts_us for p in video] == sorted(p.pts_us for p in video)
    assert keys_at(video)[:4] == [0, GOP_US, 2 * GOP_US, 3 * GOP_US]  # the HLS grid
    for p in video:
        if p.keyframe:
            nals = avc.split_annexb(p.data)
            types = [avc.nal_type(n) for n in nals]
            assert types[:2] == [avc.NAL_SPS, avc.NAL_PPS] and avc.NAL_IDR in types
            sps = nals[0]
            # profile_idc 66 with constraint_set1: constrained baseline, as aiortc needs.
            assert sps[1] == 66 and sps[2] & 0x40
    frames = decode_video(video_cfg, video)
    assert len(frames) == len(video)
    assert {(f.width, f.height) for f in frames} == {(426, 240)}

    opus = edge.feed_packets(FEED_AUDIO)
    steps = {b.pts_us - a.pts_us for a, b in itertools.pairwise(opus)}
    assert steps <= {19_999, 20_000, 20_001}  # 20 ms packets on the publisher's clock
    assert abs(opus[0].pts_us) < 25_000
    samples = decode_audio(audio_cfg, opus)
    assert samples and all(f.sample_rate == 48_000 for f in samples)
    assert sum(f.samples for f in samples) >= 960 * (len(opus) - 1)

    # HLS as before; the WebRTC rung's HLS rendition is the same constrained-baseline encode
    # (120p too, with the ultrafast preset of the tiny ladder).
    info = hot.renditions(redis_sync, "cam")
    assert set(info) == {"240p", "120p", "audio"}
    assert info["240p"].codecs.startswith("avc1.42c0")


def test_keyreq_forces_one_idr_on_the_webrtc_rung_rate_limited(
    redis_sync: redis.Redis,
    clip: Media,
    edge: FakeEdge,
    make_job: Callable[..., Job],
    start_worker: StartWorker,
) -> None:
    live = clip.until(5_000_000)
    edge.feed(Feed(live=live, pace=1.0))
    proc = start_worker(make_job(1))
    wait_for(
        lambda: GOP_US in keys_at(edge.feed_packets(FEED_VIDEO)),
        "the feed's grid keyframe at 2 s",
        20,
    )
    before = edge.keyreq()
    time.sleep(0.01)  # the second request 10 ms after the first (spacing, not a wait)
    edge.keyreq()
    wait_for(
        lambda: 2 * GOP_US in keys_at(edge.feed_packets(FEED_VIDEO)),
        "the feed's grid keyframe at 4 s",
        20,
    )
    proc.terminate()
    proc.join(10)

    extra = [t for t in keys_at(edge.feed_packets(FEED_VIDEO)) if GOP_US < t < 2 * GOP_US]
    assert len(extra) == 1, extra  # two requests 10 ms apart: one IDR
    # The worker reads KEYREQ after the packets sent before it, so the IDR lands at the latest
    # on the first frame sent after it: the frames in flight, not the rest of the GOP.
    first_after = next(p.pts_us for p in live[before:] if p.track == clip_video(clip))
    assert extra[0] <= first_after, (extra, first_after)
    # Only the WebRTC rung got it: the other rung's HLS keyframes stay on the grid.
    segs = hot.entries(redis_sync, "cam", "120p")
    lower = hot.video(hot.file_of(redis_sync, "cam", "120p", segs))
    assert [round(hot.at(f) * 1e6) for f in lower if f.key_frame] == [
        n * GOP_US for n in range(len(segs))
    ]


def test_a_successors_feed_continues_on_the_publishers_clock(
    redis_sync: redis.Redis,
    clip: Media,
    edge: FakeEdge,
    make_job: Callable[..., Job],
    start_worker: StartWorker,
) -> None:
    cut_us = 4_500_000
    edge.feed(Feed(live=clip.until(cut_us)))
    a = start_worker(make_job(1))
    wait_for(lambda: hot.has_segments(redis_sync, "cam", 2), "A's two segments", 30)
    a.terminate()
    a.join(5)
    a_video = edge.feed_packets(FEED_VIDEO, link=0)

    # B gets a GOP-cache replay from 3 s: it decodes from there, outputs from A's end (4 s).
    replay, live = clip.split(replay_from_us=3_000_000, live_from_us=cut_us)
    edge.feed(Feed(replay=replay, live=live))
    b = start_worker(make_job(2))
    wait_for(lambda: hot.has_segments(redis_sync, "cam", 3), "B's first segment", 30)
    wait_for(lambda: edge.feed_codecs(link=1).keys() == {FEED_VIDEO, FEED_AUDIO}, "B's CODECs")
    edge.send_eos()
    b.join(10)
    assert b.exitcode == 0

    b_video = edge.feed_packets(FEED_VIDEO, link=1)
    # B's feed starts where its HLS does, on the grid: before A's feed ended (A sent frames of
    # the segment it never closed). Same clock, so the overlap is the same frames.
    assert b_video[0].pts_us == 2 * GOP_US < a_video[-1].pts_us
    assert b_video[0].keyframe
    assert {p.pts_us for p in b_video} <= {p.pts_us for p in clip.packets}
    # Where live packets take over from the replay, an IDR: the edge switches viewers there.
    first_live = min(p.pts_us for p in live if p.track == clip_video(clip))
    assert first_live > a_video[-1].pts_us
    assert first_live in keys_at(b_video)
    b_audio = edge.feed_packets(FEED_AUDIO, link=1)
    assert abs(b_audio[0].pts_us - 2 * GOP_US) < 25_000
