"""The connection state machine, driven with bytes as OBS sends them; no sockets."""

from __future__ import annotations

import pytest

from cluster.errors import BadRequest, UnsupportedMedia
from cluster.medialink.frames import CodecConfig, MediaPacket
from edge.ingest.rtmp import amf0
from edge.ingest.rtmp.chunk import ACK, COMMAND_AMF3, USER_CONTROL, WINDOW_ACK_SIZE
from edge.ingest.rtmp.session import (
    MOVES,
    PublishRequest,
    RtmpSession,
    State,
    Unpublished,
    split_publish_name,
)
from tests.edge.rtmp.client import ASC, AVCC, Client


def status_of(command: list[amf0.Value]) -> dict[str, amf0.Value]:
    info = command[3]
    assert isinstance(info, dict)
    return info


def publishing(client: Client, session: RtmpSession, name: str = "s1?key=k") -> None:
    events = session.receive(client.handshake() + client.connect() + client.publish(name))
    assert [type(e) for e in events] == [PublishRequest]
    session.accept_publish()
    client.parse(session.data_to_send())


def test_obs_sequence_up_to_the_publish_request() -> None:
    client, session = Client(), RtmpSession()
    events = session.receive(client.handshake() + client.connect() + client.publish("s1?key=k"))
    assert events == [PublishRequest("live", "s1", {"key": "k"})]
    assert session.state is State.PUBLISH_PENDING
    messages = client.parse(session.data_to_send())
    assert client.reader.chunk_size == 4096  # our Set Chunk Size, applied by the client's reader
    control = {m.type_id: m.body for m in messages if m.csid == 2}
    assert control[WINDOW_ACK_SIZE] == (2_500_000).to_bytes(4, "big")
    commands = [amf0.decode(m.body) for m in messages if m.csid != 2]
    connect = commands[0]
    assert connect[:2] == ["_result", 1.0]
    assert status_of(connect)["code"] == "NetConnection.Connect.Success"
    assert [c[:2] for c in commands[1:]] == [
        ["_result", 2.0],  # releaseStream
        ["onFCPublish", 0.0],
        ["_result", 3.0],  # FCPublish
        ["_result", 4.0],  # createStream ...
    ]
    assert commands[-1][3] == 1.0  # ... with stream id 1


def test_media_waits_for_the_decision_then_flows() -> None:
    client, session = Client(), RtmpSession()
    blob = client.handshake() + client.connect() + client.publish("cam?key=k")
    blob += client.metadata() + client.headers() + client.frame(0, key=True) + client.frame(66)
    blob += client.audio(23, b"\xaf\x01\x21\x00")
    assert [type(e) for e in session.receive(blob)] == [PublishRequest]
    client.parse(session.data_to_send())

    events = session.accept_publish()
    assert events == [
        CodecConfig(0, "video", "h264", AVCC, "avcc", width=320, height=180),
        CodecConfig(1, "audio", "aac", ASC, sample_rate=44100, channels=2),
        MediaPacket(0, 0, 0, b"\x00\x00\x00\x02\x65\x88", keyframe=True),
        MediaPacket(0, 66000, 66000, b"\x00\x00\x00\x02\x41\x9a"),
        MediaPacket(1, 23000, 23000, b"\x21\x00", keyframe=True),
    ]
    assert session.metadata == {"width": 320.0}
    messages = client.parse(session.data_to_send())
    assert messages[0].type_id == USER_CONTROL and messages[0].body == b"\0\0\0\0\0\1"
    start = amf0.decode(messages[1].body)
    assert (messages[1].stream_id, start[0]) == (1, "onStatus")
    assert status_of(start)["code"] == "NetStream.Publish.Start"


def test_a_refused_publish_never_delivers_media() -> None:
    client, session = Client(), RtmpSession()
    blob = client.handshake() + client.connect() + client.publish("s1?key=bad")
    blob += client.headers() + client.frame(0, key=True)
    session.receive(blob)
    client.parse(session.data_to_send())
    session.refuse_publish("NetStream.Publish.Rejected", "unauthorized: wrong key")
    (refusal,) = client.commands(session.data_to_send())
    assert status_of(refusal) == {
        "level": "error",
        "code": "NetStream.Publish.Rejected",
        "description": "unauthorized: wrong key",
    }
    assert session.state is State.CLOSED
    assert session.receive(client.frame(33)) == []
    with pytest.raises(BadRequest):
        session.accept_publish()


def test_repeated_headers_are_news_only_when_changed_and_early_packets_are_dropped() -> None:
    client, session = Client(), RtmpSession()
    publishing(client, session)
    assert session.receive(client.frame(0, key=True)) == []  # no config yet: undecodable
    assert session.dropped == 1
    assert len(session.receive(client.headers())) == 2
    assert session.receive(client.headers()) == []
    other = client.audio(0, b"\xaf\x00\x11\x90")  # 48 kHz now
    assert session.receive(other) == [
        CodecConfig(1, "audio", "aac", b"\x11\x90", sample_rate=48000, channels=2)
    ]


def test_unpublish_then_publish_again() -> None:
    client, session = Client(), RtmpSession()
    publishing(client, session)
    ends = client.command("FCUnpublish", 6.0, None, "s1") + client.command(
        "deleteStream", 7.0, None, 1.0
    )
    assert session.receive(ends) == [Unpublished("unpublished")]
    assert session.state is State.CONNECTED
    again = client.command("createStream", 8.0, None) + client.command(
        "publish", 0.0, None, "s2", "live", stream_id=2
    )
    assert session.receive(again) == [PublishRequest("live", "s2", {})]


def test_acknowledgements_follow_the_window() -> None:
    client, session = Client(), RtmpSession(window=5000)
    publishing(client, session)
    session.receive(client.headers())
    frames = b"".join(client.frame(ts) for ts in range(0, 20000, 33))
    session.receive(frames)
    acks = [m for m in client.parse(session.data_to_send()) if m.type_id == ACK]
    assert acks and int.from_bytes(acks[-1].body, "big") > 5000
    # The client may ask for another window.
    session.receive(client.writer.message(2, WINDOW_ACK_SIZE, 0, 0, (10**9).to_bytes(4, "big")))
    session.receive(frames)
    assert not [m for m in client.parse(session.data_to_send()) if m.type_id == ACK]


def test_ping_is_answered() -> None:
    client, session = Client(), RtmpSession()
    publishing(client, session)
    session.receive(client.writer.message(2, USER_CONTROL, 0, 0, b"\x00\x06\x00\x00\x01\x02"))
    (pong,) = client.parse(session.data_to_send())
    assert (pong.type_id, pong.body) == (USER_CONTROL, b"\x00\x07\x00\x00\x01\x02")


def test_unknown_commands_are_answered_harmlessly() -> None:
    client, session = Client(), RtmpSession()
    publishing(client, session)
    events = session.receive(
        client.command("getStreamLength", 9.0, None, "s1") + client.command("whatever", 0.0)
    )
    assert events == []
    (error,) = client.commands(session.data_to_send())
    assert error[:2] == ["_error", 9.0]
    assert status_of(error)["code"] == "NetConnection.Call.Failed"
    assert session.state is State.PUBLISHING


def test_amf3_command_and_checkbw() -> None:
    client, session = Client(), RtmpSession()
    session.receive(client.handshake() + client.connect())
    client.parse(session.data_to_send())
    body = b"\0" + amf0.encode("_checkbw", 2.0, None)
    session.receive(client.writer.message(3, COMMAND_AMF3, 0, 0, body))
    assert client.commands(session.data_to_send()) == [["_result", 2.0, None, amf0.UNDEFINED]]


@pytest.mark.parametrize(
    ("steps", "words"),
    [
        (lambda c: c.command("publish", 5.0, None, "s1", "live"), "publish before connect"),
        (lambda c: c.command("createStream", 2.0, None), "createStream before connect"),
        (lambda c: c.connect() + c.command("connect", 2.0, {}), "connect on a connected"),
        (lambda c: c.connect() + c.command("publish", 5.0, None), "without a stream name"),
        (lambda c: c.connect() + c.command("publish", 5.0, None, ""), "without a stream name"),
        (lambda c: c.connect() + c.writer.message(3, 20, 0, 0, b"\x05"), "without a name"),
    ],
)
def test_protocol_violations(steps: object, words: str) -> None:
    client, session = Client(), RtmpSession()
    with pytest.raises(BadRequest, match=words):
        session.receive(client.handshake() + steps(client))  # type: ignore[operator]


def test_unsupported_codec_ends_the_session_with_a_clear_error() -> None:
    client, session = Client(), RtmpSession()
    publishing(client, session)
    with pytest.raises(UnsupportedMedia, match="VP6"):
        session.receive(client.video(0, b"\x14\x00"))


def test_media_outside_a_publish_is_dropped() -> None:
    client, session = Client(), RtmpSession()
    assert session.receive(client.handshake() + client.connect() + client.headers()) == []
    assert session.dropped == 2


def test_state_table() -> None:
    """Every move the table allows succeeds; every other one raises, except closing."""
    for start in State:
        for to in State:
            session = RtmpSession()
            session.state = start
            if to in MOVES[start] or to is State.CLOSED:
                session._move(to)
                assert session.state is to
            else:
                with pytest.raises(BadRequest, match="cannot go"):
                    session._move(to)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("s1", ("s1", {})),
        ("s1?key=good", ("s1", {"key": "good"})),
        ("s1?key=a%2Fb%3D&x=", ("s1", {"key": "a/b=", "x": ""})),
        ("s1?key=1&key=2", ("s1", {"key": "2"})),
        ("s1?key=k?more", ("s1", {"key": "k?more"})),
        ("?key=k", ("", {"key": "k"})),
        ("../x?key=k", ("../x", {"key": "k"})),  # validated by the handler, not here
    ],
)
def test_split_publish_name(name: str, expected: tuple[str, dict[str, str]]) -> None:
    assert split_publish_name(name) == expected


def test_split_publish_name_caps_the_query() -> None:
    with pytest.raises(BadRequest, match="query"):
        split_publish_name("s1?" + "&".join(f"k{i}=v" for i in range(100)))
