"""Protobuf wire format, for the few places that assemble a message from already-serialized parts.

A message's serialization is the concatenation of its fields' encodings, and deterministic serialization writes
them in field-number order, so a message whose bulk is a repeated field of cached submessages (a route table's
virtual hosts, a discovery response's resources) can be written as head + encoded parts + tail, byte-identical to
`SerializeToString(deterministic=True)` of the whole (tests check it), without building and re-serializing it.
"""

from __future__ import annotations

_SMALL = [bytes((i,)) for i in range(0x80)]


def varint(value: int) -> bytes:
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def length_delimited(number: int, data: bytes) -> bytes:
    """One occurrence of a bytes / string / message field (wire type 2)."""
    return varint(number << 3 | 2) + varint(len(data)) + data
