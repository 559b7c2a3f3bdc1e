"""The back-reference from emitted config to the policy line that produced it.

Every route, cluster and filter chain carries `filter_metadata["meshward"]` with
kind/namespace/name/file/line (and a route's `http`, its index in the VirtualService's spec.http), so that someone reading an Envoy config dump (`/config_dump`) lands on the YAML
that made it, the way Istio's `metadata.filter_metadata["istio"].config` names the VirtualService.
"""

from __future__ import annotations

from collections.abc import Sequence

from envoy.config.core.v3 import base_pb2
from google.protobuf import struct_pb2

from compiler import model

FILTER_METADATA_KEY = "meshward"


def _fields(source: model.Source) -> dict[str, str | int]:
    fields: dict[str, str | int] = {
        "kind": source.kind,
        "namespace": source.namespace,
        "name": source.name,
        "file": source.file,
        "line": source.line,
    }
    if source.http is not None:
        fields["http"] = source.http
    return fields


def of(sources: Sequence[model.Source]) -> base_pb2.Metadata | None:
    """Metadata naming the first source at the top level; all of them under `sources` when there are several
    (a cluster shaped by a DestinationRule and a ServiceEntry). None when nothing is known. Not cached here: each
    resource that carries it is emitted once per value (compiler.reuse.memo), the clusters of one service from
    one shared encoding (compiler.emit.assembled)."""
    if not sources:
        return None
    fields: dict[str, object] = dict(_fields(sources[0]))
    if len(sources) > 1:
        fields["sources"] = [_fields(s) for s in sources]
    struct = struct_pb2.Struct()
    struct.update(fields)
    meta = base_pb2.Metadata()
    meta.filter_metadata[FILTER_METADATA_KEY].CopyFrom(struct)
    return meta


def one(source: model.Source | None) -> base_pb2.Metadata | None:
    return of((source,) if source is not None else ())
