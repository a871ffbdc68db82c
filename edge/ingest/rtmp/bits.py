"""A big-endian bit reader for codec headers (H.264 SPS, AAC AudioSpecificConfig).

Reading past the end raises BadRequest, so a truncated header from a peer is a clear error.
"""

from __future__ import annotations

from cluster.errors import BadRequest


class BitReader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0  # in bits

    def u(self, n: int) -> int:
        if self.pos + n > len(self.data) * 8:
            raise BadRequest(f"codec header truncated at bit {self.pos}")
        value = 0
        for _ in range(n):
            byte = self.data[self.pos >> 3]
            value = (value << 1) | ((byte >> (7 - (self.pos & 7))) & 1)
            self.pos += 1
        return value

    def ue(self) -> int:
        """Unsigned Exp-Golomb (H.264 7.2 ue(v))."""
        zeros = 0
        while self.u(1) == 0:
            zeros += 1
            if zeros > 31:
                raise BadRequest("codec header: Exp-Golomb code longer than 32 bits")
        return (1 << zeros) - 1 + self.u(zeros)

    def se(self) -> int:
        """Signed Exp-Golomb (H.264 7.2 se(v))."""
        k = self.ue()
        return (k + 1) // 2 if k & 1 else -(k // 2)
