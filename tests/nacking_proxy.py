"""A scripted SotW ADS client that rejects the clusters it is sent and stays connected: how the status, drift and
mesh-page tests get a NACK from a proxy without running an Envoy that would have to refuse real config."""

from __future__ import annotations

import queue

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.rpc import status_pb2

from meshxds import type_urls


class NackingProxy:
    def __init__(self, xds_address: str, *, node_id: str, cluster: str) -> None:
        self.node = base_pb2.Node(id=node_id, cluster=cluster)
        self.channel = grpc.insecure_channel(xds_address)
        self.requests: queue.Queue[discovery_pb2.DiscoveryRequest | None] = queue.Queue()
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(self.channel)
        self.responses = stub.StreamAggregatedResources(iter(self.requests.get, None), timeout=120)

    def nack_clusters(self, message: str) -> None:
        """Ask for clusters and reject the first response with `message` (INVALID_ARGUMENT, as Envoy sends)."""
        self.requests.put(discovery_pb2.DiscoveryRequest(node=self.node, type_url=type_urls.CLUSTER))
        response = next(self.responses)
        assert response.type_url == type_urls.CLUSTER and response.resources
        self.requests.put(discovery_pb2.DiscoveryRequest(
            type_url=type_urls.CLUSTER, response_nonce=response.nonce,
            error_detail=status_pb2.Status(code=3, message=message)))

    def close(self) -> None:
        self.requests.put(None)
        self.responses.cancel()
        self.channel.close()
