"""Publishing keeps a stream's WHEP feed through a publisher's reconnect, for a grace period."""

from __future__ import annotations

import asyncio

from cluster.config import Settings
from cluster.paths import Paths
from cluster.registry import Registry
from cluster.zk.bridge import ZkBridge
from edge.playback.webrtc.feed import Viewer
from edge.relay.publish import Publishing
from tests.conftest import await_for
from zoocast.local.servers import ZooKeeperServer


def _publishing() -> Publishing:
    # The bridge is never started: the watch a feed in grace sets on its stream never fires.
    paths = Paths("/unused")
    return Publishing(
        Settings(node_id="edge-t"), ZkBridge("127.0.0.1:1", paths), paths, lambda: None
    )


async def test_a_watched_feed_waits_for_the_next_session_then_ends() -> None:
    publishing = _publishing()
    feed = publishing.take_feed("s1")
    ended: list[bool] = []
    feed.add_viewer(Viewer(None, None, lambda: ended.append(True)))
    publishing.release_feed("s1")  # the publisher dropped
    assert not feed.ended
    assert publishing.take_feed("s1") is feed  # it came back in time: same feed, same viewers
    publishing.feed_grace = 0.2
    publishing.release_feed("s1")
    await await_for(lambda: feed.ended, "the feed to end after the grace period")
    assert ended == [True] and "s1" not in publishing.feeds
    assert publishing.take_feed("s1") is not feed


async def test_an_unwatched_feed_ends_with_its_session() -> None:
    publishing = _publishing()
    feed = publishing.take_feed("s1")
    publishing.release_feed("s1")
    assert feed.ended and "s1" not in publishing.feeds


async def test_a_deleted_stream_ends_its_feed_without_waiting_for_the_grace(
    zk_server: ZooKeeperServer, zk_root: str
) -> None:
    paths = Paths(zk_root)
    zk = ZkBridge(zk_server.hosts, paths, session_timeout=2.0)
    await zk.start()
    try:
        await Registry(zk, paths).create("s1", "tiny")
        publishing = Publishing(Settings(node_id="edge-t"), zk, paths, lambda: None)
        feed = publishing.take_feed("s1")
        ended: list[bool] = []
        feed.add_viewer(Viewer(None, None, lambda: ended.append(True)))
        publishing.release_feed("s1")  # the publisher left: 30 s of grace
        await asyncio.sleep(0.3)
        assert not feed.ended  # the stream is still there
        await Registry(zk, paths).delete("s1")
        await await_for(lambda: feed.ended, "the feed to end with its stream", 10)
        assert ended == [True] and "s1" not in publishing.feeds
        assert publishing.take_feed("s1") is not feed  # a stream created again starts afresh
    finally:
        await zk.stop()
