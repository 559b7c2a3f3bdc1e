"""The intermediate model as YAML text, so that golden tests (tests/golden, `<node>.model.yaml`) show in a diff what
translate decided, apart from how emit spelled it in Envoy's protos.

Generic over what `compiler.model` is made of (frozen dataclasses, enums, tuples, str, int, float, bool, None): a new
model field or class is dumped without a change here, and any other type is a TypeError rather than a guess.
Fields come in declared order (the model's own reading order, name first); a field equal to its default is left
out, so a golden shows what the policy set. Written here rather than by a YAML library: the bytes depend on this
code alone (no line wrapping or quoting style that moves with a library's version), and every string a YAML reader
could take for a number, bool or null, or read differently, is double-quoted (a JSON string is a YAML one).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Data = dict[str, "Data"] | list["Data"] | str | int | float | bool | None

# plain (unquoted) only what YAML reads back as that string: no indicator first, no space, `#` or `: `; no `,` or
# `:` inside `[...]`, where they end or split the value (a digit first is quoted too: it may read as a number)
_PLAIN = re.compile(r"[A-Za-z_/][\w./~|+@=,-]*(?::[\w./~|+@=,-]+)*", re.ASCII)
_PLAIN_IN_FLOW = re.compile(r"[A-Za-z_/][\w./~|+@=-]*", re.ASCII)
_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "y", "n", "null"})  # YAML 1.1 bools and null


def to_data(value: object) -> Data:
    """Dicts, lists and scalars: a dataclass becomes its compared fields in declared order, minus those equal to
    their default; an enum its value; a tuple a list."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _fields(value)
    if isinstance(value, enum.Enum):
        return to_data(value.value)
    if isinstance(value, tuple):
        return [to_data(v) for v in value]
    if value is None or isinstance(value, str | int | float):  # bool is an int
        return value
    raise TypeError(f"not a model value: {type(value).__name__}")


def _fields(value: DataclassInstance) -> dict[str, Data]:
    """`compare=False` fields (the cached `_hash`) are not part of the value."""
    out: dict[str, Data] = {}
    for field in dataclasses.fields(value):
        item = getattr(value, field.name)
        if field.compare and not _is_default(field, item):
            out[field.name] = to_data(item)
    return out


def _is_default(field: dataclasses.Field[Any], value: object) -> bool:
    if field.default is not dataclasses.MISSING:
        return bool(value == field.default)
    if field.default_factory is not dataclasses.MISSING:
        return bool(value == field.default_factory())
    return False


def dumps(value: object) -> str:
    """Block-style YAML of `to_data(value)`, two spaces per level; a list of scalars inside a list (the model's
    pairs: labels, header operations) in flow style, `[name, value]`."""
    data = to_data(value)
    lines = _block(data, 0) if isinstance(data, dict | list) and data else iter([_line(data)])
    return "".join(line + "\n" for line in lines)


def _block(data: dict[str, Data] | list[Data], indent: int) -> Iterator[str]:
    pad = " " * indent
    if isinstance(data, dict):
        for key, item in data.items():
            if isinstance(item, dict | list) and not _one_line(item, in_list=False):
                yield f"{pad}{key}:"
                yield from _block(item, indent + 2)
            else:
                yield f"{pad}{key}: {_line(item)}"
        return
    for item in data:
        if isinstance(item, dict | list) and not _one_line(item, in_list=True):
            lines = list(_block(item, indent + 2))
            yield f"{pad}- {lines[0].lstrip()}"  # the item's first line on the dash, the rest aligned under it
            yield from lines[1:]
        else:
            yield f"{pad}- {_line(item)}"


def _one_line(data: dict[str, Data] | list[Data], *, in_list: bool) -> bool:
    """An empty collection goes on one line, and so does a list of scalars that is an item of a list."""
    return not data or (in_list and isinstance(data, list) and not any(isinstance(v, dict | list) for v in data))


def _line(data: Data, *, flow: bool = False) -> str:
    """What `_one_line` allows, and a scalar: `{}`, `[a, b]`, `null`, `true`, `3`, `0.5`, `name`, `"9080"`."""
    if isinstance(data, dict):
        return "{}"
    if isinstance(data, list):
        return "[" + ", ".join(_line(v, flow=True) for v in data) + "]"
    if data is None:
        return "null"
    if isinstance(data, bool):
        return "true" if data else "false"
    if isinstance(data, int):
        return str(data)
    if isinstance(data, float):
        if math.isnan(data) or math.isinf(data):
            return ".nan" if math.isnan(data) else ".inf" if data > 0 else "-.inf"
        return repr(data)
    plain = (_PLAIN_IN_FLOW if flow else _PLAIN).fullmatch(data) and data.lower() not in _WORDS
    return data if plain else json.dumps(data)
