"""WHEP offer checks (pure): an SDP offer in, BadRequest out when aiortc could not use it."""

from __future__ import annotations

from aiortc import sdp

from cluster.errors import BadRequest


def check_offer(text: str) -> None:
    """Reject what is not an SDP offer with audio or video before any peer connection exists."""
    if not text.startswith("v=0"):
        raise BadRequest("body is not an SDP offer (it must start with v=0)")
    try:
        description = sdp.SessionDescription.parse(text)
    except Exception as exc:  # aiortc's parser raises whatever the bad line provokes
        raise BadRequest(f"unreadable SDP offer: {exc}") from None
    media = [m for m in description.media if m.kind in ("audio", "video")]
    if not media:
        raise BadRequest("the offer has no audio or video section")
    if any(m.ice is None or not m.ice.usernameFragment or not m.dtls for m in media):
        raise BadRequest("the offer lacks ICE credentials or a DTLS fingerprint")
