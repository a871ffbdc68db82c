"""Playlist rendering (pure, RFC 8216bis): renditions, segments and parts in, m3u8 text out.

URIs are relative to the playlist: a media playlist at /hls/S/R/index.m3u8 names its segments
`{msn}.m4s`, its parts `part/{epoch}/{msn}.{part}.m4s` and its init segments `init/{epoch}.mp4`,
so the same text works behind any prefix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cluster.hot.model import PartEntry, RenditionInfo, SegmentEntry

AUDIO_GROUP = "aud"
# Multiples from RFC 8216bis: CAN-SKIP-UNTIL at least six target durations; HOLD-BACK at least
# three; PART-HOLD-BACK at least two part targets (three recommended, which players honour);
# parts listed for the last three target durations.
SKIP_TARGETS = 6
HOLD_BACK_TARGETS = 3
PART_HOLD_BACK_PARTS = 3
PART_TARGETS = 3


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


@dataclass(frozen=True)
class Report:
    """EXT-X-RENDITION-REPORT: where another rendition of the stream stands."""

    rendition: str
    last_msn: int
    last_part: int  # -1: no part of `last_msn` yet


@dataclass(frozen=True)
class LowLatency:
    """What a media playlist needs beyond its segments to be a Low-Latency HLS playlist."""

    part_target: float  # seconds; every part is at most this long
    writer_epoch: int  # the writer of the next part (the preload hint names it)
    open_parts: Sequence[PartEntry] = ()  # parts of the segment being written, oldest first
    reports: Sequence[Report] = ()


def skippable(entries: Sequence[SegmentEntry], target: int) -> int:
    """How many leading segments a delta update may skip: those more than CAN-SKIP-UNTIL
    (six target durations) from the end of the playlist."""
    horizon = SKIP_TARGETS * target
    start_to_end = 0.0
    for i in range(len(entries) - 1, -1, -1):
        start_to_end += entries[i].duration
        if start_to_end > horizon:
            return i + 1
    return 0


def media(
    entries: Sequence[SegmentEntry],
    discontinuities: int,
    ll: LowLatency | None = None,
    skip: bool = False,
) -> str:
    """A live media playlist over the window `entries` (complete segments, oldest first).

    `discontinuities` is the writer's running count, including any discontinuity inside the
    window. A discontinuity on the window's first segment is folded into
    EXT-X-DISCONTINUITY-SEQUENCE rather than emitted, so that the sequence only ever grows as
    segments slide out. With `ll`, the playlist is Low-Latency HLS: server control for blocking
    reloads and delta updates, the parts of the last segments and of the one being written, a
    preload hint for the next part, and reports on the other renditions. `skip` renders the
    delta update (_HLS_skip=YES): the oldest segments replaced by EXT-X-SKIP.
    """
    if not entries:
        raise ValueError("a media playlist needs at least one segment")
    inner = sum(1 for e in entries[1:] if e.disc)
    open_parts = list(ll.open_parts) if ll else []
    longest = max([e.duration for e in entries] + [p.duration for p in open_parts])
    target = max(1, math.ceil(longest))
    lines = [
        "#EXTM3U",
        f"#EXT-X-VERSION:{9 if ll else 7}",
        f"#EXT-X-TARGETDURATION:{target}",
    ]
    skipped = 0
    if ll:
        part_target = ll.part_target
        lines.append(
            "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,"
            f"CAN-SKIP-UNTIL={SKIP_TARGETS * target:.1f},"
            f"HOLD-BACK={HOLD_BACK_TARGETS * target:.3f},"
            f"PART-HOLD-BACK={PART_HOLD_BACK_PARTS * part_target:.3f}"
        )
        lines.append(f"#EXT-X-PART-INF:PART-TARGET={part_target:.3f}")
        if skip:
            skipped = skippable(entries, target)
    lines += [
        f"#EXT-X-MEDIA-SEQUENCE:{entries[0].msn}",
        f"#EXT-X-DISCONTINUITY-SEQUENCE:{max(0, discontinuities - inner)}",
    ]
    if skipped:
        lines.append(f"#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}")
    # Parts are listed for the segments that start within three target durations of the end.
    parts_from = len(entries)
    if ll:
        tail = sum(p.duration for p in open_parts)
        while parts_from > 0 and tail + entries[parts_from - 1].duration <= PART_TARGETS * target:
            parts_from -= 1
            tail += entries[parts_from].duration
    init_epoch: int | None = None
    for i, e in enumerate(entries):
        if i < skipped:
            continue
        if i > 0 and e.disc:
            lines.append("#EXT-X-DISCONTINUITY")
        if e.epoch != init_epoch:
            lines.append(f'#EXT-X-MAP:URI="init/{e.epoch}.mp4"')
            init_epoch = e.epoch
        lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{_pdt(e.pdt)}")
        if e.gap:
            lines.append("#EXT-X-GAP")
        elif i >= parts_from:
            lines += [_part(p) for p in e.part_list()]
        lines += [f"#EXTINF:{e.duration:.3f},", f"{e.msn}.m4s"]
    if ll:
        next_msn = entries[-1].msn + 1
        if open_parts:
            if open_parts[0].disc:
                lines.append("#EXT-X-DISCONTINUITY")
            if open_parts[0].epoch != init_epoch:
                lines.append(f'#EXT-X-MAP:URI="init/{open_parts[0].epoch}.mp4"')
            lines += [_part(p) for p in open_parts]
        # By index, not count: a part lost to a failed write leaves a hole in the count.
        hint = part_uri(ll.writer_epoch, next_msn, next_part(open_parts))
        lines.append(f'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="{hint}"')
        for r in ll.reports:
            attrs = f'URI="../{r.rendition}/index.m3u8",LAST-MSN={r.last_msn}'
            if r.last_part >= 0:
                attrs += f",LAST-PART={r.last_part}"
            lines.append(f"#EXT-X-RENDITION-REPORT:{attrs}")
    return "\n".join(lines) + "\n"


def next_part(open_parts: Sequence[PartEntry]) -> int:
    """The index of the part the writer will publish next in the open segment."""
    return open_parts[-1].index + 1 if open_parts else 0


def part_uri(epoch: int, msn: int, index: int) -> str:
    """Parts are named by their writer too: a successor rewrites the parts of the segment its
    predecessor left unfinished, and a URI, once published, must keep its bytes."""
    return f"part/{epoch}/{msn}.{index}.m4s"


def _part(p: PartEntry) -> str:
    attrs = f'DURATION={p.duration:.3f},URI="{part_uri(p.epoch, p.msn, p.index)}"'
    return f"#EXT-X-PART:{attrs}{',INDEPENDENT=YES' if p.independent else ''}"
