"""Envoy filters, one module each, and THE order of HTTP filters in a connection manager (`http_filters`)."""

from __future__ import annotations

from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2

from compiler import model
from compiler.emit import common
from compiler.emit.filters import cors, ext_authz, fault, jwt_authn, rbac, router


def http_filters(chain: model.HttpFilterChain) -> list[hcm_pb2.HttpFilter]:
    """The HTTP filter chain, in the one order that is right; each filter only where some route needs it.

    0. jwt_authn: verifies a request's JWT (401 for a bad one) and leaves its payload in dynamic metadata, which
       rbac reads for request principals and claims, so it goes first (as Pilot orders jwt_authn, then authz).
    1. CUSTOM AuthorizationPolicies: an rbac filter that only marks the requests they match, then ext_authz,
       enabled for the marked ones: ahead of the other rbac filters, as Pilot's builders order them.
    2. rbac, one per action of the workload's AuthorizationPolicies in Pilot's order (AUDIT, DENY, ALLOW): first,
       so that nothing a request was refused for runs (Pilot puts authz filters ahead of cors and fault too).
    3. cors: answers preflight requests itself and adds CORS response headers; it goes before fault so that a
       browser's preflight is never delayed or aborted by an injected fault (Istio orders them the same way).
    4. fault: injects delays and aborts before the request is forwarded; after cors, before router.
    5. router: forwards to the upstream; it is terminal, so it must be last (Envoy rejects anything after it).
    """
    filters = [hcm_pb2.HttpFilter(name=jwt_authn.NAME, typed_config=common.pack(jwt_authn.filter_config(chain.jwt)))
               ] if chain.jwt else []
    if chain.custom is not None:
        filters += [hcm_pb2.HttpFilter(name=rbac.HTTP_NAME, typed_config=common.pack(
                        rbac.http_marks(chain.custom, ext_authz.SHADOW_PREFIX))),
                    hcm_pb2.HttpFilter(name=ext_authz.HTTP_NAME,
                                       typed_config=common.pack(ext_authz.http_config(chain.custom.provider)))]
    filters += [hcm_pb2.HttpFilter(name=rbac.HTTP_NAME, typed_config=common.pack(rbac.http_config(r)))
                for r in chain.rbac]
    if chain.cors:
        filters.append(hcm_pb2.HttpFilter(name=cors.NAME, typed_config=common.pack(cors.filter_config())))
    if chain.faults:
        filters.append(hcm_pb2.HttpFilter(name=fault.NAME, typed_config=common.pack(fault.filter_config())))
    filters.append(hcm_pb2.HttpFilter(name=router.NAME, typed_config=common.pack(router.filter_config())))
    return filters
