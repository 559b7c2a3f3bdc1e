"""Config-dump JSON of a snapshot: resources grouped by type URL, in Envoy's JSON form with proto field names
and sorted keys, so golden files and `meshward compile` output are byte-stable and diff well."""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message

from compiler import model
from meshxds import type_urls
from meshxds.snapshot import Snapshot


def message_dict(message: Message) -> dict[str, Any]:
    as_dict = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return _integral(as_dict)  # type: ignore[no-any-return]


_EXACT = 2.0**53


def _integral(value: Any) -> Any:
    """Whole floats as ints (Struct numbers, Percent values), which is how Envoy's own JSON writes them. Only where a
    double holds every integer (below 2**53): past that the int would claim digits the double never had, and orjson
    takes no int past 64 bits."""
    if isinstance(value, float) and value.is_integer() and abs(value) < _EXACT:
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def config_dump(snap: Snapshot | model.ProxyConfig) -> dict[str, list[dict[str, Any]]]:
    """{type URL: [resource, ...]}, resources in name order; types with no resources are left out."""
    if isinstance(snap, model.ProxyConfig):
        from compiler import emit  # the package imports its modules, not this one: no cycle at import time

        snap = emit.snapshot(snap)
    return {
        t: [message_dict(r.message) for r in resources.values()]
        for t, resources in snap.by_type.items()
        if resources
    }


def to_json(doc: Any) -> str:
    """Indented, keys sorted, UTF-8 as is. orjson rather than `json.dumps`: with an indent the standard library
    falls back to its pure-Python encoder, which took longer than compiling for a large mesh's config dump."""
    return orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"


def dumps(snap: Snapshot | model.ProxyConfig) -> str:
    return to_json(config_dump(snap))


def dumps_by_type(snap: Snapshot | model.ProxyConfig) -> dict[str, str]:
    """The config dump split by type, {short name (listeners, routes, ...): its resource list as `to_json` writes
    it}: one golden file per type (tests/golden), so that a diff shows which kind of resource a change moved."""
    return {type_urls.SHORT_NAMES[t]: to_json(resources) for t, resources in config_dump(snap).items()}
