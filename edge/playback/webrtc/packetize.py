"""H.264 access units cut into RTP payloads (RFC 6184, packetization-mode=1), and their batches.

The cut depends on the bytes alone, so the feed cuts each access unit once and every viewer's
RtpOut sends the same payloads. NAL units that fit go alone or several to a STAP-A; a larger one
is split into FU-A fragments of one size, only the last one shorter (aiortc's own packetizer
makes the first ones a byte longer instead). Equal sizes let a viewer's run of fragments leave
in one `sendmsg` with UDP segmentation offload (sendpath.py): `runs` finds those runs.
"""

from __future__ import annotations

import struct

MAX_PAYLOAD = 1300  # bytes of RTP payload: with headers and SRTP, well under a 1500-byte MTU
STAP_A = 24
FU_A = 28
MAX_RUN = 32  # segments per sendmsg: the kernel takes at most 64, and 64 KiB in all


def split_annexb(data: bytes) -> list[bytes]:
    """The NAL units of an Annex-B access unit (start codes of 3 or 4 bytes), without them."""
    units: list[bytes] = []
    start = -1
    i = data.find(b"\x00\x00\x01")
    while i != -1:
        if start >= 0:
            end = i - 1 if i > 0 and data[i - 1] == 0 else i  # a 4-byte start code's zero
            if end > start:
                units.append(data[start:end])
        start = i + 3
        i = data.find(b"\x00\x00\x01", start)
    if start >= 0 and start < len(data):
        units.append(data[start:])
    return units


def cut(data: bytes, max_payload: int = MAX_PAYLOAD) -> list[bytes]:
    """RTP payloads for one access unit, in order."""
    payloads: list[bytes] = []
    pending: list[bytes] = []  # small NAL units waiting to share a STAP-A
    for nal in split_annexb(data):
        if len(nal) > max_payload:
            _flush(pending, payloads)
            payloads += _fragments(nal, max_payload)
        elif 1 + sum(2 + len(n) for n in pending) + 2 + len(nal) > max_payload:
            _flush(pending, payloads)
            pending.append(nal)
        else:
            pending.append(nal)
    _flush(pending, payloads)
    return payloads


def _flush(pending: list[bytes], payloads: list[bytes]) -> None:
    if len(pending) == 1:
        payloads.append(pending[0])
    elif pending:
        # F is set if any unit has it; NRI is the highest of them (RFC 6184 5.7.1).
        header = STAP_A | (max(n[0] & 0x60 for n in pending)) | (max(n[0] & 0x80 for n in pending))
        payloads.append(bytes([header]) + b"".join(struct.pack("!H", len(n)) + n for n in pending))
    pending.clear()


def _fragments(nal: bytes, max_payload: int) -> list[bytes]:
    body = memoryview(nal)[1:]
    room = max_payload - 2  # FU indicator and FU header
    count = -(-len(body) // room)
    size = -(-len(body) // count)  # equal sizes, the last one shorter
    indicator = bytes([(nal[0] & 0xE0) | FU_A])
    kind = nal[0] & 0x1F
    out = []
    for k in range(count):
        flags = (0x80 if k == 0 else 0) | (0x40 if k == count - 1 else 0)
        out.append(indicator + bytes([flags | kind]) + body[k * size : (k + 1) * size])
    return out


def runs(payloads: list[bytes]) -> list[tuple[int, int]]:
    """[start, end) ranges of payloads that can go as one segmented datagram batch: all of one
    size but the last, which may be shorter, and at most MAX_RUN of them."""
    out: list[tuple[int, int]] = []
    start = 0
    n = len(payloads)
    while start < n:
        size = len(payloads[start])
        end = start + 1
        while end < n and end - start < MAX_RUN and len(payloads[end]) <= size:
            end += 1
            if len(payloads[end - 1]) < size:
                break
        out.append((start, end))
        start = end
    return out
