"""Who is on the other end of an ADS stream.

The xDS `Node` proto is turned into `NodeInfo`, a small frozen value in plain Python, as soon as a stream opens, so
that the snapshot cache and the reconciler's `resolve` callback never touch protobuf. Istio-style node ids
(`sidecar~10.0.0.1~reviews-v1.shop~shop.svc.cluster.local`) are parsed here too, because both the bootstrap
generator and status pages want the workload name and namespace.

Proxyless gRPC clients (gRPC's own xDS client, no Envoy) connect too; like Istio, we know them by the node metadata
`GENERATOR: grpc` their bootstrap file sets, and `NodeInfo.proxyless` tells the compiler to emit their shape of
config (`compiler.emit.proxyless`).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any

from envoy.config.core.v3 import base_pb2
from google.protobuf import json_format

from compiler.build import NodeId, parse_node_id


@dataclasses.dataclass(frozen=True)
class NodeInfo:
    """A proxy as it introduced itself. Hashable by id and cluster; metadata is plain JSON-like Python."""

    id: str
    cluster: str = ""
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict, hash=False)

    @staticmethod
    def from_proto(node: base_pb2.Node) -> NodeInfo:
        metadata = json_format.MessageToDict(node.metadata) if node.HasField("metadata") else {}
        return NodeInfo(id=node.id, cluster=node.cluster, metadata=metadata)

    @property
    def generator(self) -> Generator:
        return generator_of(self.metadata)

    @property
    def proxyless(self) -> bool:
        """Read by `compiler.build.snapshot_for` (duck-typed: the compiler never imports the reconciler)."""
        return self.generator is Generator.GRPC


# Istio's node metadata key naming the config generator a node wants (pilot/pkg/model: NodeMetadata.Generator).
GENERATOR_KEY = "GENERATOR"


class Generator(enum.StrEnum):
    """The shape of config a node wants. Envoy sends no GENERATOR; a proxyless gRPC bootstrap sets `grpc`."""

    ENVOY = "envoy"
    GRPC = "grpc"


def generator_of(metadata: Mapping[str, Any]) -> Generator:
    """Unknown generator names (Istio has a few more, e.g. `api`) get Envoy's config, as Istio's default."""
    value = metadata.get(GENERATOR_KEY)
    return Generator.GRPC if value == Generator.GRPC.value else Generator.ENVOY


def parse_istio_node_id(node_id: str) -> NodeId | None:
    """The parts of an Istio node id (the compiler's parser, Pilot's rules), or None when it has another shape."""
    try:
        return parse_node_id(node_id)
    except ValueError:
        return None
