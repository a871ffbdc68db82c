"""SrtpSocket over a real UDP socket pair: what it sends is valid SRTP that libsrtp unprotects,
one datagram per packet, with and without UDP segmentation offload."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator

import pytest
from pylibsrtp import Policy, Session

from edge.playback.webrtc.sendpath import SrtpError, SrtpSocket


def _packets(sizes: list[int], first_seq: int = 0) -> list[bytes]:
    return [
        struct.pack("!BBHII", 0x80, 96, first_seq + i, 90_000, 0x1234) + os.urandom(size)
        for i, size in enumerate(sizes)
    ]


# (profile, master key + salt length, what it adds to a packet): aiortc's first choice, and
# the one every WebRTC stack has.
PROFILES = [
    (Policy.SRTP_PROFILE_AEAD_AES_256_GCM, 44, 16),
    (Policy.SRTP_PROFILE_AES128_CM_SHA1_80, 30, 10),
]


@pytest.fixture(params=PROFILES, ids=["aes256gcm", "aes128cm-sha1-80"])
def pair(
    request: pytest.FixtureRequest,
) -> Iterator[tuple[SrtpSocket, socket.socket, Session, int]]:
    profile, key_length, trailer = request.param
    key = os.urandom(key_length)
    outbound = Policy(key=key, ssrc_type=Policy.SSRC_ANY_OUTBOUND, srtp_profile=profile)
    outbound.allow_repeat_tx = True  # as aiortc sets it
    tx = Session(outbound)
    rx = Session(Policy(key=key, ssrc_type=Policy.SSRC_ANY_INBOUND, srtp_profile=profile))
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    wire = SrtpSocket(tx, sender, receiver.getsockname())
    yield wire, receiver, rx, trailer
    wire.close()
    receiver.close()
    SrtpSocket.segmenting = True


@pytest.mark.parametrize("segmenting", [True, False])
def test_a_run_arrives_as_one_valid_srtp_datagram_per_packet(
    pair: tuple[SrtpSocket, socket.socket, Session, int], segmenting: bool
) -> None:
    wire, receiver, rx, trailer = pair
    SrtpSocket.segmenting = segmenting
    packets = _packets([1200, 1200, 1200, 900])  # one size, the last shorter: one sendmsg
    lone = _packets([40], first_seq=4)
    wire.send(packets)
    wire.send(lone)
    got = [receiver.recv(2048) for _ in range(5)]
    assert [rx.unprotect(d) for d in got] == packets + lone
    assert [len(d) for d in got[:4]] == [len(p) + trailer for p in packets]  # tag only
    assert SrtpSocket.segmenting is segmenting  # the kernel took UDP_SEGMENT


def test_a_batch_too_large_for_the_buffer_is_refused(
    pair: tuple[SrtpSocket, socket.socket, Session, int],
) -> None:
    wire = pair[0]
    with pytest.raises(SrtpError, match="does not fit"):
        wire.send(_packets([1300] * 60))
