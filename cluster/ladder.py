"""Ladder profiles: named sets of renditions the transcoder encodes (config in, validated rungs out)."""

from __future__ import annotations

from dataclasses import dataclass

from cluster.errors import BadRequest
from cluster.ids import rendition_id


@dataclass(frozen=True)
class Rung:
    name: str
    height: int
    video_kbps: int
    # The rung WebRTC viewers get: encoded as constrained baseline (what aiortc and browsers
    # accept) and sent to the edge as the low-latency feed besides being packaged for HLS.
    webrtc: bool = False

    def width_for(self, src_width: int, src_height: int) -> int:
        """Keep the source aspect ratio; H.264 4:2:0 needs even sizes."""
        w = round(src_width * self.height / src_height)
        return max(2, w - (w % 2))


@dataclass(frozen=True)
class Ladder:
    name: str
    rungs: tuple[Rung, ...]
    gop_seconds: float = 2.0
    part_seconds: float = 0.5  # LL-HLS part target; parts of a segment are at most this long
    fps: int = 30
    preset: str = "veryfast"
    audio_kbps: int = 128
    cost: float = 1.0  # placement cost units, compared against a transcoder's capacity

    def __post_init__(self) -> None:
        if not self.rungs:
            raise BadRequest(f"ladder {self.name!r} has no rungs")
        for rung in self.rungs:
            rendition_id(rung.name)
            if rung.height < 16 or rung.height % 2 or rung.video_kbps <= 0:
                raise BadRequest(f"ladder {self.name!r}: bad rung {rung}")
        if len({r.name for r in self.rungs}) != len(self.rungs):
            raise BadRequest(f"ladder {self.name!r}: duplicate rung names")
        if sum(r.webrtc for r in self.rungs) > 1:
            raise BadRequest(f"ladder {self.name!r}: more than one WebRTC rung")
        if not 0.5 <= self.gop_seconds <= 10:
            raise BadRequest(f"ladder {self.name!r}: gop_seconds must be in [0.5, 10]")
        if not 0.1 <= self.part_seconds <= self.gop_seconds:
            raise BadRequest(f"ladder {self.name!r}: part_seconds must be in [0.1, gop_seconds]")

    def rungs_for(self, src_height: int) -> tuple[Rung, ...]:
        """Rungs not above the source (never upscale); the lowest rung is kept whatever the source."""
        kept = tuple(r for r in self.rungs if r.height <= src_height)
        return kept or (min(self.rungs, key=lambda r: r.height),)

    def webrtc_rung(self, kept: tuple[Rung, ...]) -> Rung | None:
        """Which of the kept rungs feeds WebRTC: the marked one, or the highest kept when the
        source is too small for it (viewers still get a feed); None if the ladder marks none."""
        marked = next((r for r in self.rungs if r.webrtc), None)
        if marked is None or not kept:
            return None
        return marked if marked in kept else max(kept, key=lambda r: r.height)


LADDERS: dict[str, Ladder] = {
    "default": Ladder(
        "default",
        (Rung("720p", 720, 2500, webrtc=True), Rung("360p", 360, 800)),
    ),
    # Small enough that a 2-core CI machine carries a few streams at once.
    "tiny": Ladder(
        "tiny",
        (Rung("240p", 240, 400, webrtc=True), Rung("120p", 120, 150)),
        fps=15,
        preset="ultrafast",
        audio_kbps=64,
    ),
}


def ladder(name: str) -> Ladder:
    try:
        return LADDERS[name]
    except KeyError:
        raise BadRequest(f"unknown ladder profile {name!r}; known: {sorted(LADDERS)}") from None
