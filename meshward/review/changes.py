"""What changed between two versions of one proxy's config dump, resource by resource and field by field, as
paths a reviewer reads (`vhost reviews.shop.svc.cluster.local:9080 / routes[0].route.weighted_clusters
.clusters[outbound|9080|v2|reviews.shop.svc.cluster.local].weight: 50 -> 80`), not as a JSON dump.

Lists are compared the way their entries are meant: entries that all carry a unique `name` (virtual hosts, filter
chains, weighted clusters) by name; other lists (routes, domains, endpoints) aligned with difflib's longest matching
blocks, so that one inserted route reads as one route added rather than every later route changed.

The `meshward` filter metadata (compiler/emit/metadata.py: the file:line that produced a piece) is left out of the
comparison: it says where a piece came from, which `causes` reads, and moves whenever a line is added above it.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import orjson

from compiler.emit.metadata import FILTER_METADATA_KEY

Json = Any  # a value of Envoy's JSON form (dict, list, str, int, float, bool)


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    """One step into a value: a field (`key` a str, `named` False), a list index (`key` an int) or a list entry
    found by its `name` (`named`)."""

    key: str | int
    named: bool = False

    def into(self, value: Json) -> Json:
        """The value this step leads to inside `value`, None when it is not there."""
        if self.named:
            found = [v for v in value if isinstance(v, dict) and v.get("name") == self.key] if isinstance(
                value, list) else []
            return found[0] if found else None
        if isinstance(self.key, int):
            return value[self.key] if isinstance(value, list) and self.key < len(value) else None
        return value.get(self.key) if isinstance(value, dict) else None


# Named list entries drawn as a segment of their own: the big structural pieces a reviewer navigates by.
_SEGMENTS = {"virtual_hosts": "vhost", "filter_chains": "filter_chain"}


class Change(enum.StrEnum):
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"


@dataclasses.dataclass(frozen=True, slots=True)
class FieldChange:
    path: tuple[Step, ...]
    before: Json  # None when the field was added
    after: Json  # None when the field was removed

    @property
    def change(self) -> Change:
        if self.before is None:
            return Change.ADDED
        return Change.REMOVED if self.after is None else Change.CHANGED

    def render_path(self) -> str:
        return render_path(self.path)

    @property
    def whole_entry(self) -> bool:
        """A virtual host or filter chain added or removed as a whole: its name says it, not its JSON."""
        return (len(self.path) > 1 and self.path[-1].named and self.path[-2].key in _SEGMENTS
                and self.change is not Change.CHANGED)


def render_path(path: Sequence[Step]) -> str:
    out = ""
    for i, step in enumerate(path):
        field = path[i - 1].key if i else None
        if step.named and field in _SEGMENTS:
            out = out[:-len(str(field))].removesuffix(".") + f"{_SEGMENTS[str(field)]} {step.key} / "
        elif step.named or isinstance(step.key, int):
            out += f"[{step.key}]"
        else:
            out += f"{'' if not out or out.endswith(' / ') else '.'}{step.key}"
    return out.removesuffix(" / ")


def short(value: Json, limit: int = 100) -> str:
    """A value on one line: scalars as they are, structures as compact JSON cut at `limit` characters."""
    if isinstance(value, str):
        text = value
    else:
        text = orjson.dumps(_without_metadata(value), option=orjson.OPT_SORT_KEYS).decode()
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _without_metadata(value: Json) -> Json:
    if isinstance(value, dict):
        return {k: _without_metadata(v) for k, v in value.items() if not _is_meshward_metadata(k, v)}
    if isinstance(value, list):
        return [_without_metadata(v) for v in value]
    return value


def _is_meshward_metadata(key: str, value: Json) -> bool:
    """The `metadata` field whose only filter metadata is meshward's back-reference."""
    return (key == "metadata" and isinstance(value, dict) and set(value) == {"filter_metadata"}
            and set(value["filter_metadata"]) == {FILTER_METADATA_KEY})


def fields(before: Json, after: Json, path: tuple[Step, ...] = ()) -> Iterator[FieldChange]:
    """Every leaf-most difference between two values: a field added or removed is reported whole, once."""
    if isinstance(before, dict) and isinstance(after, dict):
        yield from _dicts(before, after, path)
    elif isinstance(before, list) and isinstance(after, list):
        yield from _lists(before, after, path)
    elif before != after:
        yield FieldChange(path, before, after)


def _dicts(before: Mapping[str, Json], after: Mapping[str, Json], path: tuple[Step, ...]) -> Iterator[FieldChange]:
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if _is_meshward_metadata(key, old) or _is_meshward_metadata(key, new):
            continue
        yield from fields(old, new, (*path, Step(key)))


def _names(items: Sequence[Json]) -> list[str] | None:
    names = [i.get("name") for i in items if isinstance(i, dict)]
    if len(names) != len(items) or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        return None
    return names  # type: ignore[return-value]


def _lists(before: Sequence[Json], after: Sequence[Json], path: tuple[Step, ...]) -> Iterator[FieldChange]:
    old_names, new_names = _names(before), _names(after)
    if old_names is not None and new_names is not None:
        old_by, new_by = dict(zip(old_names, before, strict=True)), dict(zip(new_names, after, strict=True))
        for n in [*new_names, *(n for n in old_names if n not in new_by)]:
            yield from fields(old_by.get(n), new_by.get(n), (*path, Step(n, named=True)))
        return
    keys = [[orjson.dumps(_without_metadata(v), option=orjson.OPT_SORT_KEYS) for v in side]
            for side in (before, after)]
    # entries paired by difflib's matching blocks: equal runs skipped, a replaced run compared entry by entry, what
    # is left over added or removed (indexes are the after side's, the before side's for removals)
    matcher = difflib.SequenceMatcher(None, keys[0], keys[1], autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        paired = min(i2 - i1, j2 - j1)
        for k in range(paired):
            yield from fields(before[i1 + k], after[j1 + k], (*path, Step(j1 + k)))
        for j in range(j1 + paired, j2):
            yield FieldChange((*path, Step(j)), None, after[j])
        for i in range(i1 + paired, i2):
            yield FieldChange((*path, Step(i)), before[i], None)
