"""The intermediate model as JSON text, so that golden tests (tests/golden, `<node>.model.json`) show in a diff what
translate decided, apart from how emit spelled it in Envoy's protos.

Generic over what `compiler.model` is made of (frozen dataclasses, enums, tuples, str, int, float, bool, None): a new
model field or class is dumped without a change here, and any other type is a TypeError rather than a guess.
Fields come in declared order (the model's own reading order, name first); a field equal to its default is left
out, so a golden shows what the policy set. The standard library's encoder writes it: its bytes do not move with a
dependency's version.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

Data = dict[str, "Data"] | list["Data"] | str | int | float | bool | None


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
    """`to_data(value)` as JSON, two spaces per level, UTF-8 as it is, ending in a newline."""
    return json.dumps(to_data(value), indent=2, ensure_ascii=False, allow_nan=False) + "\n"
