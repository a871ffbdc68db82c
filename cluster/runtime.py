"""Process lifetime for roles: run until SIGTERM/SIGINT, then let the role tear down in order."""

from __future__ import annotations

import asyncio
import signal


async def wait_for_signal() -> str:
    """Return the name of the first SIGTERM or SIGINT this process receives."""
    loop = asyncio.get_running_loop()
    got: asyncio.Future[str] = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda s=sig: got.done() or got.set_result(s.name))
    try:
        return await got
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
