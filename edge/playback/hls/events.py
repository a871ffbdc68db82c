"""New parts and segments, announced by the transcoders over Redis pub/sub, waking held requests.

One pub/sub connection per edge, subscribed on demand to the channels that have waiting
requests, so an edge hears only about the renditions its viewers are blocked on. A waiting
request is one future: thousands of held playlist requests cost a set entry each, and one
message wakes them all. A waiter is registered *before* its caller reads the state it waits on,
so a part announced between the read and the wait is never missed. If the connection drops,
every waiter is woken (they re-read Redis and wait again) while it reconnects.

`generation(channel)` counts the messages seen on a channel (and the connections lost), so a
cache of what a channel announces can tell whether anything happened since it was filled.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time

import redis.asyncio

log = logging.getLogger(__name__)

RECONNECT_PAUSE = 0.5
IDLE_UNSUBSCRIBE = 60.0  # seconds a channel stays subscribed after its last waiter


class Events:
    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._client = client
        self._pubsub: redis.asyncio.client.PubSub | None = None
        self._waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._subscribed: dict[str, float] = {}  # channel -> last time it had a waiter
        self._connected = asyncio.Event()
        # Per followed channel: a number from one counter, drawn anew at every message and at
        # every (re)subscription, so a generation once handed out never stands for a later
        # state, and a channel no longer followed can be forgotten.
        self._counts: dict[str, int] = {}
        self._seq = itertools.count(1)
        self._lost = 0  # connections lost: every generation moves on
        self._task: asyncio.Task[None] | None = None
        self.messages = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hls events")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._wake_all()

    @property
    def waiting(self) -> int:
        return sum(len(w) for w in self._waiters.values())

    async def waiter(self, channel: str) -> asyncio.Future[None]:
        """A future resolved by the next message on `channel` (or a reconnect). Register it
        before reading what it guards; `discard` it when done."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(channel, set()).add(fut)
        try:
            await self.watch(channel)
        except BaseException:  # cancelled (its client left) while subscribing: not waiting
            self.discard(channel, fut)
            raise
        return fut

    async def watch(self, channel: str) -> tuple[int, int] | None:
        """Make sure `channel` is followed; its generation, or None when the pub/sub connection
        is down (then nothing announced can be trusted to arrive)."""
        if channel not in self._subscribed:
            self._subscribed[channel] = time.monotonic()
            await self._subscribe(channel)
            # Messages went by unseen while the channel was not followed.
            self._counts[channel] = next(self._seq)
        self._subscribed[channel] = time.monotonic()
        return self.generation(channel) if self._connected.is_set() else None

    def current(self, channel: str) -> tuple[int, int] | None:
        """The generation of a followed channel, without waiting (None when not followed or
        the connection is down); marks the channel as still wanted, as `watch` does."""
        if channel not in self._subscribed or not self._connected.is_set():
            return None
        self._subscribed[channel] = time.monotonic()
        return self.generation(channel)

    def following(self, channel: str) -> bool:
        return channel in self._subscribed

    def generation(self, channel: str) -> tuple[int, int]:
        return (self._lost, self._counts.get(channel, 0))

    def discard(self, channel: str, fut: asyncio.Future[None]) -> None:
        waiters = self._waiters.get(channel)
        if waiters is not None:
            waiters.discard(fut)
            if not waiters:
                del self._waiters[channel]

    async def _subscribe(self, channel: str) -> None:
        # Wait for the connection so that the subscription is in place before the caller reads
        # the state; without one the caller still gets woken when it comes back.
        try:
            await asyncio.wait_for(self._connected.wait(), RECONNECT_PAUSE * 4)
        except TimeoutError:
            return
        if self._pubsub is not None:
            try:
                await self._pubsub.subscribe(channel)
            except (redis.ConnectionError, redis.TimeoutError):
                self._subscribed.pop(channel, None)

    async def _run(self) -> None:
        while True:
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)
            try:
                # A placeholder keeps the connection in subscribed mode while nobody waits.
                await pubsub.subscribe("zc:edge:hello")
                if self._subscribed:
                    await pubsub.subscribe(*self._subscribed)
                self._pubsub = pubsub
                self._connected.set()
                await self._listen(pubsub)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                log.warning("hls events: redis pub/sub lost (%s); reconnecting", exc)
            except Exception:
                # Anything else must not end the loop silently: every held request would
                # then run into its timeout.
                log.exception("hls events: listener failed; reconnecting")
            finally:
                self._connected.clear()
                self._pubsub = None
                self._wake_all()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(RECONNECT_PAUSE)

    async def _listen(self, pubsub: redis.asyncio.client.PubSub) -> None:
        last_sweep = time.monotonic()
        while True:
            msg = await pubsub.get_message(timeout=1.0)
            if msg is not None and msg.get("type") == "message":
                self.messages += 1
                channel = msg["channel"]
                self._wake(channel.decode() if isinstance(channel, bytes) else str(channel))
            now = time.monotonic()
            if now - last_sweep > IDLE_UNSUBSCRIBE / 4:
                last_sweep = now
                await self._sweep(pubsub, now)

    async def _sweep(self, pubsub: redis.asyncio.client.PubSub, now: float) -> None:
        idle = [
            c
            for c, seen in self._subscribed.items()
            if c not in self._waiters and now - seen > IDLE_UNSUBSCRIBE
        ]
        if idle:
            for channel in idle:
                del self._subscribed[channel]
                self._counts.pop(channel, None)
            await pubsub.unsubscribe(*idle)

    def _wake(self, channel: str) -> None:
        self._counts[channel] = next(self._seq)
        for fut in self._waiters.pop(channel, ()):
            if not fut.done():
                fut.set_result(None)

    def _wake_all(self) -> None:
        self._lost += 1
        for channel in list(self._waiters):
            self._wake(channel)
