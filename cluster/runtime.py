"""Process lifetime for roles: the event loop, run until SIGTERM/SIGINT, then let the role tear
down in order."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Coroutine
from typing import Any


async def wait_for_signal() -> str:
    """Return the name of the first SIGTERM or SIGINT this process receives."""
    loop = asyncio.get_running_loop()
    got: asyncio.Future[str] = loop.create_future()

    def deliver(sig: signal.Signals) -> None:
        if not got.done():
            got.set_result(sig.name)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, deliver, sig)
    try:
        return await got
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def run(main: Coroutine[Any, Any, None], *, uvloop: bool = False) -> None:
    """Run a role's main coroutine; with `uvloop`, on uvloop's event loop (the edge: its HTTP
    serving costs markedly less CPU per request there, see docs/BENCHMARKS.md)."""
    if not uvloop:
        asyncio.run(main)
        return
    import uvloop as uv

    with asyncio.Runner(loop_factory=uv.new_event_loop) as runner:
        runner.run(main)
