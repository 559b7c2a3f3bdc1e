"""compiler.model_dump, the YAML of the model goldens: defaults left out, enums by value, strings quoted where a
YAML reader would take them for something else, and what it writes reads back as the data it was made from."""

from __future__ import annotations

import dataclasses
import enum

import pytest
from ruamel.yaml import YAML

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


def _read(text: str) -> object:
    return YAML(typ="safe").load(text)


def test_fields_equal_to_their_default_are_left_out_and_enums_are_their_value() -> None:
    whole = Whole("w", (Part("a", Color.BLUE, size=2, _cache=7), Part("b", Color.RED, size=1)), ratio=0.5)
    assert model_dump.dumps(whole) == (
        "name: w\n"
        "parts:\n"
        "  - name: a\n"
        "    color: blue\n"
        "    size: 2\n"
        "  - name: b\n"
        "ratio: 0.5\n"
    )


@pytest.mark.parametrize("text", ["9080", "0.0.0.0_80", "true", "No", "null", "", "a: b", "#x", "*.example.com", "é"])
def test_strings_a_yaml_reader_would_misread_are_quoted(text: str) -> None:
    whole = Whole(text, (Part(text),), pairs=((text, text),))
    assert model_dump.dumps(whole).startswith('name: "')
    assert _read(model_dump.dumps(whole)) == model_dump.to_data(whole)


@pytest.mark.parametrize(
    "text", ["reviews.shop.svc.cluster.local:9080", "outbound|9080|v1|reviews", "sidecar~10.0.0.1~a~b", "/a", "gateway-error,reset"]
)
def test_names_stay_plain_and_read_back_inside_pairs_too(text: str) -> None:
    whole = Whole(text, pairs=((text, text),))
    assert model_dump.dumps(whole).startswith(f"name: {text}\n")
    assert _read(model_dump.dumps(whole)) == model_dump.to_data(whole)  # in `[...]`, `:` and `,` are quoted


def test_what_is_not_a_model_value_is_refused() -> None:
    with pytest.raises(TypeError, match="set"):
        model_dump.to_data(Whole("w", pairs={("a", "b")}))  # type: ignore[arg-type]
