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
    key, size = number << 3 | 2, len(data)
    if key < 0x80 and size < 0x80:  # one byte each: most names, domains and small messages
        return bytes((key, size)) + data
    return varint(key) + varint(size) + data


def varint_field(number: int, value: int) -> bytes:
    """A non-negative integer or enum field (wire type 0), left out when 0 as protobuf 3 does."""
    return varint(number << 3) + varint(value) if value else b""


def varint_member(number: int, value: int) -> bytes:
    """A non-negative integer member of a oneof (wire type 0): written even when 0, the oneof having presence."""
    return varint(number << 3) + varint(value)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7


def split_before(data: bytes, number: int) -> tuple[bytes, bytes]:
    """A serialized message cut before its first top-level field numbered `number` or higher: deterministic
    serialization writes fields in number order, so a field `number` encoded on its own fits in the cut."""
    at = 0
    while at < len(data):
        key, after_key = _read_varint(data, at)
        if key >> 3 >= number:
            break
        wire_type = key & 7
        if wire_type == 0:
            at = _read_varint(data, after_key)[1]
        elif wire_type == 1:
            at = after_key + 8
        elif wire_type == 2:
            length, body = _read_varint(data, after_key)
            at = body + length
        elif wire_type == 5:
            at = after_key + 4
        else:
            raise ValueError(f"wire type {wire_type} (groups) is not written by protobuf 3")
    return data[:at], data[at:]
