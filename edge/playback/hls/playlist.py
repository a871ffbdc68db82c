"""Playlist rendering (pure, RFC 8216): renditions and segment entries in, m3u8 text out.

URIs are relative to the playlist: a media playlist at /hls/S/R/index.m3u8 names its segments
`{msn}.m4s` and its init segments `init/{epoch}.mp4`, so the same text works behind any prefix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime

from cluster.hot.model import RenditionInfo, SegmentEntry

AUDIO_GROUP = "aud"


def _pdt(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def multivariant(renditions: Sequence[RenditionInfo]) -> str:
    audio = [r for r in renditions if r.kind == "audio"]
    video = sorted((r for r in renditions if r.kind == "video"), key=lambda r: -r.bandwidth)
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for i, a in enumerate(audio):
        lines.append(
            f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{AUDIO_GROUP}",NAME="{a.name}",LANGUAGE="und",'
            f'DEFAULT={"YES" if i == 0 else "NO"},AUTOSELECT=YES,CHANNELS="2",URI="{a.name}/index.m3u8"'
        )
    audio_bw = max((a.bandwidth for a in audio), default=0)
    for v in video:
        codecs = ",".join([v.codecs, *([audio[0].codecs] if audio else [])])
        attrs = [
            f"BANDWIDTH={v.bandwidth + audio_bw}",
            f'CODECS="{codecs}"',
            f"RESOLUTION={v.width}x{v.height}",
        ]
        if v.fps:
            attrs.append(f"FRAME-RATE={v.fps:.3f}")
        if audio:
            attrs.append(f'AUDIO="{AUDIO_GROUP}"')
        lines += ["#EXT-X-STREAM-INF:" + ",".join(attrs), f"{v.name}/index.m3u8"]
    if not video and audio:
        # Audio only: the audio rendition is the variant itself.
        a = audio[0]
        lines += [
            f'#EXT-X-STREAM-INF:BANDWIDTH={a.bandwidth},CODECS="{a.codecs}"',
            f"{a.name}/index.m3u8",
        ]
    return "\n".join(lines) + "\n"


def media(entries: Sequence[SegmentEntry], discontinuities: int) -> str:
    """A live media playlist over the window `entries` (oldest first).

    `discontinuities` is the writer's running count, including any discontinuity inside the
    window. A discontinuity on the window's first segment is folded into
    EXT-X-DISCONTINUITY-SEQUENCE rather than emitted, so that the sequence only ever grows as
    segments slide out.
    """
    if not entries:
        raise ValueError("a media playlist needs at least one segment")
    inner = sum(1 for e in entries[1:] if e.disc)
    target = max(1, math.ceil(max(e.duration for e in entries)))
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{target}",
        f"#EXT-X-MEDIA-SEQUENCE:{entries[0].msn}",
        f"#EXT-X-DISCONTINUITY-SEQUENCE:{max(0, discontinuities - inner)}",
    ]
    init_epoch: int | None = None
    for i, e in enumerate(entries):
        if i > 0 and e.disc:
            lines.append("#EXT-X-DISCONTINUITY")
        if e.epoch != init_epoch:
            lines.append(f'#EXT-X-MAP:URI="init/{e.epoch}.mp4"')
            init_epoch = e.epoch
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_pdt(e.pdt)}")
        lines += [f"#EXTINF:{e.duration:.3f},", f"{e.msn}.m4s"]
    return "\n".join(lines) + "\n"
