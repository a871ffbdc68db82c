"""Ladder profiles: named sets of renditions the transcoder encodes (config in, validated rungs out).

A stream uses a built-in profile by name, or its own ladder given when the stream is created: the
spec (`Ladder.to_spec`, plain JSON) is validated at that boundary, stored in the stream's
registry record, copied by the leader into the assignment, and rebuilt by the transcoder's worker
with `resolve`. Every node therefore encodes exactly the ladder the stream was created with,
whatever its own configuration says.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from cluster.errors import BadRequest
from cluster.ids import rendition_id

# libx264's presets; anything else is refused where the ladder is defined, not at encode time.
PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
)  # fmt: skip
MAX_RUNGS = 8
AUDIO_RENDITION = "audio"  # the audio rendition's name: no video rung may take it
WEBRTC_DEFAULT_HEIGHT = (
    720  # a custom ladder that marks no rung feeds WebRTC from the highest <= this
)
# Redis holds the window in memory and every playlist lists it: a short DVR, not an archive.
MAX_DVR_SECONDS = 1800
# Placement cost of a custom ladder: its pixel rate against the default ladder's (720p + 360p
# at 30 fps costs 1.0), so a 1080p ladder weighs what it encodes.
_DEFAULT_PIXELS_PER_SECOND = (1280 * 720 + 640 * 360) * 30


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
    dvr_seconds: float = 0.0  # how far back viewers may rewind; 0: the live window only

    def __post_init__(self) -> None:
        if not self.rungs:
            raise BadRequest(f"ladder {self.name!r} has no rungs")
        for rung in self.rungs:
            rendition_id(rung.name)
            if rung.name == AUDIO_RENDITION:
                raise BadRequest(
                    f"ladder {self.name!r}: {AUDIO_RENDITION!r} names the audio rendition"
                )
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
        if len(self.rungs) > MAX_RUNGS:
            raise BadRequest(f"ladder {self.name!r}: at most {MAX_RUNGS} rungs")
        for rung in self.rungs:
            if rung.height > 2160 or rung.video_kbps > 50_000:
                raise BadRequest(f"ladder {self.name!r}: {rung.name} is beyond 2160p or 50 Mbit/s")
        if not 1 <= self.fps <= 120:
            raise BadRequest(f"ladder {self.name!r}: fps must be in [1, 120]")
        if self.preset not in PRESETS:
            raise BadRequest(f"ladder {self.name!r}: preset must be one of {', '.join(PRESETS)}")
        if not 16 <= self.audio_kbps <= 512:
            raise BadRequest(f"ladder {self.name!r}: audio_kbps must be in [16, 512]")
        if not 0 <= self.dvr_seconds <= MAX_DVR_SECONDS:
            raise BadRequest(f"ladder {self.name!r}: dvr_seconds must be in [0, {MAX_DVR_SECONDS}]")
        if not 0 < self.cost <= 100:
            raise BadRequest(f"ladder {self.name!r}: cost must be in (0, 100]")

    def to_spec(self) -> dict[str, Any]:
        """Plain JSON: what the API shows and what a custom ladder is stored as."""
        return {
            "name": self.name,
            "rungs": [
                {"name": r.name, "height": r.height, "video_kbps": r.video_kbps, "webrtc": r.webrtc}
                for r in self.rungs
            ],
            "gop_seconds": self.gop_seconds,
            "part_seconds": self.part_seconds,
            "fps": self.fps,
            "preset": self.preset,
            "audio_kbps": self.audio_kbps,
            "cost": self.cost,
            "dvr_seconds": self.dvr_seconds,
        }

    @classmethod
    def from_spec(cls, spec: object) -> Ladder:
        """A ladder from user JSON; every problem is a BadRequest that names the field."""
        if not isinstance(spec, dict):
            raise BadRequest("ladder must be an object")
        unknown = set(spec) - {
            "name", "rungs", "gop_seconds", "part_seconds", "fps", "preset", "audio_kbps", "cost",
            "dvr_seconds",
        }  # fmt: skip
        if unknown:
            raise BadRequest(f"ladder: unknown fields {sorted(unknown)}")
        name = rendition_id(_typed(spec, "name", str, "custom"))
        raw_rungs = spec.get("rungs")
        if not isinstance(raw_rungs, list) or not raw_rungs:
            raise BadRequest("ladder.rungs must be a non-empty list")
        rungs = tuple(_rung(r) for r in raw_rungs)
        if not any(r.webrtc for r in rungs):
            # WebRTC viewers need a feed: the highest rung up to 720p (or the lowest one).
            fits = [r for r in rungs if r.height <= WEBRTC_DEFAULT_HEIGHT]
            pick = max(fits, key=lambda r: r.height) if fits else min(rungs, key=lambda r: r.height)
            rungs = tuple(dataclasses.replace(r, webrtc=r is pick) for r in rungs)
        fps = _typed(spec, "fps", int, 30)
        pixels = sum(r.height * r.height * 16 // 9 for r in rungs) * fps
        return cls(
            name=name,
            rungs=rungs,
            gop_seconds=float(_typed(spec, "gop_seconds", (int, float), 2.0)),
            part_seconds=float(_typed(spec, "part_seconds", (int, float), 0.5)),
            fps=fps,
            preset=_typed(spec, "preset", str, "veryfast"),
            audio_kbps=_typed(spec, "audio_kbps", int, 128),
            dvr_seconds=float(_typed(spec, "dvr_seconds", (int, float), 0.0)),
            cost=float(
                _typed(
                    spec,
                    "cost",
                    (int, float),
                    max(0.1, round(pixels / _DEFAULT_PIXELS_PER_SECOND, 2)),
                )
            ),
        )

    def window(self, live_segments: int) -> int:
        """Segments a media playlist lists: the live window, or the DVR window if longer."""
        return max(live_segments, math.ceil(self.dvr_seconds / self.gop_seconds))

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
    "hd": Ladder(
        "hd",
        (
            Rung("1080p", 1080, 5000),
            Rung("720p", 720, 2800, webrtc=True),
            Rung("480p", 480, 1400),
            Rung("360p", 360, 800),
        ),
        cost=2.5,
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


def _typed(spec: dict[str, Any], key: str, kind: type | tuple[type, ...], default: Any) -> Any:
    if key not in spec and default is None:
        raise BadRequest(f"ladder.{key} is required")
    value = spec.get(key, default)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise BadRequest(f"ladder.{key}: wrong type {type(value).__name__}")
    return value


def _rung(raw: object) -> Rung:
    if not isinstance(raw, dict):
        raise BadRequest("ladder.rungs: each rung must be an object")
    unknown = set(raw) - {"name", "height", "video_kbps", "webrtc"}
    if unknown:
        raise BadRequest(f"ladder rung: unknown fields {sorted(unknown)}")
    height = _typed(raw, "height", int, None)
    name = raw.get("name", f"{height}p")
    if not isinstance(name, str):
        raise BadRequest("ladder rung name must be a string")
    webrtc = raw.get("webrtc", False)
    if not isinstance(webrtc, bool):
        raise BadRequest("ladder rung webrtc must be true or false")
    return Rung(rendition_id(name), height, _typed(raw, "video_kbps", int, None), webrtc)


def resolve(profile: str, spec: dict[str, Any] | None = None) -> Ladder:
    """The ladder a stream encodes: its own spec when it has one, else the named profile."""
    return Ladder.from_spec(spec) if spec is not None else ladder(profile)


def ladder(name: str) -> Ladder:
    try:
        return LADDERS[name]
    except KeyError:
        raise BadRequest(f"unknown ladder profile {name!r}; known: {sorted(LADDERS)}") from None
