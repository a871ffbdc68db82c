"""Small helpers the benchmark scripts share: waiting for a condition, probing a URL."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Callable


def wait_until(cond: Callable[[], object], what: str, timeout: float) -> None:
    """Poll `cond` every 50 ms; TimeoutError naming `what` if it stays false."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise TimeoutError(what)


def url_exists(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except Exception:
        return False
