"""Walks the input models by YAML path: which model sits at a path, its YAML keys, and spelling suggestions.

Used to turn pydantic's error locations into the camelCase paths a user wrote, and to say "did you mean".
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

_UNIONS = (typing.Union, types.UnionType)


def unwrap(annotation: Any) -> Any:
    """Strip Annotated and Optional until a list, dict, model, scalar or a real union remains."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in _UNIONS:
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def field_by_alias(model: type[BaseModel], key: str) -> Any | None:
    """The annotation of the field whose YAML key is `key`, or None."""
    for name, info in model.model_fields.items():
        if (info.alias or name) == key:
            return info.annotation
    return None


def aliases(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _step(annotation: Any, part: str | int) -> tuple[bool, Any]:
    """(is part of the user's path, annotation below it) for one pydantic location part."""
    node = unwrap(annotation)
    origin = typing.get_origin(node)
    if origin is list and isinstance(part, int):
        return True, typing.get_args(node)[0]
    if origin is dict:
        return part != "[key]", typing.get_args(node)[1]
    if isinstance(node, type) and issubclass(node, BaseModel) and isinstance(part, str):
        return True, field_by_alias(node, part)
    if node is None:
        return True, None
    return False, annotation  # a union member tag such as 'int' or 'str'


def clean_loc(model: type[BaseModel], loc: Sequence[str | int]) -> tuple[str | int, ...]:
    """pydantic's error location without union tags and '[key]' markers: the YAML path below the model."""
    out: list[str | int] = []
    annotation: Any = model
    for part in loc:
        keep, annotation = _step(annotation, part)
        if keep:
            out.append(part)
    return tuple(out)


def model_at(model: type[BaseModel], path: Sequence[str | int]) -> type[BaseModel] | None:
    """The model class at a cleaned YAML path, or None when the path does not lead to a model."""
    annotation: Any = model
    for part in path:
        _, annotation = _step(annotation, part)
        if annotation is None:
            return None
    node = unwrap(annotation)
    return node if isinstance(node, type) and issubclass(node, BaseModel) else None


def suggest(key: str, known: Sequence[str]) -> str | None:
    """The known key closest to a misspelt one (case-insensitively), if any is close."""
    lowered = {k.lower(): k for k in known}
    found = difflib.get_close_matches(key.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[found[0]] if found else None
