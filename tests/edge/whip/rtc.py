"""In-process aiortc peers on loopback: a sender with chosen tracks and codec, a receiver."""

from __future__ import annotations

from collections.abc import Callable

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender

from cluster.webrtc.ice import announce_hosts, configuration


def prefer(pc: RTCPeerConnection, kind: str, codec: str) -> None:
    """Offer only `codec` (and its retransmission) for the transceivers of `kind`."""
    caps = RTCRtpSender.getCapabilities(kind)
    assert caps is not None
    wanted = [c for c in caps.codecs if c.name.lower() in {codec.lower(), "rtx"}]
    for t in pc.getTransceivers():
        if t.kind == kind:
            t.setCodecPreferences(wanted)


def sender(tracks: list[MediaStreamTrack], video_codec: str = "H264") -> RTCPeerConnection:
    announce_hosts(["127.0.0.1"])
    pc = RTCPeerConnection(configuration())
    for track in tracks:
        pc.addTransceiver(track, direction="sendonly")
    prefer(pc, "video", video_codec)
    return pc


async def connect(
    send: RTCPeerConnection, on_receivers: Callable[[list[RTCRtpReceiver]], None] | None = None
) -> RTCPeerConnection:
    """A receiving peer for `send`, negotiated directly; `on_receivers` runs before the answer."""
    recv = RTCPeerConnection(configuration())
    await send.setLocalDescription(await send.createOffer())
    await recv.setRemoteDescription(send.localDescription)
    if on_receivers is not None:
        on_receivers([t.receiver for t in recv.getTransceivers()])
    await recv.setLocalDescription(await recv.createAnswer())
    await send.setRemoteDescription(recv.localDescription)
    return recv
