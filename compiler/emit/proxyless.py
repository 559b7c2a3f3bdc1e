"""Proxyless gRPC: a `model.GrpcConfig` (made by compiler.translate.proxyless) written in the protos gRPC's own xDS
client reads (gRFC A27): listeners that are `api_listener`s, route configs over RDS, EDS and LOGICAL_DNS clusters
and their load assignments, as Istio's `pilot/pkg/networking/grpcgen` writes them.
"""

from __future__ import annotations

from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import api_listener_pb2, listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2

from compiler import model
from compiler.emit import cluster, common, endpoint, route
from compiler.emit.filters import fault, router
from meshxds import type_urls
from meshxds.snapshot import Snapshot, XdsResource

# gRPC's client-side HTTP filters, in Istio's order: fault injection (gRFC A33), then the terminal router.
_FILTERS = (
    hcm_pb2.HttpFilter(name=fault.NAME, typed_config=common.pack(fault.filter_config())),
    hcm_pb2.HttpFilter(name=router.NAME, typed_config=common.pack(router.filter_config())),
)


def _listener(li: model.GrpcListener) -> listener_pb2.Listener:
    hcm = hcm_pb2.HttpConnectionManager(
        http_filters=_FILTERS,
        rds=hcm_pb2.Rds(config_source=common.ads_source(), route_config_name=li.route_config_name),
    )
    return listener_pb2.Listener(name=li.name,
                                 api_listener=api_listener_pb2.ApiListener(api_listener=common.pack(hcm)))


def _route_config(rc: model.RouteConfig) -> route_pb2.RouteConfiguration:
    return route_pb2.RouteConfiguration(name=rc.name, virtual_hosts=[route.virtual_host(vh) for vh in rc.virtual_hosts],
                                        ignore_port_in_host_matching=rc.ignore_port)


def _load_assignment(la: model.LoadAssignment) -> endpoint_pb2.ClusterLoadAssignment:
    """gRPC ignores a locality without a load_balancing_weight and NACKs one without a `locality`: each gets
    the sum of its endpoints' weights (as Istio does), unless locality load balancing weighed it, and an empty
    locality when it has none."""
    out = endpoint.load_assignment(la.cluster_name, la.endpoints)
    for group in out.endpoints:
        group.locality.SetInParent()
        if not group.HasField("load_balancing_weight"):
            group.load_balancing_weight.value = sum(e.load_balancing_weight.value or 1 for e in group.lb_endpoints)
    return out


def resources(cfg: model.GrpcConfig) -> list[XdsResource]:
    return [*(XdsResource.of(li.name, type_urls.LISTENER, _listener(li)) for li in cfg.listeners),
            *(XdsResource.of(rc.name, type_urls.ROUTE, _route_config(rc)) for rc in cfg.route_configs),
            *(XdsResource.of(c.name, type_urls.CLUSTER, cluster.of(c)) for c in cfg.clusters),
            *(XdsResource.of(la.cluster_name, type_urls.ENDPOINT, _load_assignment(la))
              for la in cfg.load_assignments)]


def snapshot(cfg: model.GrpcConfig) -> Snapshot:
    return Snapshot.of(resources(cfg))
