"""The loader's fast path: yaml-rs, only for text it provably reads exactly as ruamel.yaml's safe loader does.

ruamel (YAML 1.2 resolver over libyaml) defines what a document means in meshward; yaml-rs is ~10x faster on
ordinary Kubernetes YAML and agrees with it there, but not everywhere. Where they can disagree was found by
differential fuzzing (tests/load/test_fastyaml_differential.py keeps checking it): timestamps, tags, merge keys,
anchors/aliases, numbers with `_`, exponents or upper-case radix prefixes, empty or unindented block scalars,
collections and empty or multi-line keys, `:` inside flow collections, control characters, directives, a second
document in one chunk. A text with any of these (or with something merely looking like one) is left to ruamel:
`load` answers "not found" and the caller parses with ruamel, so both the data and every error message are
ruamel's. The guards are textual and deliberately coarse: a false alarm costs speed, never a different result.
"""

from __future__ import annotations

import re
from typing import Any

import yaml_rs

# Each guard: (characters one of which must occur for the pattern to match, pattern). The cheap `in` test skips
# most regex scans. Patterns run over the text with a line break put in front, so "at a token start" is "after a
# space, a flow indicator or a line break".
_GUARDS: tuple[tuple[str, str], ...] = (
    ("\t", r"\t"),  # tabs: ruamel's messages about them
    ("\r", r"\r(?!\n)"),  # a lone CR is a line break that the loader's `---` split does not see
    ("%", r"\n%"),  # directives (%YAML 1.1 changes the schema)
    ("!", r"!"),  # tags: ruamel constructs !!binary, !!omap, !!timestamp and rejects unknown ones
    ("&*", r"[\s\[\]{},][&*]"),  # anchors and aliases: shared or recursive nodes
    ("<", r"<<"),  # merge keys
    ("=", r"[\s\[\]{},:]=(?:[\s\[\]{},:]|\Z)"),  # the plain scalar `=` (ruamel: the `value` tag, an error)
    ("?", r"\?"),  # explicit keys (collections as keys); in flow collections libyaml rejects it inside scalars
    ("|>", r"[\s\[\]{},:][|>]"),  # block scalars: yaml-rs keeps a line break in empty ones, reads unindented text
    ("-", r"\d\d\d\d-\d\d?-\d\d?"),  # timestamps: ruamel gives a date or datetime
    ("", r"[\s\[\]{},:][-+]?(?:[._]|0[xXoObB]|[0-9][0-9.]*[_eE])"),  # numbers the two resolvers read differently
    (":", r"[\s\[{,]:(?:[\s,\]}]|\Z)"),  # empty keys
    ("]}", r"[\]}]\s*:"),  # flow collections as keys
    ("[{", r"[\[{][^\]}]*?:(?!\s)"),  # `:` without a space after it inside a flow collection: libyaml rejects it
)
_RARE_GUARDS = tuple((trigger, re.compile(pattern)) for trigger, pattern in _GUARDS[:9])
_RARE = re.compile("[" + re.escape("".join(trigger for trigger, _ in _GUARDS[:9])) + "]")
_COMMON_GUARDS = tuple((trigger, re.compile(pattern)) for trigger, pattern in _GUARDS[9:])
# control characters, NEL, LS/PS and BOM: line breaks or errors in ruamel
_ODD_CHARACTER = re.compile(r"[^\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LONG_DIGITS = re.compile(r"\d{4300}")  # integers over Python's int-from-text limit: ruamel fails on them
_DOCUMENT_MARK = re.compile(r"\n(?:---|\.\.\.)")  # after the first line: a second document


def safe(text: str) -> bool:
    """True when yaml-rs is known to read `text` as ruamel does (or to reject it)."""
    if not text.endswith("\n"):  # a final block scalar's line break depends on it
        return False
    if _DOCUMENT_MARK.search(text) or (_ODD_CHARACTER if not text.isascii() else _CONTROL).search(text):
        return False
    if len(text) >= 4300 and _LONG_DIGITS.search(text):
        return False
    padded = "\n" + text
    guards = _COMMON_GUARDS if _RARE.search(text) is None else _RARE_GUARDS + _COMMON_GUARDS
    for trigger, pattern in guards:
        if (not trigger or any(c in text for c in trigger)) and pattern.search(padded):
            return False
    return not (("[" in text or "{" in text) and _multiline_flow(text))


def _multiline_flow(text: str) -> bool:
    """A flow collection spanning lines (yaml-rs accepts multi-line keys in one, libyaml does not)."""
    return any(line.count("[") + line.count("{") != line.count("]") + line.count("}") for line in text.splitlines())


def load(text: str) -> tuple[bool, Any]:
    """(True, data) when the fast path read `text`; (False, None) when ruamel must (unsafe text or any error)."""
    if not safe(text):
        return False, None
    try:
        return True, yaml_rs.loads(text, parse_datetime=False, duplicate_key_policy=yaml_rs.DuplicateKeyPolicy.Error)
    except Exception:  # noqa: BLE001 - any failure: ruamel parses it again and reports its own error
        return False, None
