"""RtpOut without sockets: headers, sequence numbers, keyframe gating, skips, RTX, failures."""

from __future__ import annotations

from aiortc.rtp import RtpPacket, unwrap_rtx

from edge.playback.webrtc.rtpout import RtpOut
from tests.edge.webrtc.wire import RTX_SSRC, SSRC, Sink, out_to, send


def test_frames_become_packets_with_one_sequence_and_a_marker_at_each_frame_end() -> None:
    sink = Sink()
    out = out_to(sink, "video", ts_origin=1000)
    send(out, [b"a", b"b", b"c"], 3000, True, ntp=7)
    assert sink.batches == [3]  # one size: one batch
    send(out, [b"d"], 6000, False, ntp=8)
    packets = sink.packets
    assert [p.payload for p in packets] == [b"a", b"b", b"c", b"d"]
    assert [p.marker for p in packets] == [False, False, True, True]
    assert [p.timestamp for p in packets] == [4000, 4000, 4000, 7000]
    assert all(p.ssrc == SSRC and p.payload_type == 96 for p in packets)
    first = packets[0].seq
    assert [p.seq for p in packets] == [(first + i) & 0xFFFF for i in range(4)]
    for i in range(6):
        send(out, [b"e"], 9000 + i, False, ntp=9)
    # Sender-report counters every 8 frames: timestamp, NTP time, packets, payload octets.
    assert sink.reports == [(1000 + 9005, 9, 10, 10)]


def test_timestamps_and_sequence_numbers_wrap() -> None:
    sink = Sink()
    out = out_to(sink, "audio", ts_origin=0xFFFF_FFF0)
    out._seq = 0xFFFF
    send(out, [b"x"], 0x20, False, ntp=0)
    send(out, [b"y"], 0x40, False, ntp=0)
    assert [(p.seq, p.timestamp, p.marker) for p in sink.packets] == [
        (0xFFFF, 0x10, False),
        (0, 0x30, False),
    ]


def test_video_waits_for_a_keyframe_and_asks_for_one_when_it_connects() -> None:
    sink = Sink(connected=False)
    asked: list[str] = []
    out = out_to(sink, "video", asked)
    send(out, [b"k"], 0, True, ntp=0)  # ICE/DTLS not done: nothing, and no request
    assert not sink.datagrams and not asked
    sink.connected = True
    send(out, [b"p"], 3000, False, ntp=0)  # connected now, between keyframes
    assert not sink.datagrams and asked == ["viewer connected"]
    send(out, [b"k2"], 6000, True, ntp=0)
    send(out, [b"p2"], 9000, False, ntp=0)
    assert sink.payloads() == [b"k2", b"p2"]


def test_a_backed_up_viewer_skips_to_the_next_keyframe() -> None:
    sink = Sink()
    asked: list[str] = []
    out = out_to(sink, "video", asked)
    send(out, [b"k"], 0, True, ntp=0)
    sink.full = True
    send(out, [b"p1"], 3000, False, ntp=0)
    assert out.skips == 1 and out.waiting_key and asked == ["slow viewer"]
    sink.full = False
    send(out, [b"p2"], 6000, False, ntp=0)
    send(out, [b"k2"], 9000, True, ntp=0)
    assert sink.payloads() == [b"k", b"k2"]
    seqs = [p.seq for p in sink.packets]
    # The refused frame's number is never used again; frames skipped after it take none.
    assert seqs[1] == (seqs[0] + 2) & 0xFFFF


def test_audio_drops_while_backed_up_and_never_asks_for_keyframes() -> None:
    sink = Sink(full=True)
    asked: list[str] = []
    out = out_to(sink, "audio", asked)
    send(out, [b"a"], 0, False, ntp=0)
    assert out.skips == 1 and not sink.datagrams and not asked


def test_a_nacked_packet_is_sent_again_as_rtx_with_its_original_sequence_number() -> None:
    sink = Sink(rtx=True)
    out = out_to(sink, "video")
    send(out, [b"a", b"bb"], 0, True, ntp=0)
    lost = sink.packets[1]
    out.retransmit(lost.seq)
    out.retransmit((lost.seq + 5) & 0xFFFF)  # never sent: nothing
    rtx = sink.packets[2:]
    assert len(rtx) == 1 and rtx[0].payload_type == 97 and rtx[0].ssrc == RTX_SSRC
    assert rtx[0].payload == lost.seq.to_bytes(2, "big") + b"bb"
    assert rtx[0].timestamp == lost.timestamp and rtx[0].marker
    # And aiortc's receiver gets the original back from it.
    original = unwrap_rtx(RtpPacket.parse(sink.datagrams[2]), payload_type=96, ssrc=SSRC)
    assert (original.sequence_number, original.payload) == (lost.seq, b"bb")


def test_without_rtx_a_nack_is_not_answered() -> None:
    sink = Sink()
    out = out_to(sink, "video")
    send(out, [b"a"], 0, True, ntp=0)
    out.retransmit(sink.packets[0].seq)  # libsrtp would refuse it (test_sendpath.py)
    assert len(sink.datagrams) == 1


def test_a_partly_sent_batch_never_reuses_its_sequence_numbers() -> None:
    sink = Sink(partial=2)  # takes two datagrams of the next batch, then its buffer is full
    out = out_to(sink, "video")
    send(out, [b"a", b"b", b"c"], 0, True, ntp=0)
    sink.partial = None
    send(out, [b"k"], 3000, True, ntp=0)
    seqs = [p.seq for p in sink.packets]
    assert len(seqs) == 3 and len(set(seqs)) == 3  # a, b, then k with a number of its own


def test_a_failing_viewer_stops_alone_and_its_session_is_told() -> None:
    broken, fine = Sink(), Sink()
    bad, good = out_to(broken, "audio"), out_to(fine, "audio")
    failed: list[bool] = []
    bad.on_fail = lambda: failed.append(True)
    broken.fail = True
    for out in (bad, good):
        send(out, [b"a"], 0, False, ntp=0)
    assert bad.closed and broken.closed and not good.closed and failed == [True]
    send(bad, [b"b"], 960, False, ntp=0)  # closed: nothing more, and no error
    assert fine.payloads() == [b"a"]


def test_a_dead_connection_is_not_opened() -> None:
    sink = Sink(alive=False)
    out = out_to(sink, "audio")
    send(out, [b"a"], 0, False, ntp=0)
    assert not sink.datagrams and not out.closed  # it may come up yet; the session decides
    assert sink.closed  # the wire it opened is not kept


def test_a_connection_that_cannot_be_opened_stops_that_viewer_only() -> None:
    def broken() -> None:
        raise AttributeError("no nominated pair")

    out = RtpOut("audio", broken, [].append)  # type: ignore[arg-type]
    out.send([b"a"], [(0, 1)], 0, False, 0, 1)
    assert out.closed
