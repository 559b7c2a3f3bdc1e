"""MeshConfig ext_authz providers -> the ext_authz filter of CUSTOM AuthorizationPolicies.

As Pilot builds them (pilot/pkg/security/authz/builder/extauthz.go buildExtAuthzHTTP / buildExtAuthzGRPC): a
provider's `service` is `[NAMESPACE/]HOSTNAME` of the registry (extensionproviders.LookupCluster: without a
namespace the hostname must be defined in one namespace only), and the check goes to its outbound cluster
`outbound|PORT||HOSTNAME`, which every proxy then holds (`services`), so that no ext_authz filter names a cluster
its proxy lacks. A provider that cannot be built (not defined, not an ext_authz kind, no such service) is None:
the caller denies what its policies match, as Pilot does; the analyzer reports it at the policy's line.
"""

from __future__ import annotations

import dataclasses

from compiler import model, naming, units
from compiler.api.mesh_config import ExtAuthzGrpcProvider, ExtAuthzHttpProvider, ExtensionProvider, MeshConfig
from compiler.translate.mesh import Mesh
from compiler.translate.provider_services import lookup
from compiler.translate.services import Service

DEFAULT_TIMEOUT_MS = 600_000  # extauthz.go timeoutOrDefault: 600s


def ext_authz_of(config: MeshConfig, name: str) -> ExtAuthzHttpProvider | ExtAuthzGrpcProvider | None:
    """The provider `name` if it is an ext_authz one (the last of that name, as Pilot's map keeps it)."""
    found: ExtensionProvider | None = None
    for p in config.extension_providers or ():
        if p.name == name:
            found = p
    if found is None:
        return None
    return found.envoy_ext_authz_http or found.envoy_ext_authz_grpc


def provider(mesh: Mesh, name: str) -> model.ExtAuthz | None:
    return mesh.memo(("ext_authz", name), lambda: _build(mesh, name))


def services(mesh: Mesh) -> list[Service]:
    """The services of the providers some CUSTOM policy of the revision names: every proxy gets their clusters."""
    return mesh.memo(("ext_authz", "services"), lambda: _services(mesh))


def _services(mesh: Mesh) -> list[Service]:
    names = sorted({res.spec.provider.name for res in mesh.resources.of_kind("AuthorizationPolicy")
                    if res.spec.action == "CUSTOM" and res.spec.provider is not None})
    out = []
    for name in names:
        conf = ext_authz_of(mesh.config, name)
        found = lookup(mesh, conf.service) if conf is not None else None
        if found is not None:
            out.append(found)
    return out


def _build(mesh: Mesh, name: str) -> model.ExtAuthz | None:
    conf = ext_authz_of(mesh.config, name)
    service = lookup(mesh, conf.service) if conf is not None else None
    if conf is None or service is None:
        return None
    body = conf.include_request_body_in_check
    built = model.ExtAuthz(
        grpc=not isinstance(conf, ExtAuthzHttpProvider), cluster=naming.outbound_cluster(conf.port, "", service.host),
        host=service.host, timeout_ms=units.duration_ms(conf.timeout) if conf.timeout else DEFAULT_TIMEOUT_MS,
        fail_open=conf.fail_open, status_on_error=int(conf.status_on_error) if conf.status_on_error else None,
        body=model.ExtAuthzBody(body.max_request_bytes, body.allow_partial_message, body.pack_as_bytes)
        if body is not None else None)
    if not isinstance(conf, ExtAuthzHttpProvider):
        return built
    return dataclasses.replace(
        built, path_prefix=conf.path_prefix, request_headers=tuple(conf.include_request_headers_in_check or ()),
        upstream_on_allow=tuple(conf.headers_to_upstream_on_allow or ()),
        downstream_on_deny=tuple(conf.headers_to_downstream_on_deny or ()),
        downstream_on_allow=tuple(conf.headers_to_downstream_on_allow or ()))
