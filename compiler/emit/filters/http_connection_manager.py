"""envoy.filters.network.http_connection_manager: HTTP routing for a filter chain, with routes over RDS, or
inline (`route_config`) in a static bootstrap."""

from __future__ import annotations

from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2

from compiler import model
from compiler.emit import access_log, common, filters, tracing
from meshxds import refs

NAME = refs.HTTP_CONNECTION_MANAGER  # the name meshxds.refs finds a listener's route tables by

_HCM = hcm_pb2.HttpConnectionManager


def of(
    chain: model.HttpFilterChain, *, inline_routes: route_pb2.RouteConfiguration | None = None
) -> hcm_pb2.HttpConnectionManager:
    out = _HCM(
        stat_prefix=chain.stat_prefix,
        codec_type=_HCM.HTTP2 if chain.http2_only else _HCM.AUTO,
        http_filters=filters.http_filters(chain),
        access_log=access_log.all_of(chain.access_logs),
    )
    if chain.tracing is not None:
        out.tracing.CopyFrom(tracing.of(chain.tracing))
        out.request_id_extension.CopyFrom(tracing.request_id(chain.tracing))
    if chain.use_remote_address:
        out.use_remote_address.value = True
    if chain.forward_client_cert:  # set from the verified peer certificate only: what a client sent is dropped
        out.forward_client_cert_details = _HCM.SANITIZE_SET
        out.set_current_client_cert_details.uri = True
    if inline_routes is not None:
        out.route_config.CopyFrom(inline_routes)
    else:
        out.rds.route_config_name = chain.route_config_name
        out.rds.config_source.CopyFrom(common.ads_source())
    return out
