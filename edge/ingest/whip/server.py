"""WHIP publishes at this edge: an offer and a stream key in, a running `WhipSession` and its answer out.

The order is the RTMP ingest's: nothing is written before the key is checked, and the publish is
answered only once a transcoder is placed (`Publishing.start`). The peer connection is negotiated
before that (it writes nothing, and a codec problem is better reported before a placement), but
its answer is made last, so that a refused publish costs no ICE gathering.
"""

from __future__ import annotations

import asyncio
import logging

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCSessionDescription
from aiortc.exceptions import InvalidAccessError, InvalidStateError, OperationError

from cluster.config import Settings
from cluster.errors import BadRequest, Conflict, NotFound
from cluster.ids import stream_id
from cluster.webrtc.ice import configuration
from edge.ingest.whip import passthrough
from edge.ingest.whip.offer import Offer, parse_offer
from edge.ingest.whip.packets import AUDIO_TRACK, VIDEO_TRACK, TrackIn
from edge.ingest.whip.session import Track, WhipSession
from edge.relay.publish import Publishing

log = logging.getLogger(__name__)


# How long a WHIP session must have delivered nothing, as a share of the idle timeout that would
# end it anyway, before a new one with the key replaces it: 3 s by default, longer than a
# video-only publisher waits for its next keyframe after a loss (frames count once delivered).
TAKEOVER_SHARE = 0.6


class WhipIngest:
    """Every WHIP session of this edge, by session id; `stop` ends them all."""

    def __init__(self, settings: Settings, publishing: Publishing) -> None:
        self.settings = settings
        self.publishing = publishing
        self.sessions: dict[str, WhipSession] = {}
        passthrough.install()

    async def publish(self, stream: str, key: str, body: bytes, peer: str) -> WhipSession:
        """Check, place and negotiate a publish; raises a ZoocastError to refuse it."""
        stream = stream_id(stream)
        offer = parse_offer(body)
        registry = self.publishing.registry
        await registry.record(stream)  # unknown stream: 404 (WHIP clients show the status)
        await registry.check_key(stream, key)
        if stream in self.publishing.sessions:
            await self._take_over(stream)
        pc = RTCPeerConnection(configuration(self.settings.stun_list))
        try:
            return await self._negotiate(pc, stream, key, offer, peer)
        except BaseException:
            await pc.close()
            raise

    async def _negotiate(
        self, pc: RTCPeerConnection, stream: str, key: str, offer: Offer, peer: str
    ) -> WhipSession:
        receivers = _receivers(pc, offer)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
        except (ValueError, InvalidAccessError, InvalidStateError, OperationError) as exc:
            raise BadRequest(f"the offer cannot be negotiated: {exc}") from None
        tracks = []
        for kind, receiver in receivers.items():
            track = receiver.track
            codec = (offer.video if kind == "video" else offer.audio) or ""
            number = VIDEO_TRACK if kind == "video" else AUDIO_TRACK
            tracks.append(Track(receiver, track, TrackIn(number, kind, codec.lower())))
        publish = await self.publishing.start("live", stream, {"key": key}, peer, "whip")
        try:
            # Gathers every candidate before it returns: the answer carries them (no trickle).
            await pc.setLocalDescription(await pc.createAnswer())
            s = self.settings
            session = WhipSession(
                pc, publish, tracks, s.whip_connect_timeout, s.whip_idle_timeout, self._closed
            )
        except BaseException:
            await publish.close("WHIP negotiation failed")
            raise
        self.sessions[session.id] = session
        session.start()
        publish.log.info("WHIP %s from %s: %s", session.id, peer, _codecs(offer))
        return session

    async def _take_over(self, stream: str) -> None:
        """The stream is being published: 409, unless it is a WHIP session gone silent.

        A publisher that reconnects (OBS after a network drop, a reloaded browser tab) holds the
        key, and its old session sends nothing any more but would hold the stream until its idle
        timeout. A session that still sends media is a second publisher, and is refused."""
        old = next((s for s in self.sessions.values() if s.stream == stream), None)
        if old is None or old.silent_for() < TAKEOVER_SHARE * self.settings.whip_idle_timeout:
            raise Conflict(f"stream {stream} is already being published")
        await old.close(f"replaced by a new WHIP session after {old.silent_for():.1f} s of silence")

    def get(self, stream: str, session_id: str) -> WhipSession:
        session = self.sessions.get(session_id)
        if session is None or session.stream != stream:
            raise NotFound(f"no WHIP session {session_id} for stream {stream}")
        return session

    def _closed(self, session: WhipSession) -> None:
        if self.sessions.get(session.id) is session:
            del self.sessions[session.id]

    async def stop(self) -> None:
        await asyncio.gather(*(s.close("edge stopping") for s in list(self.sessions.values())))


def _receivers(pc: RTCPeerConnection, offer: Offer) -> dict[str, RTCRtpReceiver]:
    """A receive-only transceiver per offered kind, answering with only the chosen codec (and
    its retransmission), its receiver marked for pass-through before any media can arrive."""
    out = {}
    for kind, codec in (("video", offer.video), ("audio", offer.audio)):
        if codec is None:
            continue
        transceiver = pc.addTransceiver(kind, direction="recvonly")
        caps = RTCRtpReceiver.getCapabilities(kind)
        assert caps is not None
        transceiver.setCodecPreferences([c for c in caps.codecs if c.name in (codec, "rtx")])
        passthrough.mark(transceiver.receiver)
        out[kind] = transceiver.receiver
    return out


def _codecs(offer: Offer) -> str:
    return ", ".join(c for c in (offer.video, offer.audio) if c) or "no media"
