"""AMF0, the value encoding of RTMP commands and metadata (pure: bytes in, Python values out).

    AMF0           Python
    number         float (ints are encoded as numbers too)
    boolean        bool
    string         str (a long string when over 65535 bytes of UTF-8)
    object         dict[str, value]
    null           None
    undefined      UNDEFINED
    ECMA array     EcmaArray (a dict that remembers it was an array)
    strict array   list
    date           float (ms since the epoch; the time zone is dropped)

Anything else, or input that ends early, raises BadRequest: a peer's bytes never surface as an
IndexError or a struct.error.
"""

from __future__ import annotations

import struct
from typing import Final, TypeAlias

from cluster.errors import BadRequest


class Undefined:
    """AMF0 `undefined`, distinct from `null` so a value survives a round trip unchanged."""

    _instance: Undefined | None = None

    def __new__(cls) -> Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED: Final = Undefined()

Value: TypeAlias = bool | float | str | Undefined | dict[str, "Value"] | list["Value"] | None


class EcmaArray(dict[str, Value]):
    """An associative array (FLV's onMetaData uses one); encoded back as an ECMA array."""


NUMBER, BOOLEAN, STRING, OBJECT, NULL, UNDEF = 0, 1, 2, 3, 5, 6
ECMA_ARRAY, OBJECT_END, STRICT_ARRAY, DATE, LONG_STRING = 8, 9, 10, 11, 12

# Nesting deeper than any real command or metadata; a bound keeps hostile input off the C stack.
MAX_DEPTH = 32

_DOUBLE = struct.Struct(">d")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise BadRequest(f"AMF0: truncated at byte {self.pos} (wanted {n} more)")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int(_U16.unpack(self.take(2))[0])

    def u32(self) -> int:
        return int(_U32.unpack(self.take(4))[0])

    def utf8(self, n: int) -> str:
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadRequest(f"AMF0: string is not UTF-8 at byte {self.pos}") from exc

    def value(self, depth: int = 0) -> Value:
        if depth > MAX_DEPTH:
            raise BadRequest("AMF0: nesting too deep")
        marker = self.u8()
        if marker == NUMBER:
            return float(_DOUBLE.unpack(self.take(8))[0])
        if marker == BOOLEAN:
            return self.u8() != 0
        if marker == STRING:
            return self.utf8(self.u16())
        if marker == LONG_STRING:
            return self.utf8(self.u32())
        if marker == OBJECT:
            return self.properties({}, depth)
        if marker == ECMA_ARRAY:
            self.u32()  # the count is only a hint; the end marker is what ends the array
            return self.properties(EcmaArray(), depth)
        if marker == STRICT_ARRAY:
            count = self.u32()
            # Each element takes at least one byte: a count beyond the input is a lie, not a size.
            if count > len(self.data) - self.pos:
                raise BadRequest(f"AMF0: strict array of {count} items in a shorter input")
            return [self.value(depth + 1) for _ in range(count)]
        if marker == NULL:
            return None
        if marker == UNDEF:
            return UNDEFINED
        if marker == DATE:
            ms = float(_DOUBLE.unpack(self.take(8))[0])
            self.take(2)
            return ms
        if marker == OBJECT_END:
            raise BadRequest(f"AMF0: object end outside an object at byte {self.pos - 1}")
        raise BadRequest(f"AMF0: unsupported type marker {marker} at byte {self.pos - 1}")

    def properties(self, into: dict[str, Value], depth: int) -> dict[str, Value]:
        while True:
            key = self.utf8(self.u16())
            if key == "" and self.data[self.pos : self.pos + 1] == bytes([OBJECT_END]):
                self.pos += 1
                return into
            into[key] = self.value(depth + 1)


def decode(data: bytes) -> list[Value]:
    """Every value in `data`, in order (a command is its name, transaction id and arguments)."""
    reader = _Reader(data)
    values: list[Value] = []
    while reader.pos < len(data):
        values.append(reader.value())
    return values


def _string_body(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise BadRequest("AMF0: object key longer than 65535 bytes")
    return _U16.pack(len(raw)) + raw


def _properties(items: dict[str, Value], out: bytearray, depth: int) -> None:
    for key, item in items.items():
        out += _string_body(key)
        _encode(item, out, depth + 1)
    out += b"\x00\x00" + bytes([OBJECT_END])


def _encode(value: Value, out: bytearray, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise BadRequest("AMF0: nesting too deep")
    # bool before number: bool is an int subclass.
    if isinstance(value, bool):
        out += bytes([BOOLEAN, 1 if value else 0])
    elif isinstance(value, int | float):
        out += bytes([NUMBER]) + _DOUBLE.pack(float(value))
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        if len(raw) > 0xFFFF:
            out += bytes([LONG_STRING]) + _U32.pack(len(raw)) + raw
        else:
            out += bytes([STRING]) + _U16.pack(len(raw)) + raw
    elif value is None:
        out.append(NULL)
    elif isinstance(value, Undefined):
        out.append(UNDEF)
    elif isinstance(value, EcmaArray):
        out += bytes([ECMA_ARRAY]) + _U32.pack(len(value))
        _properties(value, out, depth)
    elif isinstance(value, dict):
        out.append(OBJECT)
        _properties(value, out, depth)
    elif isinstance(value, list):
        out += bytes([STRICT_ARRAY]) + _U32.pack(len(value))
        for item in value:
            _encode(item, out, depth + 1)
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as AMF0")


def encode(*values: Value) -> bytes:
    out = bytearray()
    for value in values:
        _encode(value, out, 0)
    return bytes(out)
