"""A WHIP offer checked before any resource is spent on it (pure: SDP text in, `Offer` or BadRequest out).

What is refused, each with a detail a publisher can act on: a body that is not SDP; an offer
without an audio or video m-line, with more than one of a kind, or one that does not send; video
without H.264 constrained baseline (packetization-mode=1, what aiortc can negotiate) or VP8; audio
without Opus; simulcast (aiortc has none, and answering without it is not something every
encoder handles: better a clear refusal than a silent single layer).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aiortc import sdp
from aiortc.codecs import CODECS
from aiortc.rtcpeerconnection import is_codec_compatible
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from cluster.errors import BadRequest

MAX_OFFER = 64 * 1024  # an OBS or browser offer is 2-8 KB
VIDEO_CODECS = ("H264", "VP8")
AUDIO_CODECS = ("opus",)
_SIMULCAST = re.compile(r"^a=(simulcast|rid):", re.MULTILINE)


@dataclass(frozen=True)
class Offer:
    sdp: str
    video: str | None  # the codec to answer with, by aiortc's name: H264 | VP8
    audio: str | None  # opus


def parse_offer(raw: bytes) -> Offer:
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise BadRequest("the offer is not UTF-8 text") from None
    if not text.lstrip().startswith("v=0"):
        raise BadRequest("the body is not an SDP offer (it must start with v=0)")
    if _SIMULCAST.search(text):
        raise BadRequest(
            "simulcast is not supported: publish a single encoding "
            "(in OBS, turn simulcast off in the WHIP output settings)"
        )
    try:
        desc = sdp.SessionDescription.parse(text.replace("\r\n", "\n").replace("\n", "\r\n"))
    except Exception as exc:  # aiortc's parser raises whatever the bad line provokes
        detail = str(exc) or f"{exc.__class__.__name__} on a malformed line"
        raise BadRequest(f"unreadable SDP: {detail}") from None
    chosen: dict[str, str] = {}
    for media in desc.media:
        if media.kind == "application":
            continue  # a data channel is answered by aiortc and ignored by us
        if media.kind not in ("audio", "video"):
            raise BadRequest(f"unsupported m-line {media.kind!r}")
        if media.kind in chosen:
            raise BadRequest(f"more than one {media.kind} m-line: publish one video and one audio")
        if media.direction not in ("sendonly", "sendrecv"):
            raise BadRequest(f"the {media.kind} m-line does not send ({media.direction})")
        if media.ice is None or media.dtls is None:
            raise BadRequest(f"the {media.kind} m-line lacks ICE credentials or a DTLS fingerprint")
        # The m-line's format list is the publisher's order of preference (RFC 3264);
        # aiortc lists codecs in the order of their rtpmap lines instead.
        rank = {str(f): i for i, f in enumerate(media.fmt)}
        offered = sorted(media.rtp.codecs, key=lambda c: rank.get(str(c.payloadType), len(rank)))
        chosen[media.kind] = _codec(media.kind, offered)
    if not chosen:
        raise BadRequest("the offer has no audio or video m-line")
    return Offer(text, chosen.get("video"), chosen.get("audio"))


def _codec(kind: str, offered: list[RTCRtpCodecParameters]) -> str:
    """The first offered codec we take (the publisher's preference), by aiortc's name."""
    wanted = VIDEO_CODECS if kind == "video" else AUDIO_CODECS
    local = [c for c in CODECS[kind] if c.name in wanted]
    for codec in offered:
        for ours in local:
            if is_codec_compatible(ours, codec):
                return str(ours.name)
    names = sorted({_describe(c) for c in offered}) or ["none"]
    if kind == "video":
        need = "H.264 constrained baseline (42e01f or 42001f, packetization-mode=1) or VP8"
    else:
        need = "Opus"
    raise BadRequest(
        f"no usable {kind} codec: offered {', '.join(names)}; WHIP ingest takes {need}"
    )


def _describe(codec: RTCRtpCodecParameters) -> str:
    if codec.name.upper() == "H264":
        profile = codec.parameters.get("profile-level-id", "?")
        return f"H264 {profile} pm={codec.parameters.get('packetization-mode', 0)}"
    return codec.name
