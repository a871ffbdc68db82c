"""WHIP over HTTP on a real ZooKeeper: status codes, the answer, and a session's end."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import await_for
from tests.edge.whip.conftest import Edge
from tests.edge.whip.sdp import CHROME, OBS, edit

SDP = "application/sdp"


def _headers(key: str | None, ctype: str = SDP) -> dict[str, str]:
    h = {"Content-Type": ctype}
    if key is not None:
        h["Authorization"] = f"Bearer {key}"
    return h


async def _post(edge: Edge, stream: str, key: str | None, body: str = OBS, ctype: str = SDP):  # type: ignore[no-untyped-def]
    return await edge.client.post(
        f"/whip/{stream}", data=body.encode(), headers=_headers(key, ctype)
    )


async def _error(resp, status: int) -> str:  # type: ignore[no-untyped-def]
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert set(body) == {"error", "detail"} and body["detail"]
    return str(body["detail"])


async def test_obs_offer_gets_201_location_and_an_answer_with_candidates(edge: Edge) -> None:
    key = await edge.registry.create("cam", "tiny")
    resp = await _post(edge, "cam", key)
    answer = await resp.text()
    assert resp.status == 201, answer
    assert resp.headers["Content-Type"] == SDP
    session = next(iter(edge.ingest.sessions.values()))
    assert resp.headers["Location"] == f"/whip/cam/{session.id}"
    assert "a=rtpmap:96 H264/90000" in answer and "profile-level-id=42e01f" in answer
    assert "a=rtpmap:111 opus/48000/2" in answer
    # No trickle: every candidate is in the answer, and it says so.
    assert "a=candidate:" in answer and "127.0.0.1" in answer
    assert "a=end-of-candidates" in answer
    assert "a=recvonly" in answer and "VP8" not in answer
    assert await edge.registry.zk.get(edge.registry.paths.publisher("cam")) is not None


@pytest.mark.parametrize("key", [None, "wrong-key"])
async def test_missing_or_wrong_key_is_401_and_nothing_is_written(
    edge: Edge, key: str | None
) -> None:
    await edge.registry.create("cam", "tiny")
    await _error(await _post(edge, "cam", key), 401)
    assert await edge.registry.zk.get(edge.registry.paths.publisher("cam")) is None
    assert not edge.ingest.sessions and not edge.publishing.sessions


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("not sdp at all", "not an SDP offer"),
        (OBS.split("m=audio")[0], "no audio or video"),
        (edit(OBS, "H264/90000", "H265/90000"), "no usable video codec"),
        (edit(OBS, "profile-level-id=42e01f", "profile-level-id=640c1f"), "constrained baseline"),
        (edit(OBS, "opus/48000/2", "PCMU/8000"), "Opus"),
        (OBS + "a=rid:h send\r\na=simulcast:send h;l\r\n", "simulcast"),
    ],
)
async def test_bad_offers_are_400_with_a_clear_detail(edge: Edge, body: str, needle: str) -> None:
    key = await edge.registry.create("cam", "tiny")
    assert needle in await _error(await _post(edge, "cam", key, body), 400)
    assert not edge.publishing.sessions


async def test_content_type_size_and_unknown_stream(edge: Edge) -> None:
    key = await edge.registry.create("cam", "tiny")
    await _error(await _post(edge, "cam", key, ctype="application/json"), 415)
    await _error(await _post(edge, "cam", key, OBS + "a=x:" + "y" * 70_000 + "\r\n"), 413)
    await _error(await _post(edge, "ghost", key), 404)
    await _error(await _post(edge, "bad!id", key), 400)


async def test_second_publisher_is_409(edge: Edge) -> None:
    key = await edge.registry.create("cam", "tiny")
    assert (await _post(edge, "cam", key)).status == 201
    assert "already being published" in await _error(await _post(edge, "cam", key), 409)


async def test_delete_ends_the_publish_and_patch_is_405(edge: Edge) -> None:
    key = await edge.registry.create("cam", "tiny")
    resp = await _post(edge, "cam", key)
    location = resp.headers["Location"]
    relay = edge.publishing.relay("cam")
    assert relay is not None and not relay.ended
    patch = await edge.client.patch(location, data=b"a=candidate:x", headers=_headers(key))
    assert patch.status == 405 and patch.headers["Allow"] == "DELETE"
    await _error(await edge.client.delete(location, headers=_headers("wrong")), 401)
    await _error(await edge.client.delete(location + "x", headers=_headers(key)), 404)
    assert (await edge.client.delete(location, headers=_headers(key))).status == 200
    # As an RTMP unpublish: EOS through the relay, the publisher znode gone, the stream free.
    assert relay.ended and edge.publishing.relay("cam") is None
    assert not edge.ingest.sessions
    zk = edge.registry.zk
    assert await zk.get(edge.registry.paths.publisher("cam")) is None
    await _error(await edge.client.delete(location, headers=_headers(key)), 404)
    assert (await _post(edge, "cam", key)).status == 201


async def test_a_publisher_that_never_connects_is_ended(edge: Edge) -> None:
    key = await edge.registry.create("cam", "tiny")
    assert (await _post(edge, "cam", key)).status == 201
    # OBS's offer above has no candidates and nobody answers our checks: the timeout ends it.
    await await_for(lambda: not edge.publishing.sessions, "the unconnected session to end", 10)
    assert await edge.registry.zk.get(edge.registry.paths.publisher("cam")) is None


async def test_browser_offer_is_answered_with_its_first_usable_codecs_only(edge: Edge) -> None:
    key = await edge.registry.create("cam", "tiny")
    resp = await _post(edge, "cam", key, CHROME)
    answer = await resp.text()
    assert resp.status == 201, answer
    video = answer.split("m=video")[1]
    assert "VP8/90000" in video and "rtx/90000" in video
    assert "H264" not in video and "VP9" not in video and "AV1" not in video
    audio = answer.split("m=video")[0].split("m=audio")[1]
    assert "opus/48000/2" in audio and "PCMU" not in audio and "G722" not in audio
    # H.264 first (a browser told to prefer it): the constrained baseline entries, not High.
    chrome_h264 = edit(CHROME, "96 97 98 99 102", "102 96 97 98 99")
    await edge.client.delete(resp.headers["Location"], headers=_headers(key))
    resp = await _post(edge, "cam", key, chrome_h264)
    video = (await resp.text()).split("m=video")[1]
    assert resp.status == 201 and "H264/90000" in video and "VP8" not in video
    assert "profile-level-id=64001f" not in video and "packetization-mode=0" not in video


async def test_cors_and_a_chunked_body(edge: Edge) -> None:
    key = await edge.registry.create("cam", "tiny")
    pre = await edge.client.options("/whip/cam")
    assert pre.status == 204 and pre.headers["Access-Control-Allow-Origin"] == "*"
    assert "Authorization" in pre.headers["Access-Control-Allow-Headers"]

    async def chunks(body: bytes, size: int = 500):  # type: ignore[no-untyped-def]
        for i in range(0, len(body), size):
            yield body[i : i + size]
            await asyncio.sleep(0)

    # No Content-Length: the offer arrives in pieces and is still read whole.
    resp = await edge.client.post("/whip/cam", data=chunks(OBS.encode()), headers=_headers(key))
    assert resp.status == 201, await resp.text()
    assert resp.headers["Access-Control-Expose-Headers"] == "Location"
    big = chunks((OBS + "a=x:" + "y" * 70_000 + "\r\n").encode(), 8192)
    resp = await edge.client.post("/whip/other", data=big, headers=_headers(key))
    await _error(resp, 413)
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
