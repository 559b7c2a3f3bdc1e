"""envoy.filters.network.tcp_proxy: TCP and TLS passthrough routes (VirtualService tcp/tls), to one cluster or
split by weight."""

from __future__ import annotations

from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2

from compiler import model
from compiler.emit import access_log
from compiler.emit.common import EmitError

NAME = "envoy.filters.network.tcp_proxy"


def of(chain: model.TcpFilterChain) -> tcp_proxy_pb2.TcpProxy:
    if not chain.clusters:
        raise EmitError(f"tcp_proxy {chain.stat_prefix!r} has no cluster")
    logs = access_log.all_of(chain.access_logs)
    if len(chain.clusters) == 1:
        return tcp_proxy_pb2.TcpProxy(stat_prefix=chain.stat_prefix, cluster=chain.clusters[0].cluster,
                                      access_log=logs)
    weighted = tcp_proxy_pb2.TcpProxy.WeightedCluster(
        clusters=[
            tcp_proxy_pb2.TcpProxy.WeightedCluster.ClusterWeight(name=c.cluster, weight=c.weight)
            for c in chain.clusters
        ]
    )
    return tcp_proxy_pb2.TcpProxy(stat_prefix=chain.stat_prefix, weighted_clusters=weighted, access_log=logs)
