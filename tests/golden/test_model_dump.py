"""compiler.model_dump, the JSON of the model goldens: defaults left out, enums by value, declared field order, and
anything that is not a model value refused."""

from __future__ import annotations

import dataclasses
import enum
import json

import pytest

from compiler import model_dump


class Color(enum.StrEnum):
    RED = "red"
    BLUE = "blue"


@dataclasses.dataclass(frozen=True)
class Part:
    name: str
    color: Color = Color.RED
    size: int = 1
    _cache: int | None = dataclasses.field(default=None, compare=False)


@dataclasses.dataclass(frozen=True)
class Whole:
    name: str
    parts: tuple[Part, ...] = ()
    pairs: tuple[tuple[str, str], ...] = ()
    ratio: float | None = None


def test_fields_equal_to_their_default_are_left_out_and_enums_are_their_value() -> None:
    whole = Whole("w", (Part("a", Color.BLUE, size=2, _cache=7), Part("b", Color.RED, size=1)), ratio=0.5)
    assert model_dump.to_data(whole) == {
        "name": "w", "parts": [{"name": "a", "color": "blue", "size": 2}, {"name": "b"}], "ratio": 0.5}


def test_fields_keep_their_declared_order_and_the_text_reads_back() -> None:
    whole = Whole("é", pairs=(("app", "web"),), ratio=0.25)
    text = model_dump.dumps(whole)
    assert text.endswith("}\n") and "é" in text
    assert list(json.loads(text)) == ["name", "pairs", "ratio"]
    assert json.loads(text) == model_dump.to_data(whole)


def test_what_is_not_a_model_value_is_refused() -> None:
    with pytest.raises(TypeError, match="set"):
        model_dump.to_data(Whole("w", pairs={("a", "b")}))  # type: ignore[arg-type]
