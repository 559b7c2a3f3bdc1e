"""Config-dump JSON of a snapshot: resources grouped by type URL, in Envoy's JSON form with proto field names
and sorted keys, so golden files and `meshward compile` output are byte-stable and diff well."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from compiler import model
from compiler.emit.snapshot import Snapshot


def message_dict(message: Message) -> dict[str, Any]:
    as_dict = json_format.MessageToDict(message, preserving_proto_field_name=True)
    return _integral(as_dict)  # type: ignore[no-any-return]


def _integral(value: Any) -> Any:
    """Whole floats as ints (Struct numbers, Percent values), which is how Envoy's own JSON writes them."""
    if isinstance(value, float) and value.is_integer():
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


def dumps(snap: Snapshot | model.ProxyConfig) -> str:
    return json.dumps(config_dump(snap), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
