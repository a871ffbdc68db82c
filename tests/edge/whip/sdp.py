"""Offers as publishers send them, for handler tests."""

from __future__ import annotations

FINGERPRINT = ":".join(f"{b:02X}" for b in range(32))

# The shape of OBS 30's WHIP offer (libdatachannel): session-level ICE and DTLS attributes,
# audio first, no candidates at all, H.264 labelled 42e01f with packetization-mode=1.
OBS = f"""v=0
o=rtc 2882680427 0 IN IP4 127.0.0.1
s=-
t=0 0
a=group:BUNDLE 0 1
a=group:LS 0 1
a=msid-semantic:WMS *
a=setup:actpass
a=ice-ufrag:q3Ys
a=ice-pwd:Yl8ss0Jw5uwgSwmyHXFMpO
a=ice-options:ice2,trickle
a=fingerprint:sha-256 {FINGERPRINT}
m=audio 9 UDP/TLS/RTP/SAVPF 111
c=IN IP4 0.0.0.0
a=mid:0
a=sendonly
a=ssrc:1234 cname:obs
a=ssrc:1234 msid:obs-stream obs-audio
a=msid:obs-stream obs-audio
a=rtcp-mux
a=rtpmap:111 opus/48000/2
a=fmtp:111 minptime=10;maxaveragebitrate=96000;stereo=1;sprop-stereo=1;useinbandfec=1
m=video 9 UDP/TLS/RTP/SAVPF 96
c=IN IP4 0.0.0.0
a=mid:1
a=sendonly
a=ssrc:5678 cname:obs
a=ssrc:5678 msid:obs-stream obs-video
a=msid:obs-stream obs-video
a=rtcp-mux
a=rtpmap:96 H264/90000
a=rtcp-fb:96 nack
a=rtcp-fb:96 nack pli
a=rtcp-fb:96 goog-remb
a=fmtp:96 profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1
""".replace("\n", "\r\n")


def edit(sdp: str, old: str, new: str) -> str:
    assert old in sdp, old
    return sdp.replace(old, new)
