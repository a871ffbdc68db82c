"""What the threads of one worker share: settings, the stop switch, the outputs and the timeline."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from cluster.ladder import AUDIO_RENDITION, Ladder
from transcoder.pipeline.control import Control
from transcoder.pipeline.feed import Feed
from transcoder.pipeline.keyreq import KeyRequests
from transcoder.pipeline.output import Output, Resume, resume_point
from transcoder.pipeline.timing import Grid, WallClock

MICROS = Fraction(1, 1_000_000)  # media-link timestamps
AUDIO = AUDIO_RENDITION  # the name of the audio rendition (no video rung may take it)


class Origin:
    """The publisher time of the worker's first output frame, and the segment grid from it.

    Set once, by the video chain (or by the audio chain of an audio-only stream); the audio
    chain waits for it so that its segments start, and are cut, where the video's are.
    """

    def __init__(self, gop_seconds: float) -> None:
        self.gop_seconds = gop_seconds
        self._grid: Grid | None = None
        self._lock = threading.Lock()

    def settle(self, t_us: int) -> Grid:
        with self._lock:
            if self._grid is None:
                self._grid = Grid.of(self.gop_seconds, t_us)
            return self._grid

    @property
    def grid(self) -> Grid | None:
        return self._grid


@dataclass
class Context:
    stream: str
    ladder: Ladder
    control: Control
    output: Output
    resume: dict[str, Resume]
    log: logging.LoggerAdapter[Any]
    clock: WallClock = field(default_factory=WallClock)
    keys: KeyRequests = field(default_factory=KeyRequests)  # IDRs the edge asked for
    feed: Feed | None = None  # the low-latency feed, once the link is up
    origin: Origin = field(init=False)
    resume_us: int = field(init=False)  # publisher time from which to output

    def __post_init__(self) -> None:
        self.origin = Origin(self.ladder.gop_seconds)
        self.resume_us = resume_point(self.resume, AUDIO, self.output.session)

    def resume_for(self, name: str) -> Resume:
        return self.resume.get(name, Resume())
